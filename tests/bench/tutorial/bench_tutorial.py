#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""gst-kafka against the tutorial it grew from, same machine, same broker,
same video: the tutorial's Python producer (OpenCV PNG, kafka-python) and
Flask consumer against our producer and viewer pipelines.

Figures (medians of --runs runs):
  encode fps      video file -> PNG -> Kafka, as fast as each can
                  (OpenCV's default PNG level 1 = pngenc compression-level=1)
  transport fps   pre-encoded PNG frames -> Kafka
  view fps        Kafka -> HTTP client (multipart)
  CPU ms/frame    of the producing / viewing process
  latency         produce (Kafka CreateTime) to HTTP client, at the
                  tutorial's pace of 5 frames/s: p50 / p99

  bench_tutorial.py [--frames N] [--runs R] [--json FILE]
Needs KAFKA_BROKERS (tests/bench/run starts a broker).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from e2elib import MultipartClient, free_port, unique  # noqa: E402

TUTORIAL = os.path.join(ROOT, "tests", "e2e", "tutorial")
BROKERS = os.environ.get("KAFKA_BROKERS")


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd, env=None):
    """Runs @cmd to completion: (wall seconds, CPU seconds of it)."""
    cpu0, t0 = children_cpu(), time.monotonic()
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wall, cpu = time.monotonic() - t0, children_cpu() - cpu0
    if r.returncode != 0:
        sys.exit("%s failed:\n%s" % (" ".join(cmd[:3]), r.stdout.decode(errors="replace")))
    return wall, cpu


def make_video(path, frames):
    subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=%d" % frames,
                    "pattern=ball", "!", "video/x-raw,width=640,height=360,framerate=30/1",
                    "!", "videoconvert", "!", "avenc_mpeg4", "bitrate=2000000", "!", "mp4mux",
                    "!", "filesink", "location=" + path], check=True)


def make_pngs(directory, frames):
    subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=%d" % frames,
                    "pattern=ball", "!", "video/x-raw,width=640,height=360,framerate=30/1",
                    "!", "pngenc", "compression-level=1", "!", "multifilesink",
                    "location=" + os.path.join(directory, "%05d.png")], check=True)


TUTORIAL_SEND_PRE_ENCODED = r'''
import os, sys, glob
from kafka import KafkaProducer
producer = KafkaProducer(bootstrap_servers=os.environ['KAFKA_BROKERS'].split(','),
                         max_request_size=16 * 1024 * 1024)
topic = os.environ['TUTORIAL_TOPIC']
frames = [open(f, 'rb').read() for f in sorted(glob.glob(sys.argv[1] + '/*.png'))]
for i in range(int(sys.argv[2])):       # the tutorial's send loop, minus OpenCV
    producer.send(topic, frames[i % len(frames)])
producer.flush()
'''


def gst(*words):
    return ["gst-launch-1.0", "-q"] + list(words)


def count_http(port, n, timeout=120):
    c = MultipartClient(port, timeout=timeout)
    t0 = time.monotonic()
    for _ in range(n):
        c.part()
    wall = time.monotonic() - t0
    c.close()
    return wall


def view_run(cmd, env, port, n):
    """Starts a viewer, reads @n - 1 of the @n frames of the topic over HTTP:
    (frames/s, CPU s/frame). The tutorial's parts have no Content-Length: a
    client (a browser too) knows a part is complete only when the next
    boundary arrives, so the last frame of a topic is never complete."""
    n -= 1
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        with open("/proc/%d/stat" % p.pid) as f:
            f.read()
        wall = count_http(port, n)
        with open("/proc/%d/stat" % p.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    finally:
        p.kill()
        p.wait()
    return n / wall, cpu / n


def kafka_timestamps(topic, n):
    r = subprocess.run(["kcat", "-b", BROKERS, "-C", "-t", topic, "-o", "beginning", "-c",
                        str(n), "-e", "-f", "%T\n"], stdout=subprocess.PIPE, check=True)
    return [int(x) / 1000.0 for x in r.stdout.split()]


def create_topic(topic):
    from kafka.admin import KafkaAdminClient, NewTopic
    admin = KafkaAdminClient(bootstrap_servers=BROKERS.split(","))
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        admin.close()


def latency_run(producer_cmd, viewer_cmd, env, port, topic, n):
    """Viewer first, then the producer at 5 fps: receive time minus the
    message's CreateTime for each frame (the k-th part is the k-th message).
    The topic exists before the viewer starts, and both viewers read it from
    its beginning, so that none misses a frame however long it takes to
    join its group."""
    create_topic(topic)
    v = subprocess.Popen(viewer_cmd, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.STDOUT)
    try:
        # The tutorial's consumer answers (and starts consuming) only when
        # its first frame arrives: connect from another thread.
        clients = []
        connect = threading.Thread(
            target=lambda: clients.append(MultipartClient(port, timeout=120)))
        connect.start()
        time.sleep(5)  # let the consumer join its group before frames flow
        p = subprocess.Popen(producer_cmd, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.STDOUT)
        connect.join()
        c = clients[0]
        received = []
        for _ in range(n - 1):  # the last part ends with the next boundary
            c.part()
            received.append(time.time())
        p.wait(timeout=120)
        c.close()
    finally:
        v.kill()
        v.wait()
    sent = kafka_timestamps(topic, n)
    lat = sorted(1000 * (r - s) for r, s in zip(received, sent))
    return statistics.median(lat), lat[int(0.99 * (len(lat) - 1))]


def median_of(runs, fn):
    values = [fn() for _ in range(runs)]
    return tuple(statistics.median(v[i] for v in values) for i in range(len(values[0])))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--latency-frames", type=int, default=25)
    ap.add_argument("--transport-frames", type=int, default=0,
                    help="frames sent in the transport test (default: 50 x --frames)")
    ap.add_argument("--json")
    args = ap.parse_args()
    if not BROKERS:
        sys.exit("KAFKA_BROKERS is not set (tests/bench/run starts a broker)")
    n = args.frames
    work = tempfile.mkdtemp(prefix="bench-tutorial-")
    video = os.path.join(work, "video.mp4")
    make_video(video, n)
    pngs = os.path.join(work, "png")
    os.makedirs(pngs)
    make_pngs(pngs, n)
    env = dict(os.environ, TUTORIAL_SLEEP="0")
    py = "/usr/bin/python3"
    results = []

    def producer_pair(what, tut_cmd, our_cmd_fn, n=n):
        def tut():
            topic = unique("tut")
            wall, cpu = timed(tut_cmd(topic), dict(env, TUTORIAL_TOPIC=topic))
            return n / wall, 1000 * cpu / n
        def ours():
            wall, cpu = timed(our_cmd_fn(unique("ours")), env)
            return n / wall, 1000 * cpu / n
        t_fps, t_cpu = median_of(args.runs, tut)
        o_fps, o_cpu = median_of(args.runs, ours)
        results.append({"name": what + " frames/s", "value": o_fps, "baseline": t_fps,
                        "ratio": o_fps / t_fps, "unit": "frames/s"})
        results.append({"name": what + " CPU ms/frame", "value": o_cpu, "baseline": t_cpu,
                        "ratio": t_cpu / o_cpu, "unit": "ms"})

    producer_pair("encode (video -> PNG -> Kafka)",
                  lambda topic: [py, os.path.join(TUTORIAL, "producer.py"), video],
                  lambda topic: gst("filesrc", "location=" + video, "!", "decodebin", "!",
                                    "videoconvert", "!", "pngenc", "compression-level=1", "!",
                                    "kafkasink", "brokers=" + BROKERS, "topic=" + topic,
                                    "sync=false"))
    # Transport: the n files sent over and over, --transport-frames in all,
    # so that the start-up of either process does not dominate.
    t = args.transport_frames or 50 * n
    producer_pair("transport (pre-encoded PNG -> Kafka)",
                  lambda topic: [py, "-c", TUTORIAL_SEND_PRE_ENCODED, pngs, str(t)],
                  lambda topic: gst("multifilesrc", "location=" + os.path.join(pngs, "%05d.png"),
                                    "caps=image/png,framerate=30/1", "stop-index=%d" % (n - 1),
                                    "loop=true", "!", "identity", "eos-after=%d" % t, "!",
                                    "kafkasink", "brokers=" + BROKERS, "topic=" + topic,
                                    "sync=false"), n=t)

    # Viewing: one topic with the frames, read by each viewer from the start.
    # Written as a camera would (timestamped frames: multifilesrc gives
    # none), the same pictures as the PNG files.
    topic = unique("view")
    timed(gst("videotestsrc", "num-buffers=%d" % n, "pattern=ball", "!",
              "video/x-raw,width=640,height=360,framerate=30/1", "!", "pngenc",
              "compression-level=1", "!", "kafkasink", "brokers=" + BROKERS,
              "topic=" + topic, "sync=false"), env)

    def tutorial_consumer():
        # The tutorial's consumer starts at the latest offset when its group
        # has none, and joins its group only once a client asks: give it
        # the earliest, so that it reads every frame of the topic whenever
        # it joins.
        return [py, "-c", "import kafka, runpy; orig = kafka.KafkaConsumer.__init__\n"
                "def init(self, *a, **k):\n k.setdefault('auto_offset_reset', 'earliest')\n"
                " orig(self, *a, **k)\nkafka.KafkaConsumer.__init__ = init\n"
                "runpy.run_path(%r, run_name='__main__')" % os.path.join(TUTORIAL, "consumer.py")]

    def tut_view():
        port = free_port()
        e = dict(env, TUTORIAL_TOPIC=topic, TUTORIAL_GROUP=unique("g"), TUTORIAL_PORT=str(port))
        return view_run(tutorial_consumer(), e, port, n)

    def our_view():
        port = free_port()
        cmd = gst("kafkasrc", "brokers=" + BROKERS, "topic=" + topic, "group-id=" + unique("g"),
                  "!", "multipartmux", "boundary=frame", "!", "souphttpserversink",
                  "port=%d" % port, "sync=false")  # as fast as it can, as the tutorial
        return view_run(cmd, env, port, n)

    t_fps, t_cpu = median_of(args.runs, tut_view)
    o_fps, o_cpu = median_of(args.runs, our_view)
    results.append({"name": "view (Kafka -> HTTP) frames/s", "value": o_fps, "baseline": t_fps,
                    "ratio": o_fps / t_fps, "unit": "frames/s"})
    results.append({"name": "view CPU ms/frame", "value": 1000 * o_cpu, "baseline": 1000 * t_cpu,
                    "ratio": t_cpu / o_cpu, "unit": "ms"})

    # Latency at the tutorial's pace (5 frames/s).
    m = args.latency_frames
    def tut_lat():
        topic = unique("lat-tut")
        port = free_port()
        e = dict(os.environ, TUTORIAL_TOPIC=topic, TUTORIAL_GROUP=unique("g"),
                 TUTORIAL_PORT=str(port), TUTORIAL_SLEEP="0.2")
        small = os.path.join(work, "lat.mp4")
        if not os.path.exists(small):
            make_video(small, m)
        return latency_run([py, os.path.join(TUTORIAL, "producer.py"), small],
                           tutorial_consumer(), e, port, topic, m)

    def our_lat():
        topic = unique("lat-ours")
        port = free_port()
        # A live source at the tutorial's pace, encoding each frame as it
        # does. The message timestamp is the frame's capture time, before
        # the PNG encoder (the tutorial's is taken after its encoder): our
        # figure includes the encoding, the tutorial's does not.
        producer = gst("videotestsrc", "is-live=true", "num-buffers=%d" % m, "pattern=ball",
                       "!", "video/x-raw,width=640,height=360,framerate=5/1", "!", "pngenc",
                       "compression-level=1", "!", "kafkasink", "brokers=" + BROKERS,
                       "topic=" + topic, "config=kafka,linger.ms=0")
        viewer = gst("kafkasrc", "brokers=" + BROKERS, "topic=" + topic,
                     "group-id=" + unique("g"), "start-from=earliest",
                     "config=kafka,fetch.wait.max.ms=5", "!", "multipartmux", "boundary=frame",
                     "!", "souphttpserversink", "port=%d" % port)
        return latency_run(producer, viewer, env, port, topic, m)

    t50, t99 = median_of(1, tut_lat)
    o50, o99 = median_of(1, our_lat)
    results.append({"name": "latency p50 at 5 fps", "value": o50, "baseline": t50,
                    "ratio": t50 / max(o50, 0.001), "unit": "ms"})
    results.append({"name": "latency p99 at 5 fps", "value": o99, "baseline": t99,
                    "ratio": t99 / max(o99, 0.001), "unit": "ms"})

    print("%-42s %12s %12s %8s" % ("tutorial comparison", "gst-kafka", "tutorial", "ratio"))
    for r in results:
        print("%-42s %12.2f %12.2f %7.2fx" % (r["name"], r["value"], r["baseline"], r["ratio"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"benchmark": "tutorial", "frames": n, "runs": args.runs,
                       "results": results}, f, indent=1)
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
