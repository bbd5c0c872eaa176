"""sarra.broker.connection against the local RabbitMQ, each test in a vhost of its own."""

from __future__ import annotations

import dataclasses
import logging
import time

import pytest

from sarra.broker.connection import Broker, Outgoing, Received
from sarra.core.errors import AccessRefused, ConnectionLost
from tests.fixtures.rabbit import amqp_url as url_for
from tests.fixtures.rabbit import close_connections, open_connections, queue_counts
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration

X = "xs_test"
Q = "q_test"


def _msg(i: int, exchange: str = X, key: str = "v02.post.a") -> Outgoing:
    return Outgoing(exchange, key, {"n": str(i), "sum": "d,abc"}, f"body {i}".encode())


def _setup(b: Broker, queue: str = Q, exchange: str = X) -> None:
    assert b.declare_exchange(exchange)
    b.declare_queue(queue)
    b.bind(queue, exchange, "v02.post.#")
    b.consume(queue)


def _drain(b: Broker, want: int, timeout: float = 30.0) -> list[Received]:
    """Get and ack messages until ``want`` arrived or ``timeout`` passed."""
    got: list[Received] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        batch = b.get(100, 1.0)
        for r in batch:
            b.ack(r)
        got.extend(batch)
    b.flush()
    return got


@pytest.fixture
def broker(amqp_url: str):
    b = Broker(amqp_url, prefetch=100, max_backoff=2.0, name="test")
    b.connect()
    try:
        yield b
    finally:
        b.close()


def test_confirmed_publish_of_2000_messages_then_consume_all_with_acks(broker, vhost, capsys):
    _setup(broker)
    msgs = [_msg(i) for i in range(2000)]
    t0 = time.monotonic()
    failed = []
    for start in range(0, len(msgs), 500):
        failed += broker.publish_batch(msgs[start : start + 500])
    dt = time.monotonic() - t0
    assert failed == []
    with capsys.disabled():
        print(f"\nbatched confirmed publish: 2000 msgs in {dt:.3f} s = {2000 / dt:.0f} msg/s")

    got = _drain(broker, 2000)
    assert sorted(int(r.headers["n"]) for r in got) == list(range(2000))
    r = got[0]
    assert r.exchange == X and r.routing_key == "v02.post.a"
    assert r.content_type == "text/plain" and r.generation == broker.generation
    assert r.headers["sum"] == "d,abc" and not r.redelivered
    assert queue_counts(vhost, Q) == (0, 0)


def test_one_confirm_per_message_is_slower_than_a_batch_for_comparison(broker, capsys):
    _setup(broker)
    t0 = time.monotonic()
    for i in range(300):
        assert broker.publish(_msg(i)) == []
    dt = time.monotonic() - t0
    with capsys.disabled():
        print(f"\none publish+confirm at a time: 300 msgs in {dt:.3f} s = {300 / dt:.0f} msg/s")
    assert len(_drain(broker, 300)) == 300


def test_unroutable_mandatory_message_is_returned_as_not_confirmed(broker):
    _setup(broker)
    routed = dataclasses.replace(_msg(1), mandatory=True)
    unroutable = dataclasses.replace(_msg(2, key="nobody.listens"), mandatory=True)
    assert broker.publish_batch([routed, unroutable, _msg(3)]) == [unroutable]


def test_unroutable_notice_without_mandatory_counts_as_confirmed(broker):
    _setup(broker)
    assert broker.publish_batch([_msg(1, key="nobody.listens")]) == []


def test_publish_to_missing_exchange_returns_the_batch_and_next_publish_works(broker):
    _setup(broker)
    lost = [_msg(1, exchange="x_missing"), _msg(2, exchange="x_missing")]
    assert broker.publish_batch(lost) == lost
    assert broker.publish_batch([_msg(3)]) == []
    assert [r.headers["n"] for r in _drain(broker, 1)] == ["3"]


def test_nack_without_requeue_drops_and_with_requeue_redelivers(broker, vhost):
    _setup(broker)
    assert broker.publish_batch([_msg(1), _msg(2)]) == []
    first = _get_n(broker, 2)
    by_n = {r.headers["n"]: r for r in first}
    broker.nack(by_n["1"], requeue=False)
    broker.nack(by_n["2"], requeue=True)
    again = _get_n(broker, 1)
    assert [r.headers["n"] for r in again] == ["2"] and again[0].redelivered
    broker.ack(again[0])
    assert broker.get(10, 0.5) == []
    assert queue_counts(vhost, Q) == (0, 0)


def _get_n(b: Broker, n: int, timeout: float = 10.0) -> list[Received]:
    got: list[Received] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += b.get(n - len(got), 1.0)
    return got


def test_consumer_reconnects_after_broker_closes_connection_and_loses_nothing(
    broker, vhost, caplog
):
    _setup(broker)
    assert broker.publish_batch([_msg(i) for i in range(50)]) == []
    first = _get_n(broker, 10)
    for r in first[:5]:
        broker.ack(r)
    acked = {r.headers["n"] for r in first[:5]}
    stale = first[5:]
    gen = broker.generation

    assert close_connections(vhost) == 1
    with pytest.raises(ConnectionLost):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            broker.get(10, 0.5)
    for r in stale:  # tags from the dead connection: dropped, not sent
        broker.ack(r)

    caplog.set_level(logging.WARNING)
    rest = _drain(broker, 45)
    assert broker.generation == gen + 1
    assert all(r.generation == gen + 1 for r in rest)
    assert {r.headers["n"] for r in rest} | acked == {str(i) for i in range(50)}
    assert {r.headers["n"] for r in stale} <= {r.headers["n"] for r in rest if r.redelivered}
    for r in stale:
        broker.ack(r)  # still stale after the reconnect: no channel error
    assert broker.get(10, 0.5) == [] and broker.is_connected
    assert broker.generation == gen + 1
    assert queue_counts(vhost, Q) == (0, 0)


def test_publish_batch_across_a_close_raises_connection_lost_then_works(broker, vhost):
    _setup(broker)
    assert broker.publish_batch([_msg(0)]) == []
    close_connections(vhost)
    wait_for(lambda: not open_connections(vhost), 10, "the broker to close the connection")
    batch = [_msg(i) for i in range(1, 101)]
    with pytest.raises(ConnectionLost):
        broker.publish_batch(batch)
    assert broker.publish_batch(batch) == []
    got = _drain(broker, 101)
    assert {r.headers["n"] for r in got} >= {str(i) for i in range(1, 101)}


def test_keepalive_during_long_work_keeps_connection_past_two_heartbeats(amqp_url, vhost):
    b = Broker(amqp_url, heartbeat=2, max_backoff=1.0)
    try:
        b.connect()
        _setup(b)
        assert b.publish_batch([_msg(1)]) == []
        (r,) = _get_n(b, 1)
        gen = b.generation
        end = time.monotonic() + 6  # three heartbeat intervals of "transfer"
        while time.monotonic() < end:
            time.sleep(0.5)  # the point: busy "work" that only calls keepalive()
            b.keepalive()
        b.ack(r)
        assert b.is_connected and b.generation == gen
        assert b.get(1, 0.5) == []
        assert queue_counts(vhost, Q) == (0, 0)
    finally:
        b.close()


def test_without_keepalive_the_broker_drops_a_heartbeat_2s_connection(amqp_url, vhost):
    """Control for the test above: the same work without keepalive() loses the message."""
    b = Broker(amqp_url, heartbeat=2, max_backoff=1.0)
    try:
        b.connect()
        _setup(b)
        assert b.publish_batch([_msg(1)]) == []
        (r,) = _get_n(b, 1)
        # No I/O on b: its heartbeats stop, and the broker drops it after two missed ones.
        wait_for(lambda: not open_connections(vhost), 30, "the broker to drop the connection")
        with pytest.raises(ConnectionLost):
            b.ack(r)
            b.get(1, 1.0)
        (again,) = _get_n(b, 1)
        assert again.redelivered and again.generation == r.generation + 1
        b.ack(again)
    finally:
        b.close()


def test_wrong_password_raises_access_refused_without_retrying(vhost, caplog):
    b = Broker(url_for(vhost, "guest", "wrong"), max_backoff=30.0)
    t0 = time.monotonic()
    with pytest.raises(AccessRefused) as info:
        b.connect()
    assert time.monotonic() - t0 < 10  # one attempt: the first retry would sleep 1 s+
    assert "wrong" not in str(info.value) and "***" in str(info.value)
    assert not any("retrying" in rec.getMessage() for rec in caplog.records)


def test_missing_vhost_raises_access_refused(rabbit):
    with pytest.raises(AccessRefused):
        Broker(url_for("t_no_such_vhost_here")).connect()


def test_refused_exchange_declare_returns_false_and_consumer_still_works(
    vhost, broker_user, broker
):
    assert broker.declare_exchange("xs_eve")  # guest has every right; eve may not declare
    user, pw = broker_user("eve", "^q_eve.*", "^q_eve.*|^xs_eve$", "^q_eve.*|^xs_eve$")
    eve = Broker(url_for(vhost, user, pw), max_backoff=1.0)
    try:
        eve.connect()
        eve.declare_queue("q_eve.a")
        eve.bind("q_eve.a", "xs_eve", "v02.post.#")
        eve.consume("q_eve.a")
        assert eve.declare_exchange("xs_not_eves") is False
        assert eve.publish_batch([_msg(7, exchange="xs_eve")]) == []
        got = _get_n(eve, 1)
        assert [r.headers["n"] for r in got] == ["7"]
        eve.ack(got[0])
        assert eve.is_connected and eve.generation == 1
    finally:
        eve.close()


def test_refused_publish_and_queue_declare_raise_access_refused_and_broker_goes_on(
    vhost, broker_user, broker
):
    assert broker.declare_exchange("xs_eve") and broker.declare_exchange("xs_other")
    user, pw = broker_user("eve", "^q_eve.*", "^q_eve.*|^xs_eve$", "^q_eve.*|^xs_eve$")
    eve = Broker(url_for(vhost, user, pw), max_backoff=1.0)
    try:
        eve.connect()
        with pytest.raises(AccessRefused):
            eve.declare_queue("q_not_eves")
        with pytest.raises(AccessRefused):
            eve.publish_batch([_msg(1, exchange="xs_other")])
        eve.declare_queue("q_eve.b")
        eve.bind("q_eve.b", "xs_eve", "#")
        eve.consume("q_eve.b")
        assert eve.publish_batch([_msg(2, exchange="xs_eve")]) == []
        assert [r.headers["n"] for r in _get_n(eve, 1)] == ["2"]
        assert eve.generation == 1
    finally:
        eve.close()


def test_publish_nowait_in_batches_then_confirmed_delivers_all(broker):
    _setup(broker)
    for k in range(5):
        broker.publish_nowait([_msg(100 * k + i) for i in range(100)])
        assert broker.confirmed(250) == []  # returns with up to 250 still unconfirmed
    assert broker.confirmed(0) == []
    got = _drain(broker, 500)
    assert sorted(int(r.headers["n"]) for r in got) == [
        100 * k + i for k in range(5) for i in range(100)
    ]


def test_publish_nowait_to_a_missing_exchange_reports_the_lost_messages(broker):
    _setup(broker)
    lost = [_msg(1, exchange="x_missing"), _msg(2, exchange="x_missing")]
    broker.publish_nowait(lost)
    assert broker.confirmed(0) == lost
    broker.publish_nowait([_msg(3)])
    assert broker.confirmed(0) == []


def test_connection_lost_with_posts_awaiting_confirms_names_every_one(broker, vhost):
    """Nothing unconfirmed vanishes: each message is either in the queue or reported."""
    _setup(broker)
    sent = [_msg(i) for i in range(3000)]
    broker.publish_nowait(sent[:1500])
    close_connections(vhost)
    with pytest.raises(ConnectionLost) as info:
        broker.publish_nowait(sent[1500:])
        broker.confirmed(0)
    reported = {m.headers["n"] for m in info.value.unconfirmed}
    got = {r.headers["n"] for r in _drain(broker, 3000, timeout=5)}
    assert {m.headers["n"] for m in sent[:1500]} <= got | reported
