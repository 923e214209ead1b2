# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the end-to-end tests share: the broker, pipelines run as a user runs
them (gst-launch-1.0), distinguishable frames, and an HTTP client that reads
a multipart stream the way a browser does."""

import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

SKIP = 77


def brokers():
    b = os.environ.get("KAFKA_BROKERS")
    if not b:
        print("KAFKA_BROKERS is not set: run through tests/run", file=sys.stderr)
        sys.exit(SKIP)
    return b


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=60, what="condition"):
    """Polls @predicate (a cheap check of an external process) until true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class Frames:
    """N distinct PNG frames on disk and the index of each by content."""

    def __init__(self, n, width=160, height=120, directory=None):
        self.dir = directory or tempfile.mkdtemp(prefix="gst-kafka-frames-")
        self.n = n
        self.pattern = os.path.join(self.dir, "%05d.png")
        # smpte scrolling one step per frame: every frame differs, and
        # pngenc is deterministic, so a pipeline that encodes the same
        # frames again (producer()) produces these very bytes.
        self.video = ["videotestsrc", "num-buffers=%d" % n, "pattern=smpte",
                      "horizontal-speed=2", "!",
                      "video/x-raw,width=%d,height=%d,framerate=30/1" % (width, height), "!",
                      "pngenc", "compression-level=1"]
        run(["gst-launch-1.0", "-q"] + self.video + ["!", "multifilesink",
                                                     "location=" + self.pattern])
        self.data = []
        for i in range(n):
            with open(self.pattern % i, "rb") as f:
                self.data.append(f.read())
        self.index = {hashlib.sha1(d).hexdigest(): i for i, d in enumerate(self.data)}
        assert len(self.index) == n, "test frames are not distinct"

    def producer(self, live=False):
        """gst-launch words of a source of the frames as a video: timestamped
        at 30 fps, paced in real time when @live."""
        words = list(self.video)
        if live:
            words.insert(1, "is-live=true")
        return words

    def which(self, payload):
        return self.index.get(hashlib.sha1(payload).hexdigest())

    def source(self, start=0, stop=None, fps=30):
        """gst-launch words of a source producing frames start..stop."""
        stop = self.n - 1 if stop is None else stop
        return ["multifilesrc", "location=" + self.pattern, "index=%d" % start,
                "start-index=%d" % start, "stop-index=%d" % stop,
                "caps=image/png,framerate=%d/1" % fps]

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def run(cmd, timeout=120, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       **kw)
    if r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (" ".join(cmd), r.returncode,
                                                      r.stderr.decode(errors="replace")))
    return r


class Launch:
    """A gst-launch-1.0 pipeline in the background, as a user starts one."""

    def __init__(self, *words, name="pipeline", eos=True):
        """With @eos, Ctrl-C sends end-of-stream first (gst-launch-1.0 -e);
        without, it stops the pipeline at once, as a viewer is stopped (a
        viewer waiting for a browser holds its stream, so an end-of-stream
        could not reach its end)."""
        self.name = name
        self.words = list(words)
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(["gst-launch-1.0"] + (["-e"] if eos else []) + self.words,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def wait(self, timeout=120):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s did not finish:\n%s" % (self.name, self.output()))
        if rc != 0:
            raise AssertionError("%s exited with %d:\n%s" % (self.name, rc, self.output()))
        return self.output()

    def alive(self):
        return self.proc.poll() is None

    def interrupt(self, timeout=60):
        """Ctrl-C: gst-launch stops the pipeline (after an EOS with -e) and
        exits cleanly."""
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s ignored Ctrl-C:\n%s" % (self.name, self.output()))

    def kill(self):
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def produce_frames(topic, frames, extra=()):
    """Produces the frames, timestamped as a 30 fps video, as fast as
    kafkasink goes, and waits for their delivery."""
    Launch(*frames.producer(), "!", "kafkasink", "brokers=" + brokers(),
           "topic=" + topic, "sync=false", *extra, name="producer").wait()


def create_topic(topic, partitions, configs=None):
    """Creates @topic with @partitions partitions and topic @configs, as an
    administrator would, instead of letting the broker create it with
    one."""
    from kafka.admin import KafkaAdminClient, NewTopic
    admin = KafkaAdminClient(bootstrap_servers=brokers().split(","))
    try:
        admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=configs or {})])
    finally:
        admin.close()


def viewer(topic, group, port, extra_src=(), extra_sink=()):
    return Launch("kafkasrc", "brokers=" + brokers(), "topic=" + topic, "group-id=" + group,
                  *extra_src, "!", "multipartmux", "boundary=frame", "!",
                  "souphttpserversink", "port=%d" % port, *extra_sink, name="viewer",
                  eos=False)


class MultipartClient:
    """Reads a multipart/x-mixed-replace stream part by part, as a browser."""

    def __init__(self, port, path="/", timeout=60, connect_timeout=60):
        """Connects and sends the request; the response is read when first
        needed (a server may answer only once it knows what it serves)."""
        deadline = time.monotonic() + connect_timeout
        while True:
            try:
                self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
                self.conn.request("GET", path)
                # http.client forgets the socket once the response owns it.
                self.sock = self.conn.sock
                break
            except (ConnectionRefusedError, ConnectionResetError, socket.timeout):
                self.conn.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self._resp = None
        self.at_boundary = False

    @property
    def resp(self):
        if self._resp is None:
            self._resp = self.conn.getresponse()
            self.content_type = self._resp.getheader("Content-Type", "")
            self.boundary = None
            for param in self.content_type.split(";")[1:]:
                k, _, v = param.strip().partition("=")
                if k == "boundary":
                    self.boundary = v.strip('"').encode()
        return self._resp

    @property
    def status(self):
        return self.resp.status

    def _line(self):
        line = self.resp.readline(65537)
        if not line:
            raise EOFError("stream ended")
        return line

    def part(self):
        """Next part: (headers dict, body bytes, receive time)."""
        while not self.at_boundary:
            line = self._line().strip()
            if line == b"--" + self.boundary:
                break
            if line == b"--" + self.boundary + b"--":
                raise EOFError("closing boundary")
            if line:
                raise AssertionError("junk between parts: %r" % line[:80])
        self.at_boundary = False
        headers = {}
        while True:
            line = self._line().strip()
            if not line:
                break
            k, _, v = line.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            n = int(headers["content-length"])
            body = self.resp.read(n)
            if len(body) != n:
                raise EOFError("stream ended inside a part")
        else:
            # As a browser does without Content-Length: the body runs to the
            # next boundary line.
            delim = b"\r\n--" + self.boundary
            data = b""
            while delim not in data:
                data += self._line()
            body = data[:data.index(delim)]
            if body.endswith(b"\r\n"):  # the tutorial ends parts with a blank line
                body = body[:-2]
            self.at_boundary = True
        return headers, body, time.monotonic()

    def parts(self, n):
        return [self.part() for _ in range(n)]

    def close(self):
        """Closes the connection as a browser closing the tab does."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self._resp is not None:
            self._resp.close()
        self.sock.close()
        self.conn.close()


def kcat_messages(topic, count, fmt="%s", offset="beginning"):
    r = run(["kcat", "-b", brokers(), "-C", "-t", topic, "-o", str(offset), "-c", str(count),
             "-e", "-f", fmt, "-X", "fetch.message.max.bytes=16777216"])
    return r.stdout


class E2ETest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        brokers()

    def launch(self, *words, name="pipeline"):
        p = Launch(*words, name=name)
        self.addCleanup(p.kill)
        return p
