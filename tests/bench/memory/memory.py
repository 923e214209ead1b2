#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Memory of the producer under a stalled broker, and payload copies on the
hot paths of kafkasink and kafkasrc.

stall     A live producer (videotestsrc, 640x360 I420 frames of 337.5 KiB at
          30 fps, no encoder) into kafkasink with
          queue.buffering.max.kbytes=BOUND. After a few seconds the broker is
          paused (kafka-local pause 1, SIGSTOP) for --stall seconds, then
          resumed. Samples the producer's RSS every 0.25 s: the growth while
          stalled must stay under BOUND (what the configuration allows
          librdkafka to hold) and reach a plateau (no growth in the second
          half of the stall). Needs KAFKA_LOCAL_DIR (a kafka-local broker).

copies    valgrind --tool=dhat --mode=copy (which counts the bytes of every
          memcpy/memmove/strcpy... call, with its call stack) on kafkasink
          producing N and 3N frames of 1280x720 I420 (1.3 MiB), and on
          kafkasrc reading them back: bytes copied per additional frame in
          calls made from kafkasink, kafkasrc or librdkafka (any stack frame
          in libgstkafka or librdkafka), in frame copies. The whole
          process's bytes per frame show that DHAT sees large copies
          (videotestsrc draws with memcpy). Then the same with each frame
          split into 6 messages (kafkasink max-message-size=240000), read
          back into souphttpserversink (kafkasrc joins the parts into a
          buffer of 6 memories, which the HTTP sink queues memory by
          memory): copies made from those three.

  memory.py [--stall S] [--bound KB] [--frames N] [--json FILE]
Needs KAFKA_BROKERS.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
KAFKA_LOCAL = os.path.join(ROOT, "tests", "kafka", "kafka-local")
BROKERS = os.environ.get("KAFKA_BROKERS")


def unique(prefix):
    return "%s-%d" % (prefix, time.time_ns())


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def kafka_local(*words):
    subprocess.run([KAFKA_LOCAL] + list(words), check=True,
                   stdout=subprocess.DEVNULL)


def stall(args):
    topic = unique("mem-stall")
    cmd = ["gst-launch-1.0", "-q", "videotestsrc", "is-live=true",
           "pattern=ball", "!",
           "video/x-raw,format=I420,width=640,height=360,framerate=30/1", "!",
           "kafkasink", "brokers=" + BROKERS, "topic=" + topic,
           "config=kafka,queue.buffering.max.kbytes=%d,"
           "message.timeout.ms=600000" % args.bound]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    samples = []  # (seconds since start, phase, RSS KiB)
    try:
        t0 = time.monotonic()

        def sample_for(seconds, phase):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                samples.append((time.monotonic() - t0, phase, rss_kb(p.pid)))
                time.sleep(0.25)

        sample_for(4, "running")
        kafka_local("pause", "1")
        try:
            sample_for(args.stall, "stalled")
        finally:
            kafka_local("resume", "1")
        sample_for(4, "resumed")
        alive = p.poll() is None
    finally:
        p.terminate()
        p.wait()
    before = max(s[2] for s in samples if s[1] == "running")
    stalled = [s for s in samples if s[1] == "stalled"]
    peak = max(s[2] for s in stalled)
    half = stalled[len(stalled) // 2:]
    plateau = max(s[2] for s in half) - half[0][2]
    print("producer RSS: %.1f MB before the stall, %.1f MB peak while "
          "stalled (bound %d KB), %+.2f MB in the second half of the stall; "
          "%s after resume" % (before / 1024, peak / 1024, args.bound,
                               plateau / 1024,
                               "running" if alive else "exited"))
    return [
        {"name": "producer RSS growth while stalled",
         "value": (peak - before) / 1024, "baseline": args.bound / 1024,
         "baseline_name": "queue.buffering.max.kbytes", "unit": "MB",
         "before": before / 1024, "peak": peak / 1024,
         "samples": [(round(t, 2), ph, kb) for t, ph, kb in samples]},
        {"name": "producer RSS plateau (growth, 2nd half of stall)",
         "value": plateau / 1024, "baseline": (peak - before) / 1024,
         "baseline_name": "growth while stalled", "unit": "MB"},
    ]


def copied_bytes(cmd, outfile):
    """Bytes that went through memcpy/memmove/strcpy & co. under valgrind's
    DHAT in copy mode: (in all, in calls made from kafkasink, kafkasrc or
    librdkafka)."""
    subprocess.run(["valgrind", "--tool=dhat", "--mode=copy",
                    "--dhat-out-file=" + outfile] + cmd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(outfile) as f:
        d = json.load(f)
    frames = d["ftbl"]
    ours = [i for i, f in enumerate(frames)
            if "libgstkafka" in f or "librdkafka" in f or "libgstsouphttpserver" in f]
    ours = set(ours)
    total = sum(p["tb"] for p in d["pps"])
    kafka = sum(p["tb"] for p in d["pps"] if ours.intersection(p["fs"]))
    return total, kafka


def copies(args):
    """Bytes copied per frame by the Kafka code (kafkasink, kafkasrc,
    librdkafka), as the difference between a run of N and one of 3N frames,
    which cancels start-up and shutdown. The whole process's figure shows
    that the tool sees large copies: videotestsrc draws its frames with
    memcpy."""
    if not shutil.which("valgrind"):
        print("valgrind is not installed: no copy count")
        return []
    w, h = 1280, 720
    size = w * h * 3 // 2
    n1, n2 = args.frames, 3 * args.frames
    caps = "video/x-raw,format=I420,width=%d,height=%d,framerate=30/1" % (w, h)

    def sink(n, topic, extra=()):
        return ["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=%d" % n,
                "!", caps, "!", "kafkasink", "brokers=" + BROKERS,
                "topic=" + topic, "sync=false"] + list(extra)

    def src(topic, sink=("fakesink",)):
        return ["gst-launch-1.0", "-q", "kafkasrc", "brokers=" + BROKERS,
                "topic=" + topic, "is-live=false", "stop-at=end", "!"] + list(sink)

    per_frame = {}
    with tempfile.TemporaryDirectory() as tmp:
        def marginal(make):
            counts = []
            for n in (n1, n2):
                counts.append(copied_bytes(make(n), os.path.join(
                    tmp, "%d.json" % len(os.listdir(tmp)))))
            return [max(0, b - a) / (n2 - n1)
                    for a, b in zip(counts[0], counts[1])]

        topics = {}

        def sink_run(n, extra=()):
            topics[n] = unique("mem-copies")
            return sink(n, topics[n], extra)

        per_frame["kafkasink"] = marginal(sink_run)
        per_frame["kafkasrc"] = marginal(lambda n: src(topics[n]))
        per_frame["split kafkasink"] = marginal(
            lambda n: sink_run(n, ["max-message-size=240000"]))
        per_frame["joined kafkasrc"] = marginal(lambda n: src(
            topics[n], ["souphttpserversink", "port=0", "wait-for-clients=false"]))
    figures = []
    for name, what in (("kafkasink", "videotestsrc ! kafkasink"),
                       ("kafkasrc", "kafkasrc ! fakesink"),
                       ("split kafkasink",
                        "videotestsrc ! kafkasink max-message-size=240000 (6 parts)"),
                       ("joined kafkasrc", "kafkasrc (6 parts) ! souphttpserversink")):
        total, kafka = per_frame[name]
        print("%s: %.0f bytes copied per %d-byte frame by Kafka code "
              "(%.4f copies), %.0f by the whole process" %
              (what, kafka, size, kafka / size, total))
        figures.append({"name": name + " payload copies per frame",
                        "value": kafka / size, "baseline": 1.0,
                        "baseline_name": "one copy", "unit": "copies",
                        "kafka_bytes_per_frame": kafka,
                        "process_bytes_per_frame": total,
                        "frame_size": size})
    return figures


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stall", type=float, default=20)
    ap.add_argument("--bound", type=int, default=32768,
                    help="queue.buffering.max.kbytes of the stalled producer")
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--json")
    args = ap.parse_args()
    if not BROKERS:
        sys.exit("KAFKA_BROKERS is not set (tests/bench/run starts a broker)")
    figures = []
    if os.environ.get("KAFKA_LOCAL_DIR"):
        figures += stall(args)
    else:
        print("KAFKA_LOCAL_DIR is not set: cannot stall the broker")
    figures += copies(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"benchmark": "memory", "results": figures}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
