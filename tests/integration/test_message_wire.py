"""Our encoding, published and consumed with plain pika through a real RabbitMQ.

Each test run uses its own vhost ``t_codec_<random>`` (created and deleted with
rabbitmqctl). Without a broker the tests skip, except when ``CI`` is set: then they fail.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator

import pika
import pika.exceptions
import pytest

from sarra.core.message import decode, encode
from tests.fixtures.golden import GOLDEN
from tests.fixtures.require import require

pytestmark = pytest.mark.integration

BY_NAME = {g.name: g for g in GOLDEN}


def _unavailable(reason: str) -> None:
    require(False, reason)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def vhost() -> Iterator[str]:
    name = f"t_codec_{secrets.token_hex(4)}"
    if shutil.which("rabbitmqctl") is None:
        _unavailable("rabbitmqctl not found")
    try:
        _rabbitmqctl("add_vhost", name)
    except (subprocess.SubprocessError, OSError) as e:
        _unavailable(f"cannot create vhost {name}: {e}")
    try:
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield name
    finally:
        _rabbitmqctl("delete_vhost", name)


@pytest.fixture
def channel(vhost: str) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    params = pika.ConnectionParameters(
        "localhost", 5672, vhost, pika.PlainCredentials("guest", "guest"), connection_attempts=1
    )
    try:
        connection = pika.BlockingConnection(params)
    except pika.exceptions.AMQPConnectionError as e:
        _unavailable(f"broker unreachable on localhost:5672: {e!r}")
    try:
        yield connection.channel()
    finally:
        connection.close()


@pytest.mark.parametrize("name", ["11.1-md5", "11.10-space-hash", "11.7a-report-201"])
def test_spec_example_crosses_the_broker_unchanged(channel, name: str) -> None:
    g = BY_NAME[name]
    encoded = encode(decode(g.topic, g.headers, g.body.encode("utf-8")))
    channel.exchange_declare(g.exchange, exchange_type="topic", durable=True)
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, g.exchange, routing_key="#")
    channel.confirm_delivery()
    channel.basic_publish(
        g.exchange,
        encoded.topic,
        encoded.body,
        pika.BasicProperties(
            content_type=encoded.content_type,
            delivery_mode=encoded.delivery_mode,
            headers=encoded.headers,
        ),
    )
    method, props, body = next(channel.consume(queue, auto_ack=True, inactivity_timeout=10))
    assert method is not None, "message did not arrive within 10 s"
    assert method.exchange == g.exchange
    assert method.routing_key == g.topic
    assert props.headers == g.headers
    assert all(isinstance(v, str) for v in props.headers.values())
    assert body == g.body.encode("utf-8")
    assert (props.content_type, props.delivery_mode) == ("text/plain", 2)
    received = decode(method.routing_key, props.headers, body)
    assert (received.relpath, received.pubtime, received.report) == (
        decode(g.topic, g.headers, g.body).relpath,
        g.pubtime,
        decode(g.topic, g.headers, g.body).report,
    )
    channel.cancel()
