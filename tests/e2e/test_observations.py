# SPDX-License-Identifier: LGPL-2.1-or-later
"""The tutorial's six observations, with gst-kafka's producer and viewer run
as a user runs them (gst-launch-1.0) against a real broker, and an HTTP
client reading the stream as a browser does."""

import statistics
import time
import unittest

from e2elib import (E2ETest, Frames, MultipartClient, brokers, free_port, produce_frames,
                    unique, viewer, wait_for)

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
        self.assertGreaterEqual(second[0], first[-1], "the reloaded page went back")
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
        self.assertGreaterEqual(later[0], seen[-1])
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
        """Produce-to-HTTP latency while producer and viewer both run."""
        topic = unique("obs4")
        v, port = self.start_viewer(topic, unique("view"),
                                    extra_src=["config=kafka,fetch.wait.max.ms=10"])
        c = MultipartClient(port)
        # Frames paced at 30 fps by a live producer; the latency of frame i is
        # its receive time minus its due time.
        from e2elib import Launch
        t0 = time.monotonic()
        p = Launch(*self.frames.source(fps=30), "!", "identity", "sync=true", "!",
                   "kafkasink", "brokers=" + brokers(), "topic=" + topic,
                   "config=kafka,linger.ms=0", name="producer")
        self.addCleanup(p.kill)
        lat = []
        got = []
        for headers, body, t in c.parts(N):
            i = self.frames.which(body)
            got.append(i)
            lat.append(t - t0 - i / 30.0)
        p.wait()
        c.close()
        self.assert_sequential(got, first=0)
        # The pipeline start-up lands on the first frames; report the rest.
        steady = sorted(x - min(lat) for x in lat[10:])
        print("produce-to-browser latency over %d frames at 30 fps (relative to the "
              "fastest frame): p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (
                  len(steady), 1000 * statistics.median(steady),
                  1000 * steady[int(0.99 * (len(steady) - 1))], 1000 * steady[-1]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
