#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A single broker killed (SIGKILL) and restarted while kafkasink streams
numbered frames: the producer buffers up to its configured queue
(queue.buffering.max.messages), then blocks upstream, resumes when the
broker is back, and loses nothing."""

import time

from rellib import (LONG, Producer, ReliabilityTest, count, log, main, numbers,
                    read_topic, record, unique)

FRAMES = 5000 if LONG else 1000
KILLS = 5 if LONG else 1
OUTAGE = 20 if LONG else 5
QUEUE = 200
RATE = 100


class BrokerRestart(ReliabilityTest):
    def test_broker_killed_and_restarted(self):
        cluster = self.cluster(1)
        topic = unique("restart")
        cluster.create_topic(topic)
        producer = Producer(cluster.brokers, topic,
                            config="kafka, queue.buffering.max.messages=%d" % QUEUE)
        self.addCleanup(producer.abort)

        def faults():
            for k in range(KILLS):
                producer.wait_sent(producer.sent + 2 * RATE)
                log("kill %d: SIGKILL to the broker at frame %d" % (k + 1, producer.sent))
                cluster.kill(1, "KILL")
                time.sleep(OUTAGE)  # the outage itself is the fault
                cluster.restart(1)
                log("broker back at frame %d" % producer.sent)

        producer.run_with_faults(RATE, FRAMES, faults)
        # Frames after the last restart too.
        producer.run_paced(RATE, producer.sent + RATE)
        result = producer.finish()
        self.assertEqual(result["errors"], [])
        sent = producer.sent
        payloads, _, bus = read_topic(cluster.brokers, topic)
        self.assertEqual(bus.errors, [])
        c = count(sent, result["delivered"], numbers(payloads))
        record("single broker SIGKILL+restart %dx, %ds down" % (KILLS, OUTAGE), sent,
               result["delivered"], c["lost"], c["duplicated"], c["reordered"],
               "failed=%d, max queued=%d (limit %d)"
               % (result["failed"], producer.max_queued, QUEUE))
        self.assertEqual(result["failed"], 0)
        self.assertEqual(result["delivered"], sent)
        self.assertLessEqual(producer.max_queued, QUEUE)
        self.assertEqual(c["lost"], 0)
        self.assertEqual(c["duplicated"], 0)
        self.assertEqual(c["reordered"], 0)


if __name__ == "__main__":
    main()
