#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A camera whose producer process dies with SIGKILL again and again while
it writes frames larger than the topic takes, each split into several
messages: a viewer plays every frame whose parts all reached Kafka, byte
for byte and in order, and drops each frame a kill cut short, with a
warning. Nothing that is whole in Kafka is lost."""

import os
import random
import signal
import struct
import subprocess
import sys
import time

from rellib import (HERE, LONG, ReliabilityTest, count, frame, log, main, read_topic,
                    record, unique)

KILLS = 10 if LONG else 4
# frame-%08d and 150 kB: three parts of at most 64 KiB each.
PAD = 150000
LIMIT = 65536
# The batches must fit the topic's limit too (kafkasink warns otherwise).
CONFIG = "kafka, batch.size=%d, linger.ms=0" % LIMIT

CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
from rellib import Producer
p = Producer(sys.argv[2], sys.argv[3], config=sys.argv[4], pad=int(sys.argv[5]))
p.sent = int(sys.argv[6])
print("producing", flush=True)
p.run_paced(100, 10 ** 9)
"""


def topic_frames(brokers, topic):
    """What a plain Kafka client finds in @topic: the frame numbers whose
    parts are all there, in order, and how many frames lack a part."""
    from kafka import KafkaConsumer
    consumer = KafkaConsumer(topic, bootstrap_servers=brokers.split(","),
                             auto_offset_reset="earliest", consumer_timeout_ms=10000)
    whole, cut, parts = [], 0, None
    try:
        for msg in consumer:
            headers = dict(msg.headers)
            _, index, n, _ = struct.unpack(">BIIQ", headers["gst.frag"])
            seq = struct.unpack_from(">Q", headers["gst.buf"], 14)[0]
            if index == 0:
                if parts is not None:
                    cut += 1
                parts = (seq, int(msg.value[6:14]), 1)
            elif parts is not None and parts[0] == seq and parts[2] == index:
                parts = (seq, parts[1], index + 1)
            if parts is not None and parts[2] == n:
                whole.append(parts[1])
                parts = None
    finally:
        consumer.close()
    return whole, cut + (parts is not None)


class ProducerKill(ReliabilityTest):
    def test_producer_sigkill_between_parts(self):
        cluster = self.cluster(1)
        topic = unique("producer-kill")
        cluster.create_topic(topic, configs={"max.message.bytes": str(LIMIT)})
        rng = random.Random(11)
        for k in range(KILLS + 1):
            # Each run numbers its frames from k * 100000: a frame's number
            # tells which run wrote it.
            proc = subprocess.Popen(
                [sys.executable, "-c", CHILD, HERE, cluster.brokers, topic, CONFIG,
                 str(PAD), str(k * 100000)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                self.assertEqual(proc.stdout.readline().strip(), b"producing")
                time.sleep(rng.uniform(1.0, 2.0))
            finally:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                proc.stdout.close()
            log("producer %d killed" % (k + 1))

        whole, cut = topic_frames(cluster.brokers, topic)
        log("%d whole frames in the topic, %d cut short" % (len(whole), cut))
        self.assertGreater(len(whole), 50 * (KILLS + 1))

        payloads, _, bus = read_topic(cluster.brokers, topic)
        self.assertEqual(bus.errors, [])
        got = []
        for p in payloads:
            n = int(p[6:14])
            self.assertEqual(p, frame(n) + b"\0" * PAD, "frame %d is not whole" % n)
            got.append(n)
        c = count(len(whole), len(whole), [whole.index(n) if n in whole else -1
                                           for n in got])
        incomplete = [w for w in bus.warnings if "is incomplete" in w[1]]
        record("producer SIGKILL %dx between the parts of 3-part frames" % (KILLS + 1),
               len(whole), len(whole), c["lost"], c["duplicated"], c["reordered"],
               "%d frames cut short by a kill: %d dropped with a warning" %
               (cut, len(incomplete)))
        self.assertEqual(sorted(set(got) - set(whole)), [])
        self.assertEqual(c["lost"], 0)
        self.assertEqual(c["duplicated"], 0)
        self.assertEqual(c["reordered"], 0)
        # A frame cut short is followed by the next run's first frame: each
        # is dropped with a warning, except one at the very end of the topic,
        # which nothing follows.
        self.assertLessEqual(len(incomplete), cut)
        self.assertGreaterEqual(len(incomplete), cut - 1)
        self.assertEqual(len(bus.warnings), len(incomplete), bus.warnings)


if __name__ == "__main__":
    main()
