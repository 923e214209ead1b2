#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A viewer (gst-launch-1.0 kafkasrc group-id=... ! filesink) killed with
SIGKILL again and again while it consumes: each restart resumes from the
group's committed offset, so nothing is skipped; what it shows twice is
counted (at-least-once)."""

import os
import random
import signal
import subprocess
import tempfile
import time

from rellib import (LONG, Producer, ReliabilityTest, count, log, main, numbers, record,
                    unique, wait_for)

FRAMES = 10000 if LONG else 3000
KILLS = 10 if LONG else 5
# The broker's smallest session timeout: a killed member leaves the group
# this soon, so the next viewer gets the partition.
CONFIG = ("kafka, session.timeout.ms=6000, heartbeat.interval.ms=1000, "
          "auto.commit.interval.ms=200")


class ViewerKill(ReliabilityTest):
    def viewer(self, brokers, topic, group, out, stop_at_end=False):
        cmd = ["gst-launch-1.0", "-e", "kafkasrc", "brokers=" + brokers, "topic=" + topic,
               "group-id=" + group, "is-live=false", "config=" + CONFIG]
        if stop_at_end:
            cmd.append("stop-at=end")
        # 2 ms a frame: a viewer slow enough to be killed in the middle.
        cmd += ["!", "identity", "sleep-time=2000", "!", "filesink", "location=" + out,
                "append=true", "buffer-mode=unbuffered", "sync=false"]
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)

    def test_viewer_sigkill(self):
        cluster = self.cluster(1)
        topic = unique("viewer")
        cluster.create_topic(topic)
        producer = Producer(cluster.brokers, topic, newline=True)
        self.addCleanup(producer.abort)
        producer.run_paced(5000, FRAMES)
        result = producer.finish()
        self.assertEqual(result["delivered"], FRAMES)

        group = unique("view")
        fd, out = tempfile.mkstemp(prefix="gst-kafka-viewer-")
        os.close(fd)
        self.addCleanup(os.unlink, out)

        def lines():
            with open(out, "rb") as f:
                return numbers(f.read().split(b"\n"))

        rng = random.Random(8)
        runs = []
        for k in range(KILLS):
            before = len(lines())
            proc = self.viewer(cluster.brokers, topic, group, out)
            want = before + rng.randint(300, 600)
            try:
                wait_for(lambda: len(lines()) >= want or proc.poll() is not None, 90,
                         "viewer %d to show frames" % (k + 1))
            finally:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            run = lines()[before:]
            self.assertTrue(run, "viewer %d showed nothing" % (k + 1))
            log("viewer %d: frames %d..%d, SIGKILL" % (k + 1, run[0], run[-1]))
            runs.append(run)
            if lines()[-1] >= FRAMES - 1:
                break
        before = len(lines())
        proc = self.viewer(cluster.brokers, topic, group, out, stop_at_end=True)
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        self.assertEqual(proc.returncode, 0, err.decode(errors="replace"))
        runs.append(lines()[before:])

        got = lines()
        c = count(FRAMES, FRAMES, got)
        record("viewer SIGKILL %dx while consuming" % (len(runs) - 1), FRAMES, FRAMES,
               c["lost"], c["duplicated"], c["reordered"],
               "restart points: %s" % ", ".join(str(r[0]) for r in runs[1:] if r))
        for prev, nxt in zip(runs, runs[1:]):
            if not nxt:
                continue
            # Resumes at or before what was shown last: no gap ...
            self.assertLessEqual(nxt[0], prev[-1] + 1)
            # ... and from a committed offset, not from the beginning.
            self.assertGreater(nxt[0], prev[0])
        self.assertEqual(c["lost"], 0)
        self.assertEqual(c["reordered"], 0)


if __name__ == "__main__":
    main()
