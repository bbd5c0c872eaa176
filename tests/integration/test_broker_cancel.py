"""A queue deleted under a consumer (issue 13, class 11), against the local RabbitMQ.

RabbitMQ tells the consumer with a Basic.Cancel; ``Broker.get`` declares the queue
again with its bindings and consumes again, with one warning, so the daemon is not left
deaf while it looks alive.
"""

from __future__ import annotations

import logging
import time

import pika
import pytest

from sarra.broker.connection import Broker, Outgoing, Received

pytestmark = pytest.mark.integration

X = "xs_cancel"


def _msg(i: int, key: str = "v02.post.a") -> Outgoing:
    return Outgoing(X, key, {"n": str(i), "sum": "d,abc"}, f"body {i}".encode())


def _get(b: Broker, want: int, timeout: float = 20.0) -> list[Received]:
    got: list[Received] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got.extend(b.get(100, 0.5))
    return got


def _delete(amqp_url: str, queue: str) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        conn.channel().queue_delete(queue)
    finally:
        conn.close()


@pytest.fixture
def broker(amqp_url: str):
    b = Broker(amqp_url, prefetch=50, max_backoff=2.0, name="test")
    b.connect()
    try:
        yield b
    finally:
        b.close()


def _setup(b: Broker, queue: str, keys: tuple = ("v02.post.#",)) -> None:
    assert b.declare_exchange(X)
    b.declare_queue(queue)
    for k in keys:
        b.bind(queue, X, k)
    b.consume(queue)


@pytest.mark.parametrize("deletions", [1, 3])
def test_a_deleted_queue_is_declared_again_bound_and_consumed(broker, amqp_url, caplog, deletions):
    _setup(broker, "q_a", ("v02.post.a", "v02.post.b.#"))
    assert broker.publish_batch([_msg(0)]) == []
    in_hand = _get(broker, 1)
    assert len(in_hand) == 1
    caplog.set_level(logging.WARNING, logger="sarra.broker.connection")
    for n in range(deletions):
        _delete(amqp_url, "q_a")
        assert _get(broker, 1, timeout=2.0) == []  # noticed: declared again
        assert broker.publish_batch([_msg(n + 1), _msg(n + 1, "v02.post.b.c")]) == []
        got = _get(broker, 2)
        assert sorted(r.routing_key for r in got) == ["v02.post.a", "v02.post.b.c"]
        for r in got:
            broker.ack(r)
    broker.ack(in_hand[0])  # a tag of the deleted queue: harmless
    assert broker.publish_batch([_msg(99)]) == []
    assert len(_get(broker, 1)) == 1 and broker.is_connected
    warnings = [r for r in caplog.records if "cancelled the consumer" in r.getMessage()]
    assert len(warnings) == deletions


def test_only_the_deleted_queue_is_consumed_again(broker, amqp_url):
    _setup(broker, "q_one", ("v02.post.one",))
    _setup(broker, "q_two", ("v02.post.two",))
    _delete(amqp_url, "q_one")
    assert _get(broker, 1, timeout=2.0) == []
    for i in range(10):
        assert broker.publish_batch([_msg(i, "v02.post.one"), _msg(i, "v02.post.two")]) == []
    got = _get(broker, 20)
    # one consumer per queue: each message exactly once
    assert sorted(r.routing_key for r in got) == ["v02.post.one"] * 10 + ["v02.post.two"] * 10
    assert _get(broker, 1, timeout=1.0) == []
