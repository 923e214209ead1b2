# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the reliability tests share: their own Kafka cluster (kafka-local),
a producer of numbered frames through kafkasink, readers of a topic through
kafkasrc and kcat, the loss/duplicate/order count, and the results table.

Every test starts its own broker(s) and always stops them. The long version
of each test runs with GST_KAFKA_RELIABILITY_LONG=1 (tests/reliability/run
--long)."""

import atexit
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
from gi.repository import Gst, GstApp  # noqa: E402,F401

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KAFKA_LOCAL = os.path.join(ROOT, "tests", "kafka", "kafka-local")
LONG = os.environ.get("GST_KAFKA_RELIABILITY_LONG", "") not in ("", "0")
SKIP = 77
FRAME_RE = re.compile(rb"frame-(\d{8})")

Gst.init(None)


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def frame(i, newline=False):
    return b"frame-%08d" % i + (b"\n" if newline else b"")


def numbers(payloads):
    """Frame numbers found in @payloads, in order (other payloads ignored)."""
    out = []
    for p in payloads:
        m = FRAME_RE.match(p or b"")
        if m:
            out.append(int(m.group(1)))
    return out


def wait_for(predicate, timeout=60, what="condition", interval=0.1):
    """Polls @predicate (a cheap look at another process) until true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %ds waiting for %s" % (timeout, what))


# --- Brokers -----------------------------------------------------------------

_clusters = []


def _stop_all():
    for c in list(_clusters):
        c.stop()


atexit.register(_stop_all)
for _sig in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, lambda signum, _f: sys.exit(128 + signum))


class Cluster:
    """A kafka-local instance of @nodes nodes, stopped by stop() or at exit."""

    def __init__(self, nodes=1):
        self.nodes = nodes
        r = subprocess.run([KAFKA_LOCAL, "start", "--nodes", str(nodes)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise AssertionError("kafka-local start failed:\n" + r.stderr[-3000:])
        env = dict(line.split("=", 1) for line in r.stdout.split())
        self.brokers = env["KAFKA_BROKERS"]
        self.dir = env["KAFKA_LOCAL_DIR"]
        _clusters.append(self)
        log("%d-node cluster %s" % (nodes, self.brokers))

    def ctl(self, *args, check=True, timeout=180):
        r = subprocess.run([KAFKA_LOCAL] + list(args) + ["--dir", self.dir],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("kafka-local %s failed:\n%s" % (" ".join(args), r.stderr))
        return r.stdout.strip()

    def kill(self, node, sig="KILL"):
        self.ctl("kill", str(node), "--signal", sig)

    def restart(self, node):
        self.ctl("restart", str(node))

    def pause(self, node):
        self.ctl("pause", str(node))

    def resume(self, node):
        self.ctl("resume", str(node))

    def pid(self, node):
        with open(os.path.join(self.dir, "state.json")) as f:
            for n in json.load(f)["nodes"]:
                if n["id"] == node:
                    return n["pid"]
        return None

    def metadata(self, topic):
        r = subprocess.run(["kcat", "-b", self.brokers, "-L", "-J", "-t", topic],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=30)
        if r.returncode != 0:
            return None
        for t in json.loads(r.stdout).get("topics", []):
            for p in t.get("partitions", []):
                if p["partition"] == 0:
                    return p
        return None

    def leader(self, topic):
        md = self.metadata(topic)
        return md["leader"] if md else -1

    def isr(self, topic):
        md = self.metadata(topic)
        return sorted(r["id"] for r in md.get("isrs", [])) if md else []

    def wait_isr(self, topic, size, timeout=120):
        wait_for(lambda: len(self.isr(topic)) >= size, timeout,
                 "%d in-sync replicas of %s" % (size, topic), interval=0.5)

    def create_topic(self, name, partitions=1, replication=1, configs=None):
        from kafka.admin import KafkaAdminClient, NewTopic
        admin = KafkaAdminClient(bootstrap_servers=self.brokers.split(","))
        try:
            admin.create_topics([NewTopic(name, partitions, replication,
                                          topic_configs=configs or {})])
        finally:
            admin.close()
        wait_for(lambda: self.leader(name) > 0, 60, "a leader for " + name)

    def stop(self):
        if self in _clusters:
            _clusters.remove(self)
            subprocess.run([KAFKA_LOCAL, "stop", "--dir", self.dir],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# --- Pipelines ---------------------------------------------------------------

class Bus:
    """Collects a pipeline's bus messages; polled by the thread that drives
    the pipeline (no thread of its own, so no lock against the GIL)."""

    def __init__(self, pipeline):
        self.bus = pipeline.get_bus()
        self.warnings = []
        self.errors = []
        self.elements = []
        self.eos = False

    @property
    def done(self):
        return self.eos or bool(self.errors)

    def drain(self, timeout=0):
        """Handles pending messages, waiting up to @timeout ns for the first."""
        msg = self.bus.timed_pop(timeout)
        while msg:
            self._handle(msg)
            msg = self.bus.timed_pop(0)

    def _handle(self, msg):
        if msg.type == Gst.MessageType.WARNING:
            err, dbg = msg.parse_warning()
            self.warnings.append((msg.src.get_name(), err.message, dbg or ""))
            log("warning from %s: %s" % (msg.src.get_name(), err.message))
        elif msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            self.errors.append((msg.src.get_name(), err.message, dbg or ""))
            log("error from %s: %s (%s)" % (msg.src.get_name(), err.message, dbg))
        elif msg.type == Gst.MessageType.EOS:
            self.eos = True
        elif msg.type == Gst.MessageType.ELEMENT:
            self.elements.append(msg.get_structure().copy())

    def wait_done(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.done and time.monotonic() < deadline:
            self.drain(100 * Gst.MSECOND)
        return self.done

    def stop(self):
        self.drain()


class Producer:
    """appsrc ! kafkasink: pushes numbered frames b"frame-%08d"."""

    def __init__(self, brokers, topic, config=None, extra="", newline=False,
                 interval=10 * Gst.MSECOND, pad=0):
        desc = ("appsrc name=src format=time block=true max-buffers=16 "
                "caps=application/x-numbered-frame ! kafkasink name=sink "
                "brokers=%s topic=%s sync=false %s" % (brokers, topic, extra))
        self.pipeline = Gst.parse_launch(desc)
        if config:
            self.pipeline.get_by_name("sink").set_property(
                "config", Gst.Structure.from_string(config)[0])
        self.src = self.pipeline.get_by_name("src")
        self.sink = self.pipeline.get_by_name("sink")
        self.newline = newline
        self.interval = interval
        self.pad = b"\0" * pad
        self.sent = 0
        self.bus = Bus(self.pipeline)
        self.max_queued = 0
        self.pushing = True
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            raise AssertionError("producer did not start: %s" % self.bus.errors)

    def push(self, i):
        buf = Gst.Buffer.new_wrapped(frame(i, self.newline) + self.pad)
        buf.pts = i * self.interval
        buf.duration = self.interval
        ret = self.src.emit("push-buffer", buf)
        if ret != Gst.FlowReturn.OK:
            raise AssertionError("push-buffer returned %s: %s" % (ret, self.bus.errors))
        self.sent += 1
        self.max_queued = max(self.max_queued, self.sink.get_property("messages-queued"))

    def run_paced(self, rate, minimum, until=None):
        """Pushes @rate frames a second, at least @minimum of them, and on
        while @until() (when given) is false."""
        start = time.monotonic()
        first = i = self.sent
        while i < minimum or (until is not None and not until()):
            target = start + (i - first) / rate
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.bus.drain()
            if self.bus.errors:
                raise AssertionError("producer failed: %s" % self.bus.errors)
            self.push(i)
            i += 1

    def run_with_faults(self, rate, minimum, faults):
        """run_paced() while @faults() runs in another thread, until both
        are done; an exception in @faults is raised here."""
        done = threading.Event()
        failure = []

        def run():
            try:
                faults()
            except BaseException as e:  # reported by the test thread
                failure.append(e)
            finally:
                done.set()

        t = threading.Thread(target=run)
        self.pushing = True
        t.start()
        try:
            self.run_paced(rate, minimum, until=done.is_set)
        finally:
            # A fault waiting for frames must not wait for a failed pusher.
            self.pushing = False
            done.wait()
            t.join()
        if failure:
            raise failure[0]

    def wait_sent(self, n):
        """Waits (from another thread than the pushing one) until @n frames
        have been pushed; raises when the pushing stopped before."""
        while self.sent < n:
            if not self.pushing:
                raise AssertionError("the producer stopped at frame %d, before %d"
                                     % (self.sent, n))
            time.sleep(0.05)

    def stats(self):
        return self.sink.get_property("stats")

    def finish(self, timeout=120):
        """EOS, wait for the delivery of everything, stop. Returns the stats."""
        self.src.emit("end-of-stream")
        if not self.bus.wait_done(timeout):
            raise AssertionError("producer got no EOS within %ds" % timeout)
        stats = self.stats()
        self.pipeline.set_state(Gst.State.NULL)
        self.bus.stop()
        return {"delivered": stats.get_value("messages-delivered"),
                "failed": stats.get_value("messages-failed"),
                "dropped": stats.get_value("messages-dropped"),
                "errors": list(self.bus.errors)}

    def abort(self):
        self.pipeline.set_state(Gst.State.NULL)
        self.bus.stop()


def read_topic(brokers, topic, extra="", config=None, timeout=180):
    """kafkasrc stop-at=end ! appsink: every payload of @topic from the
    beginning, with the pipeline's warnings and errors."""
    desc = ("kafkasrc name=src brokers=%s topic=%s is-live=false stop-at=end %s ! "
            "fakesink name=out sync=false" % (brokers, topic, extra))
    pipeline = Gst.parse_launch(desc)
    if config:
        pipeline.get_by_name("src").set_property(
            "config", Gst.Structure.from_string(config)[0])
    payloads = []
    offsets = []

    # A probe rather than appsink: appsink keeps the last buffer, and a
    # buffer of kafkasrc that outlives it blocks its stop (see
    # test_bad_input.py, test_stop_while_appsink_holds_buffer).
    def probe(_pad, info):
        b = info.get_buffer()
        payloads.append(b.extract_dup(0, b.get_size()))
        offsets.append(b.offset)
        return Gst.PadProbeReturn.OK

    pipeline.get_by_name("out").get_static_pad("sink").add_probe(
        Gst.PadProbeType.BUFFER, probe)
    bus = Bus(pipeline)
    pipeline.set_state(Gst.State.PLAYING)
    finished = bus.wait_done(timeout)
    pipeline.set_state(Gst.State.NULL)
    bus.stop()
    if not finished:
        raise AssertionError("kafkasrc stop-at=end did not finish within %ds (%d read)"
                             % (timeout, len(payloads)))
    return payloads, offsets, bus


def kcat_numbers(brokers, topic):
    r = subprocess.run(["kcat", "-b", brokers, "-C", "-t", topic, "-o", "beginning", "-e",
                        "-q", "-f", "%s\n", "-X", "fetch.message.max.bytes=16777216"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=180)
    if r.returncode != 0:
        raise AssertionError("kcat failed: " + r.stderr.decode(errors="replace"))
    return numbers(r.stdout.split(b"\n"))


# --- Counting ----------------------------------------------------------------

def count(sent, acked, received):
    """Loss, duplicates and reordering among @received frame numbers of a
    stream of @sent frames (0..sent-1) of which @acked were acknowledged.

    lost: acknowledged frames that never arrived. Without per-message
    acknowledgements, when every frame was acknowledged each missing one
    is lost; otherwise lost = acked - distinct frames read (at least 0).
    duplicated: frames read more than once (each extra copy counts).
    reordered: frames read after a higher-numbered one (first copies)."""
    distinct = set(n for n in received if 0 <= n < sent)
    duplicated = len(received) - len(set(received))
    reordered = 0
    highest = -1
    seen = set()
    for n in received:
        if n in seen:
            continue
        seen.add(n)
        if n < highest:
            reordered += 1
        highest = max(highest, n)
    if acked >= sent:
        lost = sent - len(distinct)
    else:
        lost = max(0, acked - len(distinct))
    return {"lost": lost, "duplicated": duplicated, "reordered": reordered,
            "distinct": len(distinct)}


def results_file():
    return os.environ.get("GST_KAFKA_RELIABILITY_RESULTS") or os.path.join(
        tempfile.gettempdir(), "gst-kafka-reliability.jsonl")


def record(fault, count_, acked, lost, duplicated, reordered, note=""):
    """Appends one row of the results table and prints it."""
    row = {"fault": fault, "count": count_, "acked": acked, "lost": lost,
           "duplicated": duplicated, "reordered": reordered, "note": note,
           "long": LONG, "time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
    with open(results_file(), "a") as f:
        f.write(json.dumps(row) + "\n")
    log("RESULT %s" % json.dumps(row))
    return row


def record_check(fault, checks, passed, note=""):
    """A row for a test without a frame count (abuse, security)."""
    row = {"fault": fault, "checks": checks, "passed": passed, "note": note,
           "long": LONG, "time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
    with open(results_file(), "a") as f:
        f.write(json.dumps(row) + "\n")
    log("RESULT %s" % json.dumps(row))
    return row


class ReliabilityTest(unittest.TestCase):
    def cluster(self, nodes=1):
        c = Cluster(nodes)
        self.addCleanup(c.stop)
        return c


def main():
    unittest.main(verbosity=2)
