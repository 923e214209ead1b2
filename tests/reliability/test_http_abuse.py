#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""souphttpserversink under abuse while a well-behaved client watches:
rapid connect/disconnects, idle clients that never read, slowloris (request
headers one byte a second), oversized headers, unknown methods and garbage.
The well-behaved client receives every frame; the server's file descriptors
and memory stay bounded and come back down after the storm."""

import os
import socket
import sys
import threading
import time

from rellib import (LONG, HERE, Producer, ReliabilityTest, log, main, record_check, unique,
                    wait_for)

sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
from e2elib import Launch, MultipartClient, free_port  # noqa: E402

FPS = 20
SECONDS = 600 if LONG else 300
RAPID = 5000 if LONG else 1000
IDLE = 200
SLOWLORIS = 100 if LONG else 20
SLOW_SECONDS = 60 if LONG else 12
FRAME_PAD = 2000


def proc_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def proc_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def exchange(port, data, timeout=3):
    """Sends @data, returns the status line the server answers (or how the
    connection ended)."""
    s = connect(port, timeout)
    try:
        s.sendall(data)
        reply = s.recv(256)
        return reply.split(b"\r\n", 1)[0].decode(errors="replace") or "closed"
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "no answer"
    finally:
        s.close()


class HttpAbuse(ReliabilityTest):
    def test_abuse(self):
        cluster = self.cluster(1)
        topic = unique("http")
        cluster.create_topic(topic)
        frames = FPS * SECONDS
        producer = Producer(cluster.brokers, topic, interval=1000000000 // FPS,
                            pad=FRAME_PAD)
        self.addCleanup(producer.abort)
        producer.run_paced(20000, frames)
        self.assertEqual(producer.finish()["delivered"], frames)

        port = free_port()
        server = Launch("kafkasrc", "brokers=" + cluster.brokers, "topic=" + topic,
                        "caps=application/x-numbered-frame", "!", "multipartmux",
                        "boundary=frame", "!", "souphttpserversink", "port=%d" % port,
                        name="server")
        self.addCleanup(server.kill)
        pid = server.proc.pid

        got = []
        stop_watch = threading.Event()
        watch_error = []

        def watch():
            try:
                client = MultipartClient(port, timeout=30)
                while not stop_watch.is_set():
                    _, body, _ = client.part()
                    got.append(int(body[6:14]))
                client.close()
            except BaseException as e:
                watch_error.append(e)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        wait_for(lambda: len(got) >= FPS or watch_error, 60, "the first frames")
        time.sleep(1)
        base_fds, base_rss = proc_fds(pid), proc_rss_kib(pid)
        peak = {"fds": base_fds, "rss": base_rss}

        def sample():
            if server.alive():
                peak["fds"] = max(peak["fds"], proc_fds(pid))
                peak["rss"] = max(peak["rss"], proc_rss_kib(pid))

        log("baseline: %d fds, %d KiB RSS, frame %d" % (base_fds, base_rss, got[-1]))
        storm_start = got[-1]

        # 1. Rapid connect/disconnects, half of them with a request, every
        # fourth reset (RST) instead of closed.
        t0 = time.monotonic()
        for i in range(RAPID):
            s = socket.socket()
            s.connect(("127.0.0.1", port))
            if i % 2:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            if i % 4 == 3:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            s.close()
            if i % 100 == 0:
                sample()
        rapid_rate = RAPID / (time.monotonic() - t0)
        log("%d rapid connect/disconnects, %.0f/s: %d fds"
            % (RAPID, rapid_rate, proc_fds(pid)))

        # 2. Idle clients: ask for the stream, never read.
        idle = []
        for _ in range(IDLE):
            s = connect(port)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            idle.append(s)
        sample()
        log("%d idle clients: %d fds" % (IDLE, proc_fds(pid)))

        # 3. Slowloris: request headers one byte a second.
        slow = [connect(port) for _ in range(SLOWLORIS)]
        request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
        for i in range(SLOW_SECONDS):
            for s in list(slow):
                try:
                    s.sendall(request[i:i + 1])
                except OSError:
                    slow.remove(s)  # the server hung up: fine
            sample()
            time.sleep(1)
        log("slowloris %d x %ds: %d still connected, %d fds"
            % (SLOWLORIS, SLOW_SECONDS, len(slow), proc_fds(pid)))

        # 4. Oversized headers, unknown methods, garbage.
        answers = {
            "1 MiB header": exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: "
                                     + b"a" * (1 << 20) + b"\r\n\r\n"),
            "1000 headers": exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n"
                                     + b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(1000))
                                     + b"\r\n"),
            "64 KiB path": exchange(port, b"GET /" + b"a" * 65536 + b" HTTP/1.1\r\n\r\n"),
            "FOO method": exchange(port, b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n"),
            "DELETE": exchange(port, b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n"),
            "PUT with body": exchange(port, b"PUT / HTTP/1.1\r\nHost: x\r\n"
                                      b"Content-Length: 5\r\n\r\nhello"),
            "CONNECT": exchange(port, b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n"),
            "path traversal": exchange(port, b"GET /../../etc/passwd HTTP/1.1\r\nHost: x"
                                       b"\r\n\r\n"),
            "HTTP/0.9": exchange(port, b"GET /\r\n"),
            "HTTP/3.0": exchange(port, b"GET / HTTP/3.0\r\nHost: x\r\n\r\n"),
            "binary garbage": exchange(port, bytes(range(256)) * 16),
            "negative Content-Length": exchange(port, b"POST / HTTP/1.1\r\nHost: x\r\n"
                                                b"Content-Length: -1\r\n\r\n"),
        }
        for k, v in answers.items():
            log("%-24s -> %s" % (k, v))
        sample()
        self.assertTrue(server.alive(), server.output())

        for s in slow + idle:
            s.close()
        # Back down: the server lets go of everything but the watcher.
        deadline = time.monotonic() + 60
        while proc_fds(pid) > base_fds + 6 and time.monotonic() < deadline:
            time.sleep(0.5)
        after_fds = proc_fds(pid)
        time.sleep(2)
        after_rss = proc_rss_kib(pid)
        storm_end = got[-1]
        # The watcher goes on receiving after the storm.
        wait_for(lambda: got[-1] >= storm_end + 2 * FPS or watch_error, 60, "frames after")
        stop_watch.set()
        watcher.join(30)
        self.assertEqual(watch_error, [])
        gaps = [(a, b) for a, b in zip(got, got[1:]) if b != a + 1]
        record_check("HTTP abuse: %d connect/disconnect, %d idle, %d slowloris x %ds, "
                     "%d malformed requests" % (RAPID, IDLE, SLOWLORIS, SLOW_SECONDS,
                                                len(answers)),
                     len(got), not gaps,
                     "watcher frames %d..%d, gaps %d; fds %d -> peak %d -> %d; RSS %d -> "
                     "peak %d -> %d KiB; %.0f connects/s"
                     % (got[0], got[-1], len(gaps), base_fds, peak["fds"], after_fds,
                        base_rss, peak["rss"], after_rss, rapid_rate))
        self.assertEqual(gaps, [], "the well-behaved client missed frames")
        self.assertGreater(storm_end, storm_start)
        # Kafka connections of kafkasrc come and go: a little slack.
        self.assertLessEqual(after_fds, base_fds + 6)
        # Memory: bounded by the per-client queues, not by the abuse.
        self.assertLess(peak["rss"] - base_rss, 200 * 1024)
        self.assertLess(after_rss - base_rss, 64 * 1024)
        for k in ("1 MiB header", "64 KiB path", "FOO method", "CONNECT", "binary garbage"):
            self.assertFalse(answers[k].startswith("HTTP/1.1 200"), "%s: %s" % (k, answers[k]))


if __name__ == "__main__":
    main()
