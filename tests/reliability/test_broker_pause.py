#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The broker frozen (SIGSTOP) for longer than the consumer group's session
timeout, then resumed (SIGCONT), while a kafkasink pipeline produces and a
kafkasrc pipeline consumes: both recover by themselves, without a restart,
and the viewer gets every acknowledged frame (duplicates counted)."""

import time

from rellib import (LONG, Gst, Producer, ReliabilityTest, count, log, main, numbers,
                    record, unique, Bus)

PAUSE = 60 if LONG else 10
SESSION_TIMEOUT_MS = 6000  # the broker's group.min.session.timeout.ms
RATE = 100


class Viewer:
    """kafkasrc (in a group) ! fakesink, payloads collected by a probe."""

    def __init__(self, brokers, topic, group):
        self.pipeline = Gst.parse_launch(
            "kafkasrc name=src brokers=%s topic=%s group-id=%s is-live=false ! "
            "fakesink name=out sync=false" % (brokers, topic, group))
        self.pipeline.get_by_name("src").set_property(
            "config", Gst.Structure.from_string(
                "kafka, session.timeout.ms=%d, heartbeat.interval.ms=1000"
                % SESSION_TIMEOUT_MS)[0])
        self.payloads = []
        self.pipeline.get_by_name("out").get_static_pad("sink").add_probe(
            Gst.PadProbeType.BUFFER, self._probe)
        self.bus = Bus(self.pipeline)
        self.pipeline.set_state(Gst.State.PLAYING)

    def _probe(self, _pad, info):
        b = info.get_buffer()
        self.payloads.append(b.extract_dup(0, b.get_size()))
        return Gst.PadProbeReturn.OK

    def stop(self):
        self.pipeline.set_state(Gst.State.NULL)
        self.bus.stop()


class BrokerPause(ReliabilityTest):
    def test_broker_paused_past_session_timeout(self):
        cluster = self.cluster(1)
        topic = unique("pause")
        cluster.create_topic(topic)
        producer = Producer(cluster.brokers, topic)
        self.addCleanup(producer.abort)
        viewer = Viewer(cluster.brokers, topic, unique("view"))
        self.addCleanup(viewer.stop)

        producer.run_paced(RATE, 2 * RATE)
        log("SIGSTOP to the broker for %ds at frame %d" % (PAUSE, producer.sent))
        cluster.pause(1)
        try:
            deadline = time.monotonic() + PAUSE
            producer.run_paced(RATE, producer.sent + 1,
                               until=lambda: time.monotonic() > deadline)
        finally:
            cluster.resume(1)
        log("SIGCONT at frame %d" % producer.sent)
        producer.run_paced(RATE, producer.sent + 5 * RATE)
        result = producer.finish()
        self.assertEqual(result["errors"], [])
        sent = producer.sent

        # The viewer catches up on its own: wait for the last frame.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            viewer.bus.drain(100 * Gst.MSECOND)
            got = numbers(viewer.payloads)
            if viewer.bus.errors or (got and len(set(got)) >= result["delivered"]):
                break
        got = numbers(viewer.payloads)
        self.assertEqual(viewer.bus.errors, [])
        c = count(sent, result["delivered"], got)
        record("broker SIGSTOP %ds (> %ds session timeout)" % (PAUSE, SESSION_TIMEOUT_MS // 1000),
               sent, result["delivered"], c["lost"], c["duplicated"], c["reordered"],
               "failed=%d, viewer warnings=%d" % (result["failed"], len(viewer.bus.warnings)))
        self.assertEqual(result["failed"], 0)
        self.assertEqual(c["lost"], 0)
        self.assertEqual(c["reordered"], 0)


if __name__ == "__main__":
    main()
