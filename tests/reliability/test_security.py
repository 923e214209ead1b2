#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""kafkasink and kafkasrc against a broker that requires SASL/PLAIN, over
TLS (SASL_SSL) and over plain TCP (SASL_PLAINTEXT), configured through
config-file and config: frames go through; a wrong password ends in a clear
authentication error within a bound instead of a hang; the password never
appears in GST_DEBUG=*:6 logs or gst-launch-1.0 -v output."""

import os
import re
import subprocess
import tempfile

import secure_broker
from rellib import (Producer, ReliabilityTest, log, main, numbers, read_topic, record_check,
                    unique)

# How long a wrong password may take to become an error (librdkafka retries
# authentication with a back-off of about a second).
AUTH_ERROR_BOUND = 30
# GStreamer's own parser logs the launch line it parses (DEBUG level): a
# password on the command line shows there, whatever the element does.
PARSER_LINE = re.compile(r"gst_parse_launch|gst_parse_unescape|priv_gst_parse_yylex|"
                         r"gst_parse_launchv_full")


class Security(ReliabilityTest):
    @classmethod
    def setUpClass(cls):
        cls.broker = secure_broker.start()
        cls.tmp = tempfile.mkdtemp(prefix="gst-kafka-sec-")

    @classmethod
    def tearDownClass(cls):
        secure_broker.stop(cls.broker["dir"])
        subprocess.run(["rm", "-rf", cls.tmp])

    def props(self, protocol, password=None, name="client"):
        b = self.broker
        port = int(b["sasl_ssl" if protocol == "SASL_SSL" else "sasl_plaintext"].split(":")[1])
        path = os.path.join(self.tmp, "%s-%s.properties" % (name, protocol))
        with open(path, "w") as f:
            f.write(secure_broker.client_properties(protocol, port, b["ca"],
                                                    password or b["password"]))
        return path

    def roundtrip(self, brokers, producer_kw, reader_kw, frames=200):
        topic = unique("sec")
        producer = Producer(brokers, topic, **producer_kw)
        self.addCleanup(producer.abort)
        producer.run_paced(2000, frames)
        result = producer.finish()
        self.assertEqual(result["errors"], [])
        self.assertEqual(result["delivered"], frames)
        payloads, _, bus = read_topic(brokers, topic, **reader_kw)
        self.assertEqual(bus.errors, [])
        self.assertEqual(numbers(payloads), list(range(frames)))

    def test_sasl_ssl_config_file(self):
        props = self.props("SASL_SSL")
        self.roundtrip(self.broker["sasl_ssl"], {"extra": "config-file=" + props},
                       {"extra": "config-file=" + props})
        record_check("security: SASL_SSL (PLAIN + TLS) via config-file", 200, True)

    def test_sasl_plaintext_config(self):
        b = self.broker
        config = ("kafka, security.protocol=SASL_PLAINTEXT, sasl.mechanisms=PLAIN, "
                  "sasl.username=%s, sasl.password=%s" % (b["user"], b["password"]))
        self.roundtrip(b["sasl_plaintext"], {"config": config}, {"config": config})
        record_check("security: SASL_PLAINTEXT via config", 200, True)

    def launch(self, words, timeout, env=None):
        """Runs gst-launch-1.0; returns (exit code or None on timeout, output)."""
        proc = subprocess.Popen(["gst-launch-1.0"] + words, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
            return proc.returncode, out.decode(errors="replace")
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            out, _ = proc.communicate()
            return None, out.decode(errors="replace")

    def check_auth_error(self, what, words):
        rc, out = self.launch(words, AUTH_ERROR_BOUND)
        errors = [line for line in out.splitlines() if line.startswith("ERROR:")]
        log("%s, wrong password: exit %s, %s" % (what, rc, errors or "no error"))
        record_check("security: %s with a wrong password" % what, 1,
                     rc not in (0, None) and bool(re.search("uthenticat", "\n".join(errors))),
                     "exit %s after <= %ds: %s" % (rc, AUTH_ERROR_BOUND,
                                                  (errors or ["no error"])[0][:160]))
        self.assertIsNotNone(rc, "%s hung for %ds with a wrong password:\n%s"
                             % (what, AUTH_ERROR_BOUND, out[-2000:]))
        self.assertNotEqual(rc, 0)
        self.assertRegex("\n".join(errors), "[Aa]uthenticat",
                         "the error does not say the credentials were refused:\n" + out[-2000:])

    def test_wrong_password_kafkasink(self):
        props = self.props("SASL_SSL", password="wrong-password", name="wrong")
        # A live stream: the error must not wait for the end of the stream.
        self.check_auth_error("kafkasink", [
            "videotestsrc", "is-live=true", "num-buffers=1000", "!",
            "video/x-raw,width=16,height=16,framerate=10/1", "!", "kafkasink",
            "brokers=" + self.broker["sasl_ssl"], "topic=" + unique("sec"),
            "config-file=" + props])

    def test_wrong_password_kafkasrc(self):
        props = self.props("SASL_SSL", password="wrong-password", name="wrong")
        self.check_auth_error("kafkasrc", [
            "kafkasrc", "brokers=" + self.broker["sasl_ssl"], "topic=" + unique("sec"),
            "config-file=" + props, "!", "fakesink"])

    def leaks(self, words):
        secret = self.broker["password"]
        env = dict(os.environ, GST_DEBUG="*:6", GST_DEBUG_NO_COLOR="1")
        rc, out = self.launch(["-v"] + words, 120, env=env)
        self.assertEqual(rc, 0, out[-3000:])
        lines = [line for line in out.splitlines() if secret in line]
        ours = [line for line in lines if not PARSER_LINE.search(line)]
        return len(out.splitlines()), lines, ours

    def test_password_not_logged(self):
        b = self.broker
        topic = unique("sec")
        props = self.props("SASL_SSL")
        config = ("config=kafka, security.protocol=SASL_PLAINTEXT, sasl.mechanisms=PLAIN, "
                  "sasl.username=%s, sasl.password=%s" % (b["user"], b["password"]))
        results = []
        for what, words in (
            ("kafkasink config-file", ["fakesrc", "num-buffers=5", "sizetype=fixed",
                                       "sizemax=16", "filltype=zero", "!", "kafkasink",
                                       "brokers=" + b["sasl_ssl"], "topic=" + topic,
                                       "config-file=" + props]),
            ("kafkasrc config-file", ["kafkasrc", "brokers=" + b["sasl_ssl"], "topic=" + topic,
                                      "stop-at=end", "config-file=" + props, "!", "fakesink"]),
            ("kafkasink config", ["fakesrc", "num-buffers=5", "sizetype=fixed", "sizemax=16",
                                  "filltype=zero", "!", "kafkasink",
                                  "brokers=" + b["sasl_plaintext"], "topic=" + topic, config]),
            ("kafkasrc config", ["kafkasrc", "brokers=" + b["sasl_plaintext"],
                                 "topic=" + topic, "stop-at=end", config, "!", "fakesink"]),
        ):
            n, lines, ours = self.leaks(words)
            log("%s: %d log lines, password in %d (%d outside GStreamer's parser)"
                % (what, n, len(lines), len(ours)))
            results.append((what, n, len(lines), ours))
        for what, n, total, ours in results:
            record_check("security: password in GST_DEBUG=*:6 + -v logs, " + what, n,
                         not ours, "%d lines; password in %d parser lines, %d others"
                         % (n, total, len(ours)))
        for what, n, total, ours in results:
            self.assertEqual(ours, [], what)
            if "config-file" in what:
                self.assertEqual(total, 0, what)


if __name__ == "__main__":
    main()
