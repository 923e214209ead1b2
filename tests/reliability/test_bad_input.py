#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A topic holding a corpus of malformed messages, written with kcat (empty
values and tombstones with kafka-python), each
followed by a good frame: kafkasrc warns once per kind of problem, naming the
offset, delivers (or with malformed-policy=skip drops) the bad message, keeps
going, never crashes, and every good frame after the bad ones arrives."""

import os
import re
import subprocess
import sys
import tempfile
import textwrap

from rellib import (Producer, ReliabilityTest, log, main, numbers, read_topic, record_check,
                    unique)

GOOD_CAPS = "application/x-numbered-frame"
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00@\x00\x00\x000\x08\x02\x00\x00"
       b"\x00\xb1\x9a\xb7\xca\x00\x00\x00\x19IDATx\x9c")

# kind: (headers, payload, malformed gst.* headers?)
CORPUS = {
    "no-headers": ([], b"bad-no-headers", False),
    "garbage-caps": (["gst.caps=((( not caps ]]]"], b"bad-garbage-caps", True),
    "unknown-format-caps": (["gst.caps=video/x-no-such-format, answer=(int)42"],
                            b"bad-unknown-format-caps", False),
    "wrong-length-pts": (["gst.caps=" + GOOD_CAPS, "gst.pts=abc"], b"bad-wrong-length-pts",
                         True),
    "wrong-length-flags": (["gst.caps=" + GOOD_CAPS, "gst.flags=ab"],
                           b"bad-wrong-length-flags", True),
    "wrong-length-seq": (["gst.caps=" + GOOD_CAPS, "gst.session=12345678", "gst.seq=x"],
                         b"bad-wrong-length-seq", True),
    "short-buf": (["gst.caps=" + GOOD_CAPS, "gst.buf=abc"], b"bad-short-buf", True),
    # version 2, pts present, 30 bytes: a layout this version does not know
    "future-version-buf": (["gst.caps=" + GOOD_CAPS, "gst.buf=\x02\x01" + "A" * 28],
                           b"bad-future-version-buf", True),
    "duplicate-headers": (["gst.caps=" + GOOD_CAPS, "gst.caps=" + GOOD_CAPS],
                          b"bad-duplicate-headers", True),
    "empty-payload": (["gst.caps=" + GOOD_CAPS], b"", False),
    "9-mib-payload": (["gst.caps=" + GOOD_CAPS], b"bad-9-mib" + b"\0" * (9 << 20), False),
    "truncated-png": (["gst.caps=image/png, width=(int)64, height=(int)48"], PNG, False),
    "other-application-headers": (["traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-"
                                   "00f067aa0ba902b7-01", "content-type=application/json",
                                   "gst=", "gst.=x"], b"bad-other-application", False),
    "unknown-gst-header": (["gst.caps=" + GOOD_CAPS, "gst.future=1"], b"bad-unknown-gst",
                           False),
    "eos-marker-mid-topic": (["gst.eos="], b"", False),
    "tombstone": (None, None, False),
    "many-headers": (["x-h%d=%d" % (i, i) for i in range(300)], b"bad-many-headers", False),
}
MALFORMED = [k for k, v in CORPUS.items() if v[2]]


class BadInput(ReliabilityTest):
    @classmethod
    def setUpClass(cls):
        from rellib import Cluster
        cls.cluster_ = Cluster(1)
        cls.brokers = cls.cluster_.brokers
        cls.topic = unique("bad")
        cls.cluster_.create_topic(cls.topic)
        cls.layout = cls.write_corpus()

    @classmethod
    def tearDownClass(cls):
        cls.cluster_.stop()

    @classmethod
    def kcat(cls, payload, headers=(), null=False):
        if null or not payload:
            return cls.empty(headers, null)
        with tempfile.NamedTemporaryFile(prefix="gst-kafka-bad-") as f:
            f.write(payload or b"")
            f.flush()
            cmd = ["kcat", "-P", "-b", cls.brokers, "-t", cls.topic, "-p", "0",
                   "-X", "message.max.bytes=16777216"]
            for h in headers:
                cmd += ["-H", h]
            if null:
                cmd += ["-Z", "-k", "deleted-key"]
            cmd.append(f.name)
            subprocess.run(cmd, check=True, timeout=60)

    @classmethod
    def empty(cls, headers, null):
        """kcat skips empty input: empty values and tombstones (a key with a
        null value, what log compaction deletes by) come from kafka-python."""
        from kafka import KafkaProducer
        p = KafkaProducer(bootstrap_servers=cls.brokers.split(","))
        try:
            hdrs = [(h.split("=", 1)[0], h.split("=", 1)[1].encode()) for h in headers or ()]
            p.send(cls.topic, value=None if null else b"", key=b"deleted-key" if null else None,
                   headers=hdrs, partition=0).get(timeout=30)
        finally:
            p.close()

    @classmethod
    def offset_end(cls):
        r = subprocess.run(["kcat", "-b", cls.brokers, "-Q", "-t", "%s:0:-1" % cls.topic],
                           stdout=subprocess.PIPE, text=True, check=True, timeout=30)
        return int(r.stdout.split()[-1])

    @classmethod
    def write_corpus(cls):
        """good frames by kafkasink, then twice: each bad kind then a good
        frame. Returns (kind, offset) of each bad message, in order."""
        producer = Producer(cls.brokers, cls.topic)
        producer.run_paced(1000, 10)
        producer.finish()
        layout = []
        good = 10
        for round_ in range(2):
            for kind, (headers, payload, _malformed) in CORPUS.items():
                layout.append((kind, cls.offset_end()))
                if payload is None:
                    cls.kcat(b"", null=True)
                else:
                    cls.kcat(payload, headers)
                cls.kcat(b"frame-%08d" % good, ["gst.caps=" + GOOD_CAPS])
                good += 1
        cls.good = good
        log("corpus: %d messages" % cls.offset_end())
        return layout

    def check_common(self, payloads, bus):
        self.assertEqual(bus.errors, [])
        # Every good frame, in order, after all the bad ones.
        self.assertEqual(numbers(payloads), list(range(self.good)))
        warnings = [w for w in bus.warnings if w[0] == "src"]
        decode = [w for w in warnings if "Malformed" in w[1]]
        # Once per kind: the second round adds no warning.
        first = {k: o for k, o in reversed(self.layout)}
        for kind in MALFORMED:
            hits = [w for w in decode if re.search(r"offset %d\b" % first[kind], w[1])]
            self.assertEqual(len(hits), 1, "%s at offset %d: %s" % (kind, first[kind], decode))
        self.assertEqual(len(decode), len(MALFORMED), decode)
        return warnings

    def test_deliver(self):
        payloads, _, bus = read_topic(self.brokers, self.topic)
        warnings = self.check_common(payloads, bus)
        for kind in MALFORMED:
            self.assertEqual(payloads.count(CORPUS[kind][1]), 2, kind)
        for kind in ("no-headers", "unknown-format-caps", "truncated-png",
                     "other-application-headers", "many-headers", "9-mib-payload"):
            self.assertEqual(payloads.count(CORPUS[kind][1]), 2, kind)
        record_check("bad input corpus, malformed-policy=deliver", len(CORPUS), True,
                     "%d kinds x2, %d warnings (%d malformed kinds), %d buffers"
                     % (len(CORPUS), len(warnings), len(MALFORMED), len(payloads)))

    def test_skip(self):
        payloads, _, bus = read_topic(self.brokers, self.topic, "malformed-policy=skip")
        warnings = self.check_common(payloads, bus)
        for kind in MALFORMED:
            self.assertNotIn(CORPUS[kind][1], payloads, kind)
        self.assertEqual(payloads.count(CORPUS["truncated-png"][1]), 2)
        record_check("bad input corpus, malformed-policy=skip", len(CORPUS), True,
                     "%d warnings, %d buffers" % (len(warnings), len(payloads)))

    def test_stop_while_appsink_holds_buffer(self):
        """An application that pulled every sample from appsink stops the
        pipeline: the change to NULL must return (it runs in a child so a
        hang fails this test instead of blocking the suite)."""
        script = textwrap.dedent("""
            import gi
            gi.require_version("Gst", "1.0")
            gi.require_version("GstApp", "1.0")
            from gi.repository import Gst, GstApp
            Gst.init(None)
            p = Gst.parse_launch("kafkasrc brokers=%s topic=%s is-live=false "
                                 "stop-at=end ! appsink name=out sync=false")
            out = p.get_by_name("out")
            p.set_state(Gst.State.PLAYING)
            n = 0
            while out.try_pull_sample(10 * Gst.SECOND) is not None:
                n += 1
            print("pulled", n, "eos", out.is_eos(), flush=True)
            p.set_state(Gst.State.NULL)
            print("stopped", flush=True)
        """ % (self.brokers, self.topic))
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=45)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            out, _ = proc.communicate()
        out = out.decode(errors="replace")
        log("appsink child: " + out.strip().replace("\n", " | ")[-300:])
        self.assertIn("eos True", out)
        self.assertIn("stopped", out, "set_state(NULL) did not return while appsink "
                      "still held kafkasrc's last buffer")


if __name__ == "__main__":
    main()
