# SPDX-License-Identifier: LGPL-2.1-or-later
"""The tutorial in a real browser: frames produced into Kafka by a producer
that has already finished are shown by headless Chromium through the
viewer pipeline (observation 3), and the picture is the one produced; and a
WebM stream carried by Kafka plays in a <video> element for a viewer that
joins it between two keyframes."""

import os
import shlex
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "http"))
import browser  # noqa: E402  (Chromium driving and PNG decoding)
from e2elib import (E2ETest, Launch, brokers, create_topic, free_port,  # noqa: E402
                    kcat_messages, unique, viewer)


class Browser(E2ETest):
    def assert_viewer_shows_bars(self, chromium, topic):
        """A viewer of @topic shows Chromium the colour bars produced."""
        port = free_port()
        v = viewer(topic, unique("view"), port)
        self.addCleanup(v.kill)
        with tempfile.TemporaryDirectory() as work:
            width, height, rows = browser.screenshot(
                chromium, "http://127.0.0.1:%d/" % port, work)
        self.assertEqual((width, height), (browser.WIDTH, browser.HEIGHT))
        errors = browser.check_bars(width, height, rows)
        self.assertEqual(errors, [], "Chromium did not show the produced picture")

    def test_finished_producer_shows_in_chromium(self):
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if not chromium:
            self.skipTest("chromium is not installed")
        topic = unique("browser")
        Launch("videotestsrc", "num-buffers=60", "pattern=smpte100", "!",
               "video/x-raw,width=%d,height=%d,framerate=30/1" % (browser.WIDTH,
                                                                  browser.HEIGHT),
               "!", "pngenc", "compression-level=1", "!", "kafkasink",
               "brokers=" + brokers(), "topic=" + topic, "sync=false",
               name="producer").wait()

        self.assert_viewer_shows_bars(chromium, topic)

    def test_frames_larger_than_the_topic_takes_show_in_chromium(self):
        """A topic that takes messages of 64 KiB at most, and frames of
        225 KiB: each frame goes as several messages, and the browser shows
        the whole picture."""
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if not chromium:
            self.skipTest("chromium is not installed")
        topic = unique("browser-large")
        create_topic(topic, 1, {"max.message.bytes": "65536"})
        Launch("videotestsrc", "num-buffers=30", "pattern=smpte100", "!",
               "video/x-raw,width=%d,height=%d,framerate=30/1" % (browser.WIDTH,
                                                                  browser.HEIGHT),
               "!", "pngenc", "compression-level=0", "!", "kafkasink",
               "brokers=" + brokers(), "topic=" + topic, "sync=false",
               "config=kafka,batch.size=65536", name="producer").wait()
        sizes = [int(s) for s in kcat_messages(topic, 200, "%S\n").split()]
        self.assertGreater(len(sizes), 30 * 3)
        self.assertLessEqual(max(sizes), 65536)

        self.assert_viewer_shows_bars(chromium, topic)

    def test_webm_joined_between_keyframes_plays_in_chromium(self):
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if not chromium:
            self.skipTest("chromium is not installed")
        topic = unique("browser-webm")
        w, h = browser.WIDTH, browser.HEIGHT
        # The bars on top, noise below (the browser's demuxer wants a fair
        # amount of data), 10 s of WebM with a keyframe every second.
        Launch(*shlex.split(
            f"compositor name=mix sink_1::ypos={h * 3 // 4} ! "
            f"video/x-raw,width={w},height={h},framerate=30/1 ! "
            "vp8enc deadline=1 keyframe-max-dist=30 ! webmmux streamable=true ! "
            f"kafkasink brokers={brokers()} topic={topic} sync=false "
            "videotestsrc pattern=smpte100 num-buffers=300 ! "
            f"video/x-raw,width={w},height={h},framerate=30/1 ! mix. "
            "videotestsrc pattern=snow num-buffers=300 ! "
            f"video/x-raw,width={w},height={h // 4},framerate=30/1 ! mix."),
               name="producer").wait()

        # Half-way through: a message that carries neither the caps nor the
        # WebM header, which come with the next keyframe.
        port = free_port()
        v = Launch("kafkasrc", "brokers=" + brokers(), "topic=" + topic,
                   "start-from=offset", "start-offset=150", "!", "souphttpserversink",
                   "port=%d" % port, "path=/stream", "cors=*", name="viewer", eos=False)
        self.addCleanup(v.kill)
        with tempfile.TemporaryDirectory() as work:
            try:
                pixels = browser.video_pixels(
                    chromium, "http://127.0.0.1:%d/stream" % port, work)
            except RuntimeError as e:
                self.fail("%s\n%s" % (e, v.output()))
        self.assertEqual(browser.check_pixels(pixels, "in the <video>"), [], v.output())
        self.assertIn("waiting for a message with gst.caps", v.output())


if __name__ == "__main__":
    unittest.main(verbosity=2)
