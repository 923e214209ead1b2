# SPDX-License-Identifier: LGPL-2.1-or-later
"""kafka-local's own tests: a single node and a three-node cluster start,
carry a message produced and consumed with kcat, and `stop` leaves no
process and no file behind."""

import json
import os
import subprocess
import sys
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
KAFKA_LOCAL = os.path.join(HERE, "kafka-local")


def kafka_local(*args, env=None, check=True):
    r = subprocess.run([KAFKA_LOCAL] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, env=env, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError("kafka-local %s failed:\n%s" % (" ".join(args), r.stderr))
    return r


def parse_start(out):
    vals = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return vals["KAFKA_BROKERS"], vals["KAFKA_LOCAL_DIR"]


def pids_of(state_dir):
    with open(os.path.join(state_dir, "state.json")) as f:
        return [n["pid"] for n in json.load(f)["nodes"]]


def running(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kcat(*args, data=None):
    return subprocess.run(["kcat"] + list(args), input=data, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)


class KafkaLocalTest(unittest.TestCase):
    def round_trip(self, brokers, topic, extra=()):
        payload = ("hello " + uuid.uuid4().hex).encode()
        r = kcat("-b", brokers, "-P", "-t", topic, "-X", "acks=all", *extra, data=payload)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = kcat("-b", brokers, "-C", "-t", topic, "-o", "beginning", "-c", "1", "-e",
                 "-f", "%s")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, payload)

    def check_instance(self, nodes):
        r = kafka_local("start", "--nodes", str(nodes))
        brokers, state_dir = parse_start(r.stdout)
        pids = pids_of(state_dir)
        try:
            self.assertEqual(len(brokers.split(",")), nodes)
            self.assertTrue(all(running(p) for p in pids))
            md = json.loads(kcat("-b", brokers, "-L", "-J").stdout)
            self.assertEqual(len(md["brokers"]), nodes)
            self.round_trip(brokers, "kafka-local-test")
            # A 10 MiB frame fits.
            big = os.urandom(10 * 1024 * 1024)
            path = os.path.join(state_dir, "frame.bin")
            with open(path, "wb") as f:
                f.write(big)
            r = kcat("-b", brokers, "-P", "-t", "big", "-X", "message.max.bytes=16777216",
                     path)
            self.assertEqual(r.returncode, 0, r.stderr)
            r = kcat("-b", brokers, "-C", "-t", "big", "-o", "beginning", "-c", "1", "-e",
                     "-f", "%S", "-X", "fetch.message.max.bytes=16777216")
            self.assertEqual(r.stdout.strip(), str(len(big)).encode())
            env = dict(os.environ, KAFKA_LOCAL_DIR=state_dir)
            self.assertEqual(kafka_local("brokers", env=env).stdout.strip(), brokers)
        finally:
            kafka_local("stop", "--dir", state_dir)
        self.assertFalse(any(running(p) for p in pids), "a broker process survived stop")
        self.assertFalse(os.path.exists(state_dir), "stop left its directory behind")
        return brokers

    def test_single_node(self):
        self.check_instance(1)

    def test_three_nodes_with_faults(self):
        r = kafka_local("start", "--nodes", "3")
        brokers, state_dir = parse_start(r.stdout)
        pids = pids_of(state_dir)
        try:
            topic = "rf3"
            subprocess.run(["kcat", "-b", brokers, "-L"], stdout=subprocess.DEVNULL)
            # Replication factor 3, min.insync.replicas=2: create through kcat's
            # auto-creation is rf=3 already (default.replication.factor).
            self.round_trip(brokers, topic)
            md = json.loads(kcat("-b", brokers, "-L", "-J", "-t", topic).stdout)
            self.assertEqual(len(md["topics"][0]["partitions"][0]["replicas"]), 3)
            leader = int(kafka_local("leader", topic, "--dir", state_dir).stdout)
            self.assertIn(leader, (1, 2, 3))
            kafka_local("kill", str(leader), "--dir", state_dir)
            self.assertFalse(running(pids[leader - 1]))
            # Two of three still take acks=all writes.
            self.round_trip(brokers, topic + "-b")
            kafka_local("restart", str(leader), "--dir", state_dir)
            status = kafka_local("status", "--dir", state_dir).stdout
            self.assertEqual(status.count("running"), 3, status)
        finally:
            kafka_local("stop", "--dir", state_dir)
        self.assertFalse(os.path.exists(state_dir))

    def test_two_side_by_side(self):
        a = parse_start(kafka_local("start").stdout)
        try:
            b = parse_start(kafka_local("start").stdout)
            try:
                self.assertNotEqual(a[0], b[0])
                self.round_trip(a[0], "side-a")
                self.round_trip(b[0], "side-b")
            finally:
                kafka_local("stop", "--dir", b[1])
            # Stopping one leaves the other running.
            self.round_trip(a[0], "side-a2")
        finally:
            kafka_local("stop", "--dir", a[1])

    def test_run_always_stops(self):
        r = subprocess.run([KAFKA_LOCAL, "run", "--", "sh", "-c",
                            'echo "$KAFKA_BROKERS $KAFKA_LOCAL_DIR"; exit 3'],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=300)
        self.assertEqual(r.returncode, 3, "run must return the command's status")
        brokers, state_dir = r.stdout.strip().split()
        self.assertTrue(brokers.startswith("127.0.0.1:"))
        self.assertFalse(os.path.exists(state_dir))

    def test_errors(self):
        r = kafka_local("stop", "--dir", "/nonexistent", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not a kafka-local instance", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
