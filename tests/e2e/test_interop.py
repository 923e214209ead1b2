# SPDX-License-Identifier: LGPL-2.1-or-later
"""gst-kafka with Kafka clients nobody here wrote: kcat and the tutorial's
own Python producer and Flask consumer (kafka-python, OpenCV)."""

import os
import struct
import subprocess
import tempfile
import unittest

from e2elib import (E2ETest, Frames, Launch, MultipartClient, brokers, free_port,
                    kcat_messages, produce_frames, run, unique, viewer)

HERE = os.path.dirname(os.path.abspath(__file__))
TUTORIAL = os.path.join(HERE, "tutorial")
N = 30


def make_video(path, frames=15):
    """A small MPEG-4 file OpenCV and decodebin both read. Its frames are
    all at time 0 (Debian's gst-libav 1.22.0 avenc_mpeg4 writes no
    timestamps): these tests produce it unpaced."""
    run(["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=%d" % frames, "pattern=smpte",
         "horizontal-speed=3", "!", "video/x-raw,width=160,height=120,framerate=30/1", "!",
         "videoconvert", "!", "avenc_mpeg4", "!", "mp4mux", "!", "filesink",
         "location=" + path])


class Interop(E2ETest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.frames = Frames(N)

    @classmethod
    def tearDownClass(cls):
        cls.frames.cleanup()

    def test_kcat_reads_our_topic(self):
        topic = unique("kcat")
        produce_frames(topic, self.frames)
        # Sizes one per line (header values are binary: read them apart).
        sizes = kcat_messages(topic, N, fmt="%S\n").decode().split()
        self.assertEqual([int(x) for x in sizes], [len(d) for d in self.frames.data])
        for offset in (0, N - 1):
            headers = kcat_messages(topic, 1, fmt="%h", offset=offset).decode(
                errors="replace")
            self.assertIn("gst.buf=", headers)
            if offset == 0:
                self.assertIn("gst.caps=image/png", headers)
        # Payloads are the frames themselves, byte for byte.
        self.assertEqual(kcat_messages(topic, 1), self.frames.data[0])

    def test_python_client_reads_our_headers(self):
        """docs/message-format.md's recipe, with kafka-python."""
        from kafka import KafkaConsumer
        topic = unique("py-headers")
        produce_frames(topic, self.frames)
        consumer = KafkaConsumer(topic, bootstrap_servers=brokers(),
                                 auto_offset_reset="earliest", consumer_timeout_ms=10000)
        self.addCleanup(consumer.close)
        records = [m for _, m in zip(range(N), consumer)]
        self.assertEqual(len(records), N)
        sessions = set()
        for i, msg in enumerate(records):
            headers = dict(msg.headers)
            version, present, flags, session, seq = struct.unpack_from(
                ">BBIQQ", headers["gst.buf"])
            times = struct.unpack_from(">%dQ" % bin(present).count("1"),
                                       headers["gst.buf"], 22)
            self.assertEqual(version, 1)
            self.assertEqual(len(headers["gst.buf"]), 22 + 8 * len(times))
            self.assertEqual(seq, i)
            sessions.add(session)
            # 30 fps: pts (bit 0) i/30 s, duration (bit 2) 1/30 s.
            self.assertTrue(present & 1 and present & 4, present)
            pts, duration = times[0], times[-1]
            self.assertEqual(pts, i * 10**9 // 30, i)
            self.assertLessEqual(abs(duration - 10**9 // 30), 1)
            self.assertEqual(msg.value, self.frames.data[i])
            # Bit 31 of the flags: the caps travel with other messages.
            self.assertEqual(bool(flags & 0x80000000), "gst.caps" not in headers, i)
        self.assertEqual(len(sessions), 1)
        self.assertTrue(dict(records[0].headers)["gst.caps"].startswith(b"image/png"))

    def test_python_client_joins_split_frames(self):
        """docs/message-format.md's recipe for the parts of a buffer larger
        than a message, with kafka-python: the frames come back whole."""
        from kafka import KafkaConsumer
        topic = unique("py-parts")
        produce_frames(topic, self.frames, ("max-message-size=2000",))
        consumer = KafkaConsumer(topic, bootstrap_servers=brokers(),
                                 auto_offset_reset="earliest", consumer_timeout_ms=10000)
        self.addCleanup(consumer.close)
        frames, parts, messages = [], {}, 0
        for msg in consumer:
            messages += 1
            self.assertLessEqual(len(msg.value), 2000)
            headers = dict(msg.headers)
            if "gst.frag" not in headers:
                frames.append(msg.value)
                continue
            version, index, count, size = struct.unpack(">BIIQ", headers["gst.frag"])
            self.assertEqual(version, 1)
            if index == 0:
                parts[msg.partition] = []
            parts[msg.partition].append(msg.value)
            if index + 1 < count:
                continue
            frame = b"".join(parts.pop(msg.partition))
            self.assertEqual(len(frame), size)
            frames.append(frame)
            if len(frames) == N:
                break
        self.assertEqual(frames, self.frames.data)
        self.assertGreater(messages, 2 * N)

    def test_python_application_reads_kcat_keys_from_kafka_meta(self):
        """kcat writes keyed messages; a Python GStreamer application reads
        each one's key, partition and offset from kafkasrc's GstKafkaMeta."""
        import gi
        gi.require_version("Gst", "1.0")
        from gi.repository import Gst
        Gst.init(None)
        topic = unique("kcat-keys")
        lines = b"".join(b"%s:payload-%d\n" % (b"door" if i % 2 else b"yard", i)
                         for i in range(6))
        r = subprocess.run(["kcat", "-b", brokers(), "-P", "-t", topic, "-K", ":"],
                           input=lines, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))

        pipeline = Gst.parse_launch(
            "kafkasrc brokers=%s topic=%s is-live=false stop-at=end add-kafka-meta=true "
            "caps=text/plain ! appsink name=out sync=false" % (brokers(), topic))
        sink = pipeline.get_by_name("out")
        pipeline.set_state(Gst.State.PLAYING)
        got = []
        while True:
            sample = sink.emit("try-pull-sample", 30 * Gst.SECOND)
            if sample is None:
                break
            buf = sample.get_buffer()
            meta = buf.get_custom_meta("GstKafkaMeta")
            self.assertIsNotNone(meta, "no GstKafkaMeta on a buffer")
            st = meta.get_structure()
            got.append((st.get_value("key").get_data(), st.get_value("partition"),
                        st.get_value("offset"), st.get_value("topic"),
                        buf.extract_dup(0, buf.get_size())))
        self.assertTrue(sink.get_property("eos"), "no end of stream")
        pipeline.set_state(Gst.State.NULL)
        self.assertEqual(got, [(b"door" if i % 2 else b"yard", 0, i, topic,
                                b"payload-%d" % i) for i in range(6)])

    def test_tutorial_consumer_shows_our_frames(self):
        topic = unique("tut-consumer")
        port = free_port()
        env = dict(os.environ, TUTORIAL_TOPIC=topic, TUTORIAL_GROUP=unique("view"),
                   TUTORIAL_PORT=str(port))
        flask = subprocess.Popen(["/usr/bin/python3", os.path.join(TUTORIAL, "consumer.py")],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: (flask.kill(), flask.wait()))
        # The tutorial's consumer joins its group and starts at the latest
        # offset only once its page is opened, and sends the response headers
        # with the first frame: open it while a live producer runs.
        producer = self.launch("multifilesrc", "location=" + self.frames.pattern, "loop=true",
                               "caps=image/png,framerate=10/1", "!", "identity", "sync=true",
                               "!", "kafkasink", "brokers=" + brokers(), "topic=" + topic,
                               name="producer")
        c = MultipartClient(port, timeout=60)
        self.assertEqual(c.status, 200)
        got = []
        for _ in range(10):
            headers, body, _t = c.part()
            self.assertEqual(headers.get("content-type"), "image/png")
            idx = self.frames.which(body)
            self.assertIsNotNone(idx, "the tutorial's consumer served a frame we did not "
                                      "produce")
            got.append(idx)
        c.close()
        self.assertEqual(producer.interrupt(), 0, producer.output())
        # Consecutive frames of the looping producer, none skipped or repeated.
        for a, b in zip(got, got[1:]):
            self.assertEqual(b, (a + 1) % N, "frames out of order: %s" % got)

    def test_our_viewer_shows_tutorial_producer_frames(self):
        topic = unique("tut-producer")
        with tempfile.TemporaryDirectory() as d:
            video = os.path.join(d, "video.mp4")
            make_video(video, 15)
            env = dict(os.environ, TUTORIAL_TOPIC=topic, TUTORIAL_SLEEP="0.01")
            r = subprocess.run(["/usr/bin/python3", os.path.join(TUTORIAL, "producer.py"),
                                video], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout.decode(errors="replace"))
        # What the tutorial wrote: bare PNG bytes, no headers.
        written = [kcat_messages(topic, 1, fmt="%s", offset=i) for i in range(15)]
        self.assertEqual(len(set(written)), 15)
        self.assertTrue(all(w.startswith(b"\x89PNG") for w in written))

        port = free_port()
        v = viewer(topic, unique("view"), port)
        self.addCleanup(v.kill)
        c = MultipartClient(port)
        for i in range(15):
            headers, body, _t = c.part()
            self.assertEqual(headers.get("content-type"), "image/png",
                             "typefinding did not recognise the tutorial's PNG frames")
            self.assertEqual(body, written[i], "frame %d differs" % i)
        c.close()

    def test_tutorial_producer_pipelines_write_the_same_pngs(self):
        """docs/tutorial.md's two producers of a video file, with pngenc and
        with frame-threaded avenc_png: every frame, in order, as PNGs that
        OpenCV decodes to the same pictures."""
        import cv2
        import numpy
        from kafka import KafkaConsumer
        n = 24
        with tempfile.TemporaryDirectory() as d:
            video = os.path.join(d, "video.mp4")
            make_video(video, n)
            decode = ["filesrc", "location=" + video, "!", "decodebin", "!"]
            pipelines = {
                "pngenc": decode + ["videoconvert", "!", "video/x-raw,format=RGB", "!",
                                    "queue", "!", "pngenc", "compression-level=1"],
                "avenc_png": decode + ["queue", "!", "videoconvert", "!",
                                       "video/x-raw,format=RGB", "!", "queue", "!",
                                       "avenc_png", "compression-level=1", "threads=0"],
            }
            pictures = {}
            for name, words in pipelines.items():
                topic = unique("enc-" + name)
                Launch(*words, "!", "kafkasink", "brokers=" + brokers(), "topic=" + topic,
                       "sync=false", name=name).wait()
                consumer = KafkaConsumer(topic, bootstrap_servers=brokers(),
                                         auto_offset_reset="earliest",
                                         consumer_timeout_ms=30000)
                pngs = []
                for m in consumer:
                    pngs.append(m.value)
                    if len(pngs) == n:
                        break
                extra = consumer.poll(timeout_ms=1000)
                consumer.close()
                self.assertEqual(len(pngs), n, name)
                self.assertFalse(any(extra.values()), "%s wrote more than %d frames" % (name, n))
                pictures[name] = []
                for i, png in enumerate(pngs):
                    self.assertTrue(png.startswith(b"\x89PNG"), "%s frame %d" % (name, i))
                    img = cv2.imdecode(numpy.frombuffer(png, numpy.uint8), cv2.IMREAD_UNCHANGED)
                    self.assertIsNotNone(img, "OpenCV cannot decode %s frame %d" % (name, i))
                    self.assertEqual(img.shape, (120, 160, 3), "%s frame %d" % (name, i))
                    pictures[name].append(img)
        # A moving pattern: no two frames alike, so a frame out of order shows.
        self.assertEqual(len({p.tobytes() for p in pictures["pngenc"]}), n)
        for i, (a, b) in enumerate(zip(pictures["pngenc"], pictures["avenc_png"])):
            self.assertTrue(numpy.array_equal(a, b), "frame %d differs" % i)


if __name__ == "__main__":
    unittest.main(verbosity=2)
