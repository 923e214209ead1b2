# SPDX-License-Identifier: LGPL-2.1-or-later
"""The tutorial's six observations, with gst-kafka's producer and viewer run
as a user runs them (gst-launch-1.0) against a real broker, and an HTTP
client reading the stream as a browser does."""

import os
import shutil
import statistics
import tempfile
import threading
import time
import unittest

from e2elib import (E2ETest, Frames, Launch, MultipartClient, brokers, create_topic,
                    free_port, kcat_messages, produce_frames, unique, viewer, wait_for)

N = 90


class Observations(E2ETest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.frames = Frames(N)

    @classmethod
    def tearDownClass(cls):
        cls.frames.cleanup()

    def start_viewer(self, topic, group, port=None, **kw):
        port = port or free_port()
        v = viewer(topic, group, port, **kw)
        self.addCleanup(v.kill)
        return v, port

    def read_indices(self, client, n):
        out = []
        for headers, body, _t in client.parts(n):
            self.assertEqual(headers.get("content-type"), "image/png")
            idx = self.frames.which(body)
            self.assertIsNotNone(idx, "a part is not one of the produced frames")
            out.append(idx)
        return out

    def assert_sequential(self, indices, first=None):
        if first is not None:
            self.assertEqual(indices[0], first)
        for a, b in zip(indices, indices[1:]):
            self.assertEqual(b, a + 1, "frames out of order or missing: %s" % indices)

    def test_3_and_5_producer_need_not_run_frames_sequential(self):
        """Produce, stop the producer, then view: every frame, in order, once."""
        topic = unique("obs3")
        produce_frames(topic, self.frames)
        v, port = self.start_viewer(topic, unique("view"))
        c = MultipartClient(port)
        self.assertEqual(c.status, 200)
        self.assertTrue(c.content_type.startswith("multipart/x-mixed-replace"))
        got = self.read_indices(c, N)
        self.assert_sequential(got, first=0)
        c.close()
        self.assertEqual(v.interrupt(), 0, v.output())

    def test_5_frames_sequential_in_a_topic_of_several_partitions(self):
        """The producer run twice, with its defaults, into a topic of three
        partitions: the viewer gets both runs, each in order."""
        topic = unique("obs5")
        create_topic(topic, 3)
        produce_frames(topic, self.frames)
        produce_frames(topic, self.frames)
        v, port = self.start_viewer(topic, unique("view"))
        c = MultipartClient(port)
        got = self.read_indices(c, 2 * N)
        self.assert_sequential(got[:N], first=0)
        self.assert_sequential(got[N:], first=0)
        c.close()
        self.assertEqual(v.interrupt(), 0, v.output())

    def test_5_and_6_cameras_share_a_topic_by_key(self):
        """Two live cameras write into one topic at the same time, each
        under its own key (kafkasink key=); a viewer with kafkasrc key=
        shows one camera's frames, all of them, in order, and none of the
        other's."""
        topic = unique("obs5key")
        create_topic(topic, 1)
        door = Launch(*self.frames.producer(live=True), "!", "kafkasink",
                      "brokers=" + brokers(), "topic=" + topic, "key=door",
                      name="door camera")
        yard = Launch("videotestsrc", "is-live=true", "num-buffers=%d" % N, "pattern=snow", "!",
                      "video/x-raw,width=160,height=120,framerate=30/1", "!", "pngenc",
                      "compression-level=1", "!", "kafkasink", "brokers=" + brokers(),
                      "topic=" + topic, "key=yard", name="yard camera")
        door.wait()
        yard.wait()
        keys = kcat_messages(topic, 2 * N, fmt="%k\n").decode()
        self.assertEqual(sorted(set(keys.split())), ["door", "yard"])
        self.assertNotEqual(keys.split()[:N], ["door"] * N, "the cameras did not interleave")

        v, port = self.start_viewer(topic, unique("view"), extra_src=["key=door"])
        c = MultipartClient(port)
        self.assert_sequential(self.read_indices(c, N), first=0)
        c.close()
        self.assertEqual(v.interrupt(), 0, v.output())

        v, port = self.start_viewer(topic, unique("view"), extra_src=["key=yard"])
        c = MultipartClient(port)
        parts = [body for _h, body, _t in c.parts(N - 1)]
        c.close()
        self.assertEqual([i for i in map(self.frames.which, parts) if i is not None], [],
                         "the yard viewer showed door frames")
        self.assertEqual(v.interrupt(), 0, v.output())

    def test_1_reload_does_not_restart(self):
        topic = unique("obs1")
        produce_frames(topic, self.frames)
        v, port = self.start_viewer(topic, unique("view"))
        a = MultipartClient(port)
        first = self.read_indices(a, 10)
        self.assert_sequential(first, first=0)
        a.close()
        # The reload: a new request on the same viewer.
        b = MultipartClient(port)
        second = self.read_indices(b, 10)
        b.close()
        self.assert_sequential(second)
        # The reloaded page starts on the latest complete frame the viewer
        # holds: the one the first page showed last, or the one before it
        # when the next frame was being received.
        self.assertGreaterEqual(second[0], first[-1] - 1, "the reloaded page went back")
        self.assertLessEqual(second[0], first[-1] + 5, "the reload skipped ahead")

    def test_2_reopened_viewer_resumes(self):
        topic = unique("obs2")
        group = unique("view")
        produce_frames(topic, self.frames)
        v, port = self.start_viewer(topic, group)
        a = MultipartClient(port)
        seen = self.read_indices(a, 15)
        a.close()
        time.sleep(1)  # the browser stays closed a while: nothing must move on
        b = MultipartClient(port)
        later = self.read_indices(b, 5)
        b.close()
        self.assertGreaterEqual(later[0], seen[-1] - 1)
        self.assertLessEqual(later[0], seen[-1] + 5)
        # The viewer process itself restarts with the same group: committed
        # offsets bring it back near where it was (at-least-once: a frame or
        # two may repeat, none is skipped beyond what was pushed).
        self.assertEqual(v.interrupt(), 0, v.output())
        v2, port2 = self.start_viewer(topic, group)
        c = MultipartClient(port2)
        resumed = self.read_indices(c, 5)
        c.close()
        self.assert_sequential(resumed)
        self.assertGreater(resumed[0], 0, "the restarted viewer started over")
        self.assertGreaterEqual(resumed[0], later[-1] - 3)
        self.assertLessEqual(resumed[0], later[-1] + 5)

    def test_2_viewer_resumes_between_keyframes_of_a_coded_stream(self):
        """A viewer that starts between two keyframes of a VP8 stream (one
        every 60 frames, 30 fps) waits for the next message that carries the
        caps, then decodes from the next keyframe on, without an error."""
        topic = unique("obs2vp8")
        Launch("videotestsrc", "num-buffers=120", "pattern=ball", "!",
               "video/x-raw,width=160,height=120,framerate=30/1", "!", "vp8enc", "deadline=1",
               "keyframe-max-dist=60", "!", "kafkasink", "brokers=" + brokers(),
               "topic=" + topic, "sync=false", name="producer").wait()
        out_dir = tempfile.mkdtemp(prefix="gst-kafka-vp8-")
        self.addCleanup(shutil.rmtree, out_dir, True)
        out = Launch("kafkasrc", "brokers=" + brokers(), "topic=" + topic, "is-live=false",
                     "start-from=offset", "start-offset=10", "stop-at=end", "!", "vp8dec", "!",
                     "videoconvert", "!", "pngenc", "!", "multifilesink",
                     "location=" + os.path.join(out_dir, "%05d.png"), name="viewer").wait()
        self.assertIn("waiting for a message with gst.caps", out)
        decoded = len(os.listdir(out_dir))
        self.assertGreaterEqual(decoded, 60, out)
        self.assertLessEqual(decoded, 90, out)

    def test_2_viewer_resumes_in_an_opus_stream(self):
        """An Opus packet (160 bytes) is smaller than opusenc's caps, so the
        caps travel with a few packets only, and the others say so: a
        viewer that starts at one of them finds the caps in the packets
        just before and decodes from exactly there, without an error."""
        from kafka import KafkaConsumer
        topic = unique("obs2opus")
        Launch("audiotestsrc", "num-buffers=250", "samplesperbuffer=960", "!",
               "audio/x-raw,rate=48000,channels=2", "!", "opusenc", "!", "kafkasink",
               "brokers=" + brokers(), "topic=" + topic, "sync=false", name="producer").wait()
        consumer = KafkaConsumer(topic, bootstrap_servers=brokers(),
                                 auto_offset_reset="earliest", consumer_timeout_ms=10000)
        self.addCleanup(consumer.close)
        records = [m for _, m in zip(range(250), consumer)]
        self.assertEqual(len(records), 250)
        with_caps = [r.offset for r in records if "gst.caps" in dict(r.headers)]
        self.assertIn(0, with_caps)
        self.assertLess(len(with_caps), 25, with_caps)
        start = next(o for o in range(100, 250) if o not in with_caps)

        out_dir = tempfile.mkdtemp(prefix="gst-kafka-opus-")
        self.addCleanup(shutil.rmtree, out_dir, True)
        wav = os.path.join(out_dir, "out.wav")
        out = Launch("kafkasrc", "brokers=" + brokers(), "topic=" + topic, "is-live=false",
                     "start-from=offset", "start-offset=%d" % start, "stop-at=end", "!",
                     "opusdec", "!", "audioconvert", "!", "wavenc", "!", "filesink",
                     "location=" + wav, name="viewer").wait()
        self.assertNotIn("waiting for a message with gst.caps", out)
        import wave
        with wave.open(wav) as w:
            seconds = w.getnframes() / w.getframerate()
        # 20 ms a packet, from the one asked for.
        self.assertAlmostEqual(seconds, (250 - start) * 0.02, delta=0.03, msg=out)

    def test_6_one_stream_many_viewers(self):
        """Several browsers at once each see the whole stream."""
        topic = unique("obs6")
        v, port = self.start_viewer(topic, unique("view"))
        clients = [MultipartClient(port) for _ in range(4)]
        # Clients are connected before the first frame exists.
        produce_frames(topic, self.frames)
        for c in clients:
            got = self.read_indices(c, N)
            self.assert_sequential(got, first=0)
            c.close()

    def test_4_near_real_time(self):
        """Produce-to-browser latency while producer and viewer both run:
        the time from pushing a frame into kafkasink (in this process) to
        reading the last byte of its part over HTTP. Printed, not asserted."""
        import gi
        gi.require_version("Gst", "1.0")
        from gi.repository import Gst
        Gst.init(None)

        topic = unique("obs4")
        v, port = self.start_viewer(topic, unique("view"),
                                    extra_src=["config=kafka,fetch.wait.max.ms=10"])
        producer = Gst.parse_launch(
            "appsrc name=src is-live=true format=time caps=image/png,framerate=30/1 ! "
            "kafkasink brokers=%s topic=%s sync=false config=\"kafka, linger.ms=0\""
            % (brokers(), topic))
        self.addCleanup(producer.set_state, Gst.State.NULL)
        producer.set_state(Gst.State.PLAYING)
        src = producer.get_by_name("src")
        # The first frame creates the topic and lets the viewer join; the
        # measured frames follow at 30 fps.
        src.emit("push-buffer", Gst.Buffer.new_wrapped(self.frames.data[0]))
        c = MultipartClient(port)
        self.assertEqual(self.frames.which(c.part()[1]), 0)

        sent = {}
        received = []

        def read():
            for _ in range(1, N):
                _headers, body, t = c.part()
                received.append((self.frames.which(body), t))
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        start = time.monotonic()
        for i in range(1, N):
            due = start + i / 30.0
            while time.monotonic() < due:
                time.sleep(max(0, due - time.monotonic()))
            buf = Gst.Buffer.new_wrapped(self.frames.data[i])
            buf.pts = i * Gst.SECOND // 30
            sent[i] = time.monotonic()
            src.emit("push-buffer", buf)
        reader.join(60)
        c.close()
        got = [0] + [idx for idx, _t in received]
        latency = [1000 * (t - sent[idx]) for idx, t in received if idx in sent]
        self.assert_sequential(got, first=0)
        lat = sorted(latency)
        print("produce-to-browser latency, %d frames at 30 fps: p50 %.1f ms, p99 %.1f ms, "
              "max %.1f ms" % (len(lat), statistics.median(lat),
                               lat[int(0.99 * (len(lat) - 1))], lat[-1]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
