# SPDX-License-Identifier: LGPL-2.1-or-later
"""The README's demo command and the embedding examples run: the demo
starts its own broker and serves a browser; the C++ application and the
Python script each produce frames and serve them back from Kafka over HTTP;
the C application reads its own frames back through appsink."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from e2elib import E2ETest, MultipartClient, brokers, free_port, unique  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("GST_KAFKA_BUILD_ROOT", os.path.join(HERE, "..", "..", "build"))


class Examples(E2ETest):
    def read_pngs(self, port, n):
        c = MultipartClient(port)
        for _ in range(n):
            headers, body, _t = c.part()
            self.assertEqual(headers.get("content-type"), "image/png")
            self.assertTrue(body.startswith(b"\x89PNG"))
        return c

    def test_cpp_application(self):
        port = free_port()
        app = subprocess.Popen([os.path.join(BUILD, "tests", "examples", "kafka-pipelines"),
                                brokers(), unique("example-cpp"), "20", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: app.poll() is None and app.kill())
        c = self.read_pngs(port, 20)
        out, _ = app.communicate(timeout=120)
        c.close()
        self.assertEqual(app.returncode, 0, out.decode(errors="replace"))
        self.assertIn(b"producer: end of stream", out)
        self.assertIn(b"viewer: end of stream", out)

    def run_demo(self, args, frames):
        """The README's first command, as a user runs it: no broker given, so
        it starts its own; a browser gets @frames frames; Ctrl-C stops it
        all. Returns what it printed."""
        port = free_port()
        env = dict(os.environ, BUILDDIR=BUILD, GST_KAFKA_SKIP_DEPS="1")
        env.pop("KAFKA_BROKERS", None)
        env.pop("KAFKA_LOCAL_DIR", None)
        demo = subprocess.Popen([os.path.join(HERE, "demo")] + args + ["--port", str(port)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.addCleanup(lambda: demo.poll() is None and os.killpg(demo.pid, signal.SIGKILL))
        printed = b""
        while b"Open http://127.0.0.1:%d/" % port not in printed:
            line = demo.stdout.readline()
            self.assertTrue(line, "the demo ended before serving:\n" + printed.decode(errors="replace"))
            printed += line
        broker_dir = re.search(rb"KAFKA_LOCAL_DIR=(\S+)", printed)
        self.assertIsNotNone(broker_dir, printed.decode(errors="replace"))
        self.assertTrue(os.path.isdir(broker_dir.group(1)))

        self.read_pngs(port, frames).close()

        # Ctrl-C in a terminal reaches the whole foreground process group.
        os.killpg(demo.pid, signal.SIGINT)
        out, _ = demo.communicate(timeout=90)
        out = (printed + out).decode(errors="replace")
        self.assertEqual(demo.returncode, 0, out)
        self.assertIn("stopped, removed " + broker_dir.group(1).decode(), out)
        self.assertFalse(os.path.exists(broker_dir.group(1)), out)
        return out

    def test_readme_demo_command(self):
        self.run_demo([], 10)

    def test_readme_demo_command_with_a_video(self):
        """Every frame of a 45-frame file reaches the browser, and the
        producer ends while the viewer goes on serving."""
        work = tempfile.mkdtemp(prefix="gst-kafka-demo-")
        self.addCleanup(shutil.rmtree, work, True)
        video = os.path.join(work, "video.mp4")
        subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=45", "pattern=ball",
                        "!", "video/x-raw,width=320,height=240,framerate=30/1", "!", "jpegenc",
                        "!", "qtmux", "!", "filesink", "location=" + video], check=True)
        out = self.run_demo([video], 45)
        self.assertIn("producer: end of stream", out)

    def test_c_application(self):
        frames = 25
        app = subprocess.run([os.path.join(BUILD, "tests", "examples", "kafka-frames"),
                              brokers(), unique("example-c"), str(frames)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        out = app.stdout.decode(errors="replace")
        self.assertEqual(app.returncode, 0, out)
        self.assertIn("producer: %d of %d frames acknowledged" % (frames, frames), out)
        # What the application printed of each frame it read back: the Kafka
        # offset, the pts the producer gave it, its size and its keyframe flag.
        # And when it was produced (its Kafka timestamp).
        read = [line for line in out.splitlines() if line.startswith("frame ")]
        produced = r", produced at \d\d:\d\d:\d\d\.\d{3} UTC$"
        for line in read:
            self.assertRegex(line, produced)
        expected = ["frame %d: offset %d, pts 0:00:%02d.%d00000000, 3072 bytes%s"
                    % (i, i, i // 10, i % 10, "" if i % 5 else ", keyframe")
                    for i in range(frames)]
        self.assertEqual([re.sub(produced, "", line) for line in read], expected)
        self.assertIn("consumer: %d frames read back as they were produced" % frames, out)

    def test_python_script(self):
        topic = unique("example-py")
        demo = [sys.executable, os.path.join(HERE, "kafka-demo.py"), "--brokers", brokers(),
                "--topic", topic, "--group", unique("view")]
        r = subprocess.run(demo + ["--producer-only", "--num-frames", "15"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout.decode(errors="replace"))
        self.assertIn(b"producer: end of stream", r.stdout)

        port = free_port()
        viewer = subprocess.Popen(demo + ["--viewer-only", "--port", str(port)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: viewer.poll() is None and viewer.kill())
        c = self.read_pngs(port, 15)
        c.close()
        viewer.send_signal(signal.SIGINT)
        out, _ = viewer.communicate(timeout=60)
        self.assertEqual(viewer.returncode, 0, out.decode(errors="replace"))
        self.assertIn(b"Open http://127.0.0.1:%d/" % port, out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
