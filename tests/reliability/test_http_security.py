#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""souphttpserversink with HTTP basic authentication over HTTPS: only the
right credentials get the stream, the password stays out of gst-launch -v
and GST_DEBUG=*:6 output, and by default the server listens on loopback
only."""

import base64
import http.client
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from rellib import ReliabilityTest, log, main, record_check, wait_for

import e2e_path  # noqa: F401  (puts tests/e2e on sys.path)
from e2elib import Launch, free_port


def listening(port):
    """Local addresses a socket listens on at @port (from /proc/net/tcp*)."""
    found = []
    for name, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    local, _, state = line.split()[1:4]
                    addr, p = local.split(":")
                    if int(p, 16) == port and state == "0A":
                        found.append(addr)
        except OSError:
            pass
    return found


class HttpSecurity(ReliabilityTest):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="gst-kafka-https-")
        cls.cert = os.path.join(cls.tmp, "cert.pem")
        cls.key = os.path.join(cls.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                        "2", "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1", "-keyout", cls.key, "-out", cls.cert],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.password = "pw-" + secrets.token_hex(10)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.log = tempfile.TemporaryFile()
        self.addCleanup(self.log.close)

    def server(self, port, *extra, env=None, verbose=False):
        words = ["videotestsrc", "is-live=true", "!",
                 "video/x-raw,width=32,height=24,framerate=10/1", "!", "jpegenc", "!",
                 "multipartmux", "boundary=frame", "!", "souphttpserversink",
                 "port=%d" % port] + list(extra)
        if verbose:
            words = ["-v"] + words
        log_env = dict(os.environ, **(env or {}))
        # A file, not a pipe: GST_DEBUG=*:6 would fill a pipe and block.
        p = subprocess.Popen(["stdbuf", "-oL", "gst-launch-1.0", "-e"] + words, stdout=self.log,
                             stderr=subprocess.STDOUT, env=log_env, start_new_session=True)
        self.addCleanup(lambda: p.poll() is None and (os.killpg(p.pid, 9), p.wait()))
        wait_for(lambda: listening(port) or p.poll() is not None, 30, "the server")
        return p

    def get(self, port, auth=None, tls=True):
        ctx = ssl.create_default_context(cafile=self.cert)
        conn = (http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
                if tls else http.client.HTTPConnection("127.0.0.1", port, timeout=10))
        headers = {}
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
        try:
            conn.request("GET", "/", headers=headers)
            r = conn.getresponse()
            body = r.read(2000) if r.status == 200 else b""
            return r.status, body
        except (ssl.SSLError, ConnectionError, http.client.HTTPException, socket.timeout) as e:
            return type(e).__name__, b""
        finally:
            conn.close()

    def test_basic_auth_https(self):
        port = free_port()
        env = {"GST_DEBUG": "*:6", "GST_DEBUG_NO_COLOR": "1"}
        p = self.server(port, "user=viewer", "password=" + self.password,
                        "certificate-file=" + self.cert, "private-key-file=" + self.key,
                        env=env, verbose=True)
        results = {
            "no credentials": self.get(port),
            "wrong password": self.get(port, "viewer:wrong"),
            "wrong user": self.get(port, "someone:" + self.password),
            "plain HTTP to the HTTPS port": self.get(port, "viewer:" + self.password,
                                                     tls=False),
            "right credentials": self.get(port, "viewer:" + self.password),
        }
        # Without a client the sink holds EOS (wait-for-clients): no Ctrl-C.
        os.killpg(p.pid, 9)
        p.wait(timeout=30)
        self.log.seek(0)
        out = self.log.read().decode(errors="replace")
        for k, (status, body) in results.items():
            log("%-30s -> %s (%d bytes)" % (k, status, len(body)))
        leaked = [line for line in out.splitlines() if self.password in line
                  and "gst_parse" not in line and "parse_yylex" not in line]
        ok = (results["right credentials"][0] == 200
              and all(results[k][0] == 401 for k in ("no credentials", "wrong password",
                                                     "wrong user"))
              and results["plain HTTP to the HTTPS port"][0] != 200 and not leaked)
        record_check("HTTP security: basic auth over HTTPS", len(results), ok,
                     ", ".join("%s: %s" % (k, v[0]) for k, v in results.items())
                     + "; password in %d element log lines" % len(leaked))
        self.assertEqual(results["right credentials"][0], 200)
        self.assertIn(b"--frame", results["right credentials"][1])
        for k in ("no credentials", "wrong password", "wrong user"):
            self.assertEqual(results[k][0], 401, k)
        self.assertNotEqual(results["plain HTTP to the HTTPS port"][0], 200)
        self.assertEqual(leaked, [])

    def test_default_address_is_loopback(self):
        port = free_port()
        self.server(port)
        addrs = listening(port)
        # 127.0.0.1 in /proc/net/tcp's little-endian hex.
        loopback_only = addrs == ["0100007F"]
        record_check("HTTP security: default bind address", 1, loopback_only,
                     "listens on 127.0.0.1 only" if loopback_only
                     else "listens on %s (/proc/net/tcp hex)" % addrs)
        self.assertEqual(addrs, ["0100007F"])


if __name__ == "__main__":
    main()
