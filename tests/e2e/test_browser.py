# SPDX-License-Identifier: LGPL-2.1-or-later
"""The tutorial in a real browser: frames produced into Kafka by a producer
that has already finished are shown by headless Chromium through the
viewer pipeline (observation 3), and the picture is the one produced."""

import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "http"))
import browser  # noqa: E402  (Chromium driving and PNG decoding)
from e2elib import E2ETest, Launch, brokers, free_port, unique, viewer  # noqa: E402


class Browser(E2ETest):
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

        port = free_port()
        v = viewer(topic, unique("view"), port)
        self.addCleanup(v.kill)
        with tempfile.TemporaryDirectory() as work:
            width, height, rows = browser.screenshot(
                chromium, "http://127.0.0.1:%d/" % port, work)
        self.assertEqual((width, height), (browser.WIDTH, browser.HEIGHT))
        errors = browser.check_bars(width, height, rows)
        self.assertEqual(errors, [], "Chromium did not show the produced picture")


if __name__ == "__main__":
    unittest.main(verbosity=2)
