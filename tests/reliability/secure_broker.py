#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A single KRaft Kafka node that lets in only authenticated clients:
SASL/PLAIN over plain TCP (SASL_PLAINTEXT) and over TLS (SASL_SSL), for
gst-kafka's security tests.

  secure_broker.py start     start; print SECURE_SASL_PLAINTEXT=host:port,
                             SECURE_SASL_SSL=host:port, SECURE_CA=ca.pem,
                             SECURE_USER, SECURE_PASSWORD, SECURE_DIR
  secure_broker.py stop --dir DIR

It uses the jars kafka-local resolved (~/.cache/gst-kafka/kafka-classpath.txt;
run tests/kafka/kafka-local once to fill it). The TLS certificate is
self-signed for 127.0.0.1 (keytool), its PEM is the clients' CA file. The
broker's own connections (inter-broker) use SASL_PLAINTEXT as user admin.
"""

import argparse
import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOG4J = os.path.join(ROOT, "tests", "kafka", "log4j.properties")
CLASSPATH_CACHE = os.path.join(
    os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
    "gst-kafka", "kafka-classpath.txt")
USER = "alice"


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def classpath():
    try:
        with open(CLASSPATH_CACHE) as f:
            cp = f.read().strip()
    except OSError:
        cp = ""
    if not cp or not all(os.path.exists(p) for p in cp.split(":")):
        subprocess.run([os.path.join(ROOT, "tests", "kafka", "kafka-local"), "run", "--",
                        "true"], check=True, stdout=subprocess.DEVNULL)
        with open(CLASSPATH_CACHE) as f:
            cp = f.read().strip()
    return cp


def java(cp, main, *args, heap="512m"):
    return ["java", "-Xms128m", "-Xmx" + heap, "-XX:+UseG1GC", "-Djava.awt.headless=true",
            "-Dlog4j.configuration=file:" + LOG4J, "-cp", cp, main] + list(args)


def jaas(admin_password, password):
    return ('org.apache.kafka.common.security.plain.PlainLoginModule required '
            'username="admin" password="%s" user_admin="%s" user_%s="%s";'
            % (admin_password, admin_password, USER, password))


def make_certs(d, storepass):
    ks = os.path.join(d, "broker.p12")
    subprocess.run(["keytool", "-genkeypair", "-alias", "broker", "-keyalg", "RSA",
                    "-keysize", "2048", "-dname", "CN=127.0.0.1", "-ext",
                    "SAN=ip:127.0.0.1,dns:localhost", "-validity", "2", "-storetype", "PKCS12",
                    "-keystore", ks, "-storepass", storepass, "-keypass", storepass],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ca = os.path.join(d, "ca.pem")
    subprocess.run(["keytool", "-exportcert", "-rfc", "-alias", "broker", "-keystore", ks,
                    "-storepass", storepass, "-file", ca],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return ks, ca


def client_properties(protocol, port, ca, password, user=USER):
    lines = ["bootstrap.servers=127.0.0.1:%d" % port, "security.protocol=" + protocol,
             "sasl.mechanisms=PLAIN", "sasl.username=" + user, "sasl.password=" + password]
    if protocol == "SASL_SSL":
        lines.append("ssl.ca.location=" + ca)
    return "\n".join(lines) + "\n"


def ready(port, ca, password, d):
    props = os.path.join(d, "probe.properties")
    with open(props, "w") as f:
        f.write(client_properties("SASL_SSL", port, ca, password))
    r = subprocess.run(["kcat", "-F", props, "-L", "-m", "5"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    return r.returncode == 0 and b"1 brokers" in r.stdout


def start(directory=None, timeout=120):
    """Starts the broker, returns its state (a dict, also in DIR/state.json)."""
    cp = classpath()
    d = directory or tempfile.mkdtemp(prefix="kafka-secure-")
    os.makedirs(d, exist_ok=True)
    plain_port, ssl_port, ctl_port = free_ports(3)
    password = "pw-" + secrets.token_hex(12)
    admin_password = "admin-" + secrets.token_hex(12)
    storepass = secrets.token_hex(12)
    ks, ca = make_certs(d, storepass)
    props = {
        "process.roles": "broker,controller",
        "node.id": 1,
        "controller.quorum.voters": "1@127.0.0.1:%d" % ctl_port,
        "listeners": "SASL_PLAINTEXT://127.0.0.1:%d,SASL_SSL://127.0.0.1:%d,"
                     "CONTROLLER://127.0.0.1:%d" % (plain_port, ssl_port, ctl_port),
        "advertised.listeners": "SASL_PLAINTEXT://127.0.0.1:%d,SASL_SSL://127.0.0.1:%d"
                                % (plain_port, ssl_port),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "SASL_PLAINTEXT",
        "listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,"
                                          "CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas(admin_password, password),
        "listener.name.sasl_ssl.plain.sasl.jaas.config": jaas(admin_password, password),
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": ks,
        "ssl.keystore.password": storepass,
        "ssl.key.password": storepass,
        "log.dirs": os.path.join(d, "data"),
        "num.partitions": 1,
        "offsets.topic.replication.factor": 1,
        "offsets.topic.num.partitions": 3,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "auto.create.topics.enable": "true",
        "group.initial.rebalance.delay.ms": 0,
        "message.max.bytes": 16 * 1024 * 1024,
    }
    config = os.path.join(d, "server.properties")
    with open(config, "w") as f:
        for k, v in props.items():
            f.write("%s=%s\n" % (k, v))
    cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    subprocess.run(java(cp, "kafka.tools.StorageTool", "format", "-t", cid, "-c", config,
                        heap="256m"), check=True, stdout=subprocess.DEVNULL)
    logf = open(os.path.join(d, "broker.log"), "ab")
    proc = subprocess.Popen(java(cp, "kafka.Kafka", config), stdout=logf,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=d)
    state = {"dir": d, "pid": proc.pid, "sasl_plaintext": "127.0.0.1:%d" % plain_port,
             "sasl_ssl": "127.0.0.1:%d" % ssl_port, "ca": ca, "user": USER,
             "password": password}
    with open(os.path.join(d, "state.json"), "w") as f:
        json.dump(state, f)
    deadline = time.monotonic() + timeout
    while not ready(ssl_port, ca, password, d):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(d)
            with open(os.path.join(d, "broker.log"), errors="replace") as f:
                tail = f.read()[-3000:]
            raise RuntimeError("the secure broker did not start:\n" + tail)
        time.sleep(0.5)
    return state


def stop(d):
    try:
        with open(os.path.join(d, "state.json")) as f:
            pid = json.load(f)["pid"]
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    break
            except ChildProcessError:
                pass
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.killpg(pid, signal.SIGKILL)
    except (OSError, ValueError, KeyError):
        pass
    shutil.rmtree(d, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["start", "stop"])
    p.add_argument("--dir")
    args = p.parse_args()
    if args.command == "start":
        s = start(args.dir)
        for k in ("sasl_plaintext", "sasl_ssl", "ca", "user", "password", "dir"):
            print("SECURE_%s=%s" % (k.upper(), s[k]))
    else:
        if not args.dir:
            sys.exit("stop needs --dir")
        stop(args.dir)


if __name__ == "__main__":
    main()
