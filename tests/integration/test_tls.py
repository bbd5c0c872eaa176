"""amqps with certificate verification, against a throw-away RabbitMQ node with a TLS
listener on loopback and a throw-away CA (recipes.md section 4).

The node is started once for this module (about 5 s) and stopped afterwards; it has its
own name, ports, data directory and an empty plugin list, so the main node is untouched.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from sarra.broker.connection import Broker, Outgoing
from sarra.core.errors import AccessRefused
from tests.fixtures.require import require_tools

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=d)  # fmt: skip


def make_server_cert(d: Path) -> None:
    make_ca(d, "ca")
    make_ca(d, "other-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", "server.key", "-out", "server.csr", cwd=d)  # fmt: skip
    (d / "server.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.pem",
            cwd=d)  # fmt: skip


class Node:
    """A detached RabbitMQ node with a TLS listener, state in ``d``."""

    def __init__(self, d: Path) -> None:
        self.d = d
        self.name = f"t_admin_tls_{uuid.uuid4().hex[:6]}@localhost"
        self.port, self.tls_port, dist = free_port(), free_port(), free_port()
        self.env = dict(
            os.environ,
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(dist),
            RABBITMQ_CONFIG_FILE=str(d / "rabbitmq.conf"),
            RABBITMQ_MNESIA_BASE=str(d / "mnesia"),
            RABBITMQ_LOG_BASE=str(d / "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(d / "enabled_plugins"),
            RABBITMQ_PID_FILE=str(d / "node.pid"),
            ERL_CRASH_DUMP=str(d / "erl_crash.dump"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )

    def start(self) -> None:
        d = self.d
        (d / "mnesia").mkdir()
        (d / "log").mkdir()
        (d / "enabled_plugins").write_text("[].\n")
        (d / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            f"listeners.ssl.default = 127.0.0.1:{self.tls_port}\n"
            f"ssl_options.cacertfile = {d}/ca.pem\n"
            f"ssl_options.certfile = {d}/server.pem\n"
            f"ssl_options.keyfile = {d}/server.key\n"
            "ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n"
        )
        subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(d)], check=True)
        subprocess.run(["rabbitmq-server", "-detached"], env=self.env, check=True, timeout=60)
        subprocess.run(
            ["rabbitmqctl", "-n", self.name, "-q", "wait", str(d / "node.pid"), "--timeout", "60"],
            env=self.env, check=True, timeout=90, capture_output=True,
        )  # fmt: skip

    def stop(self) -> None:
        subprocess.run(
            ["rabbitmqctl", "-n", self.name, "-q", "stop", str(self.d / "node.pid")],
            env=self.env, timeout=90, capture_output=True,
        )  # fmt: skip


@pytest.fixture(scope="module")
def tls_node() -> Iterator[Node]:
    require_tools("openssl", "rabbitmq-server", "rabbitmqctl")
    # Not under pytest's tmp dir: its parent is mode 0700 and the node runs as rabbitmq.
    d = Path(tempfile.mkdtemp(prefix="t_admin_tls."))
    try:
        make_server_cert(d)
        node = Node(d)
        try:
            node.start()
            yield node
        finally:
            node.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def url(node: Node, host: str = "localhost") -> str:
    return f"amqps://guest:guest@{host}:{node.tls_port}/"


def test_broker_connects_over_amqps_verifying_the_server_certificate(tls_node):
    b = Broker(url(tls_node), tls_ca=str(tls_node.d / "ca.pem"), max_backoff=1)
    b.connect()
    b.declare_exchange("xs_tls")
    b.declare_queue("q_guest.tls", durable=False)
    b.bind("q_guest.tls", "xs_tls", "v02.post.#")
    assert b.publish(Outgoing("xs_tls", "v02.post.a", {}, b"over tls")) == []
    b.consume("q_guest.tls")
    got = b.get(1, timeout=5)
    assert [m.body for m in got] == [b"over tls"]
    b.ack(got[0])
    b.close()


def test_certificate_from_another_ca_is_refused_at_once_not_retried(tls_node, caplog):
    deadline = time.monotonic() + 30
    b = Broker(
        url(tls_node),
        tls_ca=str(tls_node.d / "other-ca.pem"),
        max_backoff=0.5,
        stop=lambda: time.monotonic() > deadline,
    )
    with pytest.raises(AccessRefused, match="certificate verification failed"):
        b.connect()
    assert time.monotonic() < deadline
    assert not b.is_connected


def test_verification_can_be_turned_off_explicitly(tls_node):
    b = Broker(url(tls_node), tls_ca=str(tls_node.d / "other-ca.pem"), tls_verify=False)
    b.connect()
    assert b.is_connected
    b.close()
