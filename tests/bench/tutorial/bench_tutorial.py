#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""gst-kafka against the tutorial it grew from, same machine, same broker,
same video: the tutorial's Python producer (OpenCV PNG, kafka-python) and
Flask consumer against our producer and viewer pipelines.

Figures (medians of --runs runs, the sides taking turns):
  encode frames/s     video file -> PNG -> Kafka, as fast as each can; ours
                      with pngenc and with frame-threaded avenc_png
                      (OpenCV's default PNG level 1 = pngenc compression-level=1)
  transport frames/s  pre-encoded PNG frames -> Kafka
  view frames/s       Kafka -> HTTP client (multipart)
  CPU ms/frame        of the producing / viewing process
  start-up s          process start to its first frame in Kafka
  latency             produce (Kafka CreateTime) to HTTP client, at the
                      tutorial's pace of 5 frames/s: p50 / p99

Rates and CPU figures are the steady state, measured the same way on both
sides. A producer writes to a topic whose broker stamps each message on
arrival (LogAppendTime): its rate runs from the append time of its frame
n/10 to that of its last frame, its CPU time is the process's between those
two instants. A viewer's rate runs from the client's receipt of part n/10 to
that of its last part. Start-up (interpreter and plugin loading, broker
connection, group join) is reported apart; "with start-up" figures divide
the frames by the whole life of the process.

  bench_tutorial.py [--frames N] [--runs R] [--only encode,transport,view,latency]
                    [--json FILE]
Needs KAFKA_BROKERS (tests/bench/run starts a broker).
"""

import argparse
import json
import os
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
CLK_TCK = os.sysconf("SC_CLK_TCK")


def run(cmd, env=None):
    """Runs @cmd to completion, exits with its output if it fails."""
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        sys.exit("%s failed:\n%s" % (" ".join(cmd[:3]), r.stdout.decode(errors="replace")))


def process_cpu(pid):
    """CPU seconds used so far by every thread of process @pid."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def broker_pid():
    """The process of the broker, when it is a one-node kafka-local broker
    (KAFKA_LOCAL_DIR, as tests/bench/run starts it), else None: the CPU a
    producer costs the broker is then measured too."""
    directory = os.environ.get("KAFKA_LOCAL_DIR")
    if not directory:
        return None
    try:
        with open(os.path.join(directory, "state.json")) as f:
            nodes = json.load(f)["nodes"]
        if len(nodes) != 1:
            return None
        process_cpu(nodes[0]["pid"])
        return nodes[0]["pid"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


BROKER_PID = broker_pid()


def sampled(cmd, env):
    """Runs @cmd to completion, reading its CPU time (and the broker's, if
    known, else 0) every 20 ms: (start time, [(time.time(), CPU s, broker
    CPU s)]), on the clock of the broker's timestamps."""
    def broker_cpu():
        return process_cpu(BROKER_PID) if BROKER_PID else 0.0

    with tempfile.TemporaryFile() as out:
        t0 = time.time()
        b0 = broker_cpu()
        p = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        samples = [(t0, 0.0, 0.0)]
        while True:
            try:
                cpu = process_cpu(p.pid)  # a zombie still has its stat
            except OSError:
                break
            samples.append((time.time(), cpu, broker_cpu() - b0))
            if p.poll() is not None:
                break
            time.sleep(0.02)
        if p.wait() != 0:
            out.seek(0)
            sys.exit("%s failed:\n%s" % (" ".join(cmd[:3]), out.read().decode(errors="replace")))
    return t0, samples


def cpu_at(samples, t, which=1):
    """The sampled CPU time at time @t, interpolated: the process's
    (@which 1) or the broker's (2)."""
    for a, b in zip(samples, samples[1:]):
        ta, ca, tb, cb = a[0], a[which], b[0], b[which]
        if ta <= t <= tb:
            return ca + (cb - ca) * (t - ta) / (tb - ta) if tb > ta else cb
    return samples[-1][which] if t > samples[-1][0] else samples[0][which]


def steady_rate(cmd, env, topic, n, warmup):
    """Runs a producer of @n frames into @topic, which the broker timestamps
    on arrival (LogAppendTime), so that both producers are timed by the same
    clock at the same place: (frames/s and CPU ms per frame after the first
    @warmup frames, seconds from start to the first frame in Kafka, frames/s
    over the whole life of the process, the broker's CPU ms per frame after
    the first @warmup frames, 0 if the broker's process is not known).

    Start-up (interpreter or plugin loading, broker connection, metadata)
    and the warm-up frames are left out: the figures are the steady rate of
    delivery, from the append time of frame @warmup to that of the last
    frame, and the process's CPU time between those instants."""
    create_topic(topic, {"message.timestamp.type": "LogAppendTime"})
    t0, samples = sampled(cmd, env)
    ts = kafka_timestamps(topic, n)
    if len(ts) != n:
        sys.exit("%s: %d frames in Kafka, %d sent" % (topic, len(ts), n))
    first, last = ts[warmup], ts[-1]
    frames = sum(1 for t in ts if t > first)
    cpu = cpu_at(samples, last) - cpu_at(samples, first)
    broker = cpu_at(samples, last, 2) - cpu_at(samples, first, 2)
    return (frames / (last - first), 1000 * cpu / frames, ts[0] - t0,
            n / (samples[-1][0] - t0), 1000 * broker / frames)


def make_video(path, frames):
    """An MPEG-4 file of the ball pattern. Debian's gst-libav 1.22.0
    avenc_mpeg4 leaves its output without timestamps, so mp4mux writes every
    frame at time 0: fine here, where every producer goes as fast as it can
    (sync=false), but such a file would not play at its pace."""
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


# What docs/tutorial.md adds to a producer that is not paced (sync=false):
# requests of many frames each, rather than one every 5 ms (librdkafka's
# default linger.ms), which spares the broker most of its CPU per frame.
UNPACED_CONFIG = "config=kafka,linger.ms=100"


def gst(*words):
    return ["gst-launch-1.0", "-q"] + list(words)


def our_encoder(video, topic):
    """The recommended producer pipeline (docs/tutorial.md), unpaced. The
    decoder and converter run in decodebin's streaming thread, the queue
    gives the PNG encoder (the costliest step) and kafkasink a thread of
    their own; format=RGB encodes 24-bit PNGs, as OpenCV does, where pngenc
    would otherwise be given RGBA."""
    return gst("filesrc", "location=" + video, "!", "decodebin", "!", "videoconvert", "!",
               "video/x-raw,format=RGB", "!", "queue", "!", "pngenc", "compression-level=1",
               "!", "kafkasink", "brokers=" + BROKERS, "topic=" + topic, "sync=false",
               UNPACED_CONFIG)


def our_threaded_encoder(video, topic):
    """The pipeline docs/tutorial.md gives for producing a file as fast as
    the machine allows: pngenc's PNG settings (level 1, unfiltered rows),
    encoded by libavcodec's PNG encoder, which spreads frames over a thread
    per core (threads=0), and the decoder and converter in threads of their
    own."""
    return gst("filesrc", "location=" + video, "!", "decodebin", "!", "queue", "!",
               "videoconvert", "!", "video/x-raw,format=RGB", "!", "queue", "!", "avenc_png",
               "compression-level=1", "threads=0", "!", "kafkasink", "brokers=" + BROKERS,
               "topic=" + topic, "sync=false", UNPACED_CONFIG)


def view_run(cmd, env, port, n):
    """Starts a viewer, reads @n - 1 of the @n frames of the topic over HTTP:
    (frames/s from the receipt of the first part to that of the last, CPU
    s/frame of the whole process, seconds from start to the first part).
    The tutorial's parts have no Content-Length: a client (a browser too)
    knows a part is complete only when the next boundary arrives, so the
    last frame of a topic is never complete. The first part comes once the
    viewer has joined its group and fetched: what follows is its steady
    rate (the client reads faster than either viewer sends). The CPU time
    includes the start-up: the tutorial's consumer fetches and parses much
    of the topic (up to 16 MB) before it sends its first part."""
    n -= 1
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        c = MultipartClient(port, timeout=120)
        c.part()
        t_first = time.monotonic()
        for _ in range(n - 1):
            c.part()
        t_end, cpu = time.monotonic(), process_cpu(p.pid)
        c.close()
    finally:
        p.kill()
        p.wait()
    return (n - 1) / (t_end - t_first), cpu / n, t_first - t0


def kafka_timestamps(topic, n):
    r = subprocess.run(["kcat", "-b", BROKERS, "-C", "-t", topic, "-o", "beginning", "-c",
                        str(n), "-e", "-q", "-f", "%T\n"], stdout=subprocess.PIPE, check=True)
    return [int(x) / 1000.0 for x in r.stdout.split()]


def create_topic(topic, configs=None):
    from kafka.admin import KafkaAdminClient, NewTopic
    admin = KafkaAdminClient(bootstrap_servers=BROKERS.split(","))
    try:
        admin.create_topics([NewTopic(topic, 1, 1, topic_configs=configs or {})])
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


def medians_alternating(runs, *contenders):
    """Runs each of @contenders @runs times, taking turns in an order that
    rotates from run to run (the load of a shared machine drifts): the
    medians of each one's figures."""
    values = [[] for _ in contenders]
    for r in range(runs):
        for k in range(len(contenders)):
            i = (r + k) % len(contenders)
            values[i].append(contenders[i]())
    return [tuple(statistics.median(v[k] for v in vs) for k in range(len(vs[0])))
            for vs in values]


def figure(name, ours, tutorial, unit, lower_is_better=False):
    ratio = tutorial / max(ours, 1e-9) if lower_is_better else ours / max(tutorial, 1e-9)
    return {"name": name, "value": ours, "baseline": tutorial, "ratio": ratio, "unit": unit}


PARTS = ["encode", "transport", "view", "latency"]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=150,
                    help="pre-encoded PNG files (transport), and the size of the others")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--encode-frames", type=int, default=0,
                    help="frames of the video (default: 4 x --frames)")
    ap.add_argument("--transport-frames", type=int, default=0,
                    help="frames sent in the transport test (default: 50 x --frames)")
    ap.add_argument("--view-frames", type=int, default=0,
                    help="frames of the topic the viewers read (default: 20 x --frames)")
    ap.add_argument("--latency-frames", type=int, default=25)
    ap.add_argument("--only", help="comma-separated: " + ",".join(PARTS))
    ap.add_argument("--json")
    args = ap.parse_args()
    if not BROKERS:
        sys.exit("KAFKA_BROKERS is not set (tests/bench/run starts a broker)")
    parts = args.only.split(",") if args.only else PARTS
    for part in parts:
        if part not in PARTS:
            ap.error("unknown part %r" % part)
    n = args.frames
    m = args.encode_frames or 4 * n
    t = args.transport_frames or 50 * n
    v = args.view_frames or 20 * n
    work = tempfile.mkdtemp(prefix="bench-tutorial-")
    video = os.path.join(work, "video.mp4")
    pngs = os.path.join(work, "png")
    env = dict(os.environ, TUTORIAL_SLEEP="0")
    py = "/usr/bin/python3"
    results = []

    def producer_runs(tut_cmd, ours, frames):
        """The tutorial's producer @tut_cmd against each of @ours, a list of
        (name of the figures, command): a row per figure of each of ours."""
        def steady(cmd_fn, prefix):
            topic = unique(prefix)  # a topic of its own for every run
            return steady_rate(cmd_fn(topic), dict(env, TUTORIAL_TOPIC=topic), topic, frames,
                               frames // 10)

        tut, *mine = medians_alternating(args.runs, lambda: steady(tut_cmd, "tut"),
                                         *[lambda c=c: steady(c, "ours") for _, c in ours])
        for (name, _), o in zip(ours, mine):
            results.append(figure(name + " frames/s", o[0], tut[0], "frames/s"))
            results.append(figure(name + " CPU ms/frame", o[1], tut[1], "ms", True))
            results.append(figure(name + " start-up s", o[2], tut[2], "s", True))
            results.append(figure(name + " frames/s with start-up", o[3], tut[3], "frames/s"))
            if BROKER_PID:
                results.append(figure(name + " broker CPU ms/frame", o[4], tut[4], "ms", True))

    if "encode" in parts:
        make_video(video, m)
        producer_runs(lambda topic: [py, os.path.join(TUTORIAL, "producer.py"), video],
                      [("encode (video -> PNG -> Kafka)",
                        lambda topic: our_encoder(video, topic)),
                       ("encode (frame-threaded avenc_png)",
                        lambda topic: our_threaded_encoder(video, topic))], m)
    if "transport" in parts:
        # The n files sent over and over, t frames in all.
        os.makedirs(pngs)
        make_pngs(pngs, n)
        producer_runs(lambda topic: [py, "-c", TUTORIAL_SEND_PRE_ENCODED, pngs, str(t)],
                      [("transport (pre-encoded PNG -> Kafka)",
                        lambda topic: gst("multifilesrc",
                                          "location=" + os.path.join(pngs, "%05d.png"),
                                          "caps=image/png,framerate=30/1",
                                          "stop-index=%d" % (n - 1), "loop=true",
                                          "num-buffers=%d" % t, "!", "kafkasink",
                                          "brokers=" + BROKERS, "topic=" + topic,
                                          "sync=false"))], t)

    def tutorial_consumer():
        # The tutorial's consumer starts at the latest offset when its group
        # has none, and joins its group only once a client asks: give it
        # the earliest, so that it reads every frame of the topic whenever
        # it joins.
        return [py, "-c", "import kafka, runpy; orig = kafka.KafkaConsumer.__init__\n"
                "def init(self, *a, **k):\n k.setdefault('auto_offset_reset', 'earliest')\n"
                " orig(self, *a, **k)\nkafka.KafkaConsumer.__init__ = init\n"
                "runpy.run_path(%r, run_name='__main__')" % os.path.join(TUTORIAL, "consumer.py")]

    if "view" in parts:
        # One topic of v frames, read by each viewer from the start; enough
        # of them that the socket buffers (a few MB) hold a small part of
        # the stream. Written as a camera would (timestamped frames), the
        # same pictures as the video.
        topic = unique("view")
        run(gst("videotestsrc", "num-buffers=%d" % v, "pattern=ball", "!",
                "video/x-raw,width=640,height=360,framerate=30/1", "!", "pngenc",
                "compression-level=1", "!", "kafkasink", "brokers=" + BROKERS,
                "topic=" + topic, "sync=false"), env)

        def tut_view():
            port = free_port()
            e = dict(env, TUTORIAL_TOPIC=topic, TUTORIAL_GROUP=unique("g"),
                     TUTORIAL_PORT=str(port))
            return view_run(tutorial_consumer(), e, port, v)

        def our_view():
            port = free_port()
            cmd = gst("kafkasrc", "brokers=" + BROKERS, "topic=" + topic,
                      "group-id=" + unique("g"), "!", "multipartmux", "boundary=frame", "!",
                      "souphttpserversink", "port=%d" % port,
                      "sync=false")  # as fast as it can, as the tutorial
            return view_run(cmd, env, port, v)

        tut, ours = medians_alternating(args.runs, tut_view, our_view)
        results.append(figure("view (Kafka -> HTTP) frames/s", ours[0], tut[0], "frames/s"))
        results.append(figure("view CPU ms/frame with start-up", 1000 * ours[1], 1000 * tut[1], "ms", True))
        results.append(figure("view start-up s", ours[2], tut[2], "s", True))

    # Latency at the tutorial's pace (5 frames/s).
    lm = args.latency_frames

    def tut_lat():
        topic = unique("lat-tut")
        port = free_port()
        e = dict(os.environ, TUTORIAL_TOPIC=topic, TUTORIAL_GROUP=unique("g"),
                 TUTORIAL_PORT=str(port), TUTORIAL_SLEEP="0.2")
        small = os.path.join(work, "lat.mp4")
        if not os.path.exists(small):
            make_video(small, lm)
        return latency_run([py, os.path.join(TUTORIAL, "producer.py"), small],
                           tutorial_consumer(), e, port, topic, lm)

    def our_lat():
        topic = unique("lat-ours")
        port = free_port()
        # A live source at the tutorial's pace, encoding each frame as it
        # does. The message timestamp is the frame's capture time, before
        # the PNG encoder (the tutorial's is taken after its encoder): our
        # figure includes the encoding, the tutorial's does not.
        producer = gst("videotestsrc", "is-live=true", "num-buffers=%d" % lm, "pattern=ball",
                       "!", "video/x-raw,width=640,height=360,framerate=5/1", "!", "pngenc",
                       "compression-level=1", "!", "kafkasink", "brokers=" + BROKERS,
                       "topic=" + topic, "config=kafka,linger.ms=0")
        viewer = gst("kafkasrc", "brokers=" + BROKERS, "topic=" + topic,
                     "group-id=" + unique("g"), "start-from=earliest",
                     "config=kafka,fetch.wait.max.ms=5", "!", "multipartmux", "boundary=frame",
                     "!", "souphttpserversink", "port=%d" % port)
        return latency_run(producer, viewer, env, port, topic, lm)

    if "latency" in parts:
        t50, t99 = median_of(1, tut_lat)
        o50, o99 = median_of(1, our_lat)
        results.append(figure("latency p50 at 5 fps", o50, t50, "ms", True))
        results.append(figure("latency p99 at 5 fps", o99, t99, "ms", True))

    print("%-50s %12s %12s %8s" % ("tutorial comparison", "gst-kafka", "tutorial", "ratio"))
    for r in results:
        print("%-50s %12.3f %12.3f %7.2fx" % (r["name"], r["value"], r["baseline"], r["ratio"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"benchmark": "tutorial", "frames": n, "encode_frames": m,
                       "transport_frames": t, "view_frames": v, "runs": args.runs, "results": results}, f,
                      indent=1)
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
