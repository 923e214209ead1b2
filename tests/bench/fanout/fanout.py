#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fan-out benchmark: souphttpserversink against tcpserversink.

Both serve the same 30 fps 640x360 JPEG stream (pre-encoded frames, so the
encoder does not dominate the CPU) to 1, 10, 100 and 200 clients, one server
process at a time. For each run it measures, within a fixed window, the
frames every client received, the server's CPU time and RSS, and frames
delivered per CPU second.

usage: fanout.py --client PATH/fanout-client [--clients 1,10,100,200]
                 [--warmup 6] [--window 10] [--runs 1] [--json FILE]

With --runs R every figure is the median of R runs; --json FILE also writes
them as JSON for tests/bench/run.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

FPS = 30
CLK_TCK = os.sysconf("SC_CLK_TCK")

SINKS = {
    "souphttpserversink": (
        "souphttpserversink port={port} sync=true wait-for-clients=false",
        "auto", "/"),
    "tcpserversink": (
        "multipartmux boundary=frame ! "
        "tcpserversink host=127.0.0.1 port={port} sync=true",
        "frame", None),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the server does not listen")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def make_frames(directory):
    subprocess.run(
        ["gst-launch-1.0", "-q", "videotestsrc", "pattern=smpte",
         "horizontal-speed=8", "num-buffers=30", "!",
         "video/x-raw,width=640,height=360", "!", "jpegenc", "quality=85",
         "!", "multifilesink", f"location={directory}/f%02d.jpg"],
        check=True)
    sizes = [os.path.getsize(os.path.join(directory, f"f{i:02d}.jpg"))
             for i in range(30)]
    return sum(sizes) / len(sizes)


def serve(sink, port, directory):
    """The server process: pre-encoded frames at FPS into the sink."""
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import GLib, Gst

    Gst.init(None)
    frames = []
    for i in range(30):
        with open(os.path.join(directory, f"f{i:02d}.jpg"), "rb") as f:
            frames.append(Gst.Buffer.new_wrapped(f.read()))
    pipeline = Gst.parse_launch(
        "appsrc name=src format=time is-live=false max-buffers=4 block=true "
        f"caps=image/jpeg,width=640,height=360,framerate={FPS}/1 ! "
        + SINKS[sink][0].format(port=port))
    src = pipeline.get_by_name("src")
    count = [0]

    def need_data(appsrc, _length):
        buf = frames[count[0] % len(frames)].copy()
        buf.pts = count[0] * Gst.SECOND // FPS
        buf.duration = Gst.SECOND // FPS
        count[0] += 1
        appsrc.emit("push-buffer", buf)

    src.connect("need-data", need_data)
    pipeline.set_state(Gst.State.PLAYING)
    GLib.MainLoop().run()


def run(client, directory, sink, n, warmup, window):
    port = free_port()
    _, boundary, path = SINKS[sink]
    server = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--serve", sink,
         "--port", str(port), "--dir", directory],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, server)
        args = [client, "127.0.0.1", str(port), str(n), boundary,
                str(warmup), str(window)]
        if path:
            args.append(path)
        reader = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = reader.stdout.readline()
        if not line.startswith("connected"):
            raise RuntimeError(f"client: {line!r}")
        time.sleep(warmup)
        cpu0 = cpu_seconds(server.pid)
        t0 = time.monotonic()
        time.sleep(window)
        cpu1 = cpu_seconds(server.pid)
        t1 = time.monotonic()
        rss = rss_mb(server.pid)
        out = reader.communicate(timeout=60)[0].split("\n")
        frames = [int(l.split()[0]) for l in out[1:] if l.strip()]
    finally:
        server.terminate()
        server.wait()
    cpu = cpu1 - cpu0
    return {
        "frames": frames,
        "expected": FPS * window,
        "cpu": cpu,
        "cpu_pct": 100 * cpu / (t1 - t0),
        "rss": rss,
        "per_cpu_s": sum(frames) / cpu if cpu > 0 else float("inf"),
    }


def median_run(runs):
    """The run of median frames per CPU second."""
    runs = sorted(runs, key=lambda r: r["per_cpu_s"])
    return runs[len(runs) // 2]


def json_figures(n, results):
    soup, tcp = results["souphttpserversink"], results["tcpserversink"]
    return [
        {"name": f"{n} clients frames/CPU s", "value": soup["per_cpu_s"],
         "baseline": tcp["per_cpu_s"], "baseline_name": "tcpserversink",
         "unit": "frames/CPU s"},
        {"name": f"{n} clients slowest client %",
         "value": 100 * min(soup["frames"]) / soup["expected"],
         "baseline": 100 * min(tcp["frames"]) / tcp["expected"],
         "baseline_name": "tcpserversink", "unit": "%"},
        {"name": f"{n} clients server RSS MB", "value": soup["rss"],
         "baseline": tcp["rss"], "baseline_name": "tcpserversink",
         "unit": "MB"},
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--client")
    parser.add_argument("--serve", choices=SINKS.keys(), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--clients", default="1,10,100,200")
    parser.add_argument("--warmup", type=float, default=6)
    parser.add_argument("--window", type=float, default=10)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.dir)
        return 0
    if not args.client:
        parser.error("--client is required")

    with tempfile.TemporaryDirectory(prefix="fanout-") as directory:
        frame_size = make_frames(directory)
        print(f"{FPS} fps 640x360 JPEG, {frame_size / 1024:.1f} KiB per "
              f"frame, {args.window:g} s window after {args.warmup:g} s")
        print(f"{'clients':>7} {'sink':<19} {'frames/client min/med':>22} "
              f"{'of sent':>8} {'CPU':>6} {'RSS MB':>7} {'frames/CPU s':>13} "
              f"{'vs tcp':>7}")
        ok = True
        figures = []
        for n in [int(x) for x in args.clients.split(",")]:
            results = {}
            for sink in ("tcpserversink", "souphttpserversink"):
                results[sink] = r = median_run(
                    [run(args.client, directory, sink, n, args.warmup,
                         args.window) for _ in range(args.runs)])
                lo = min(r["frames"])
                med = statistics.median(r["frames"])
                ratio = ""
                if sink == "souphttpserversink":
                    tcp = results["tcpserversink"]["per_cpu_s"]
                    ratio = f"{r['per_cpu_s'] / tcp:.2f}x"
                    if lo < 0.99 * r["expected"]:
                        ok = False
                print(f"{n:>7} {sink:<19} {lo:>10} / {med:<9g} "
                      f"{100 * lo / r['expected']:>7.1f}% "
                      f"{r['cpu_pct']:>5.1f}% {r['rss']:>7.1f} "
                      f"{r['per_cpu_s']:>13.0f} {ratio:>7}", flush=True)
            figures.extend(json_figures(n, results))
        print("every souphttpserversink client got >= 99% of the frames"
              if ok else "some souphttpserversink client got < 99%")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"benchmark": "fanout", "window": args.window,
                           "runs": args.runs, "frame_size": frame_size,
                           "results": figures}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
