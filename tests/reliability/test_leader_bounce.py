#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Three-node cluster, topic with replication factor 3 and
min.insync.replicas=2: numbered frames stream through kafkasink while the
partition leader is killed (SIGKILL and SIGTERM in turn) and restarted, again
and again; kafkasrc reads the topic back. Every acknowledged frame must be
there once, in order."""

import time

from rellib import (LONG, Producer, ReliabilityTest, count, kcat_numbers, log, main,
                    numbers, read_topic, record, unique)

FRAMES = 5000 if LONG else 1000
BOUNCES = 10 if LONG else 2
RATE = 100


class LeaderBounce(ReliabilityTest):
    def test_leader_bounce(self):
        cluster = self.cluster(3)
        topic = unique("bounce")
        cluster.create_topic(topic, 1, 3, {"min.insync.replicas": "2"})
        producer = Producer(cluster.brokers, topic)
        self.addCleanup(producer.abort)

        def bounce():
            for k in range(BOUNCES):
                # Let frames flow to this leader first.
                producer.wait_sent(producer.sent + RATE)
                leader = cluster.leader(topic)
                sig = "KILL" if k % 2 == 0 else "TERM"
                log("bounce %d: SIG%s to leader %d at frame %d"
                    % (k + 1, sig, leader, producer.sent))
                cluster.kill(leader, sig)
                deadline = time.monotonic() + 60
                while cluster.leader(topic) in (leader, -1):
                    if time.monotonic() > deadline:
                        raise AssertionError("no new leader after killing %d" % leader)
                    time.sleep(0.2)
                cluster.restart(leader)
                cluster.wait_isr(topic, 3)

        producer.run_with_faults(RATE, FRAMES, bounce)
        result = producer.finish()
        self.assertEqual(result["errors"], [])
        sent = producer.sent

        payloads, _, bus = read_topic(cluster.brokers, topic)
        self.assertEqual(bus.errors, [])
        got = numbers(payloads)
        c = count(sent, result["delivered"], got)
        record("leader bounced %dx (3 nodes, rf=3, min.isr=2)" % BOUNCES, sent,
               result["delivered"], c["lost"], c["duplicated"], c["reordered"],
               "failed=%d" % result["failed"])
        # kcat reads the same: the topic, not kafkasrc, is what is checked.
        self.assertEqual(kcat_numbers(cluster.brokers, topic), got)
        self.assertEqual(result["delivered"] + result["failed"], sent)
        self.assertEqual(c["lost"], 0)
        self.assertEqual(c["duplicated"], 0)
        self.assertEqual(c["reordered"], 0)


if __name__ == "__main__":
    main()
