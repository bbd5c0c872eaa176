"""pika_seam's two paths, batched on pika's internals and public, give the same outcomes
against the local RabbitMQ: confirms, returns, a missing exchange, a refused publish,
publish_nowait, acks and nacks."""

from __future__ import annotations

import time

import pytest

from sarra.broker import pika_seam
from sarra.broker.connection import Broker, Outgoing, Received
from sarra.core.errors import AccessRefused
from sarra.core.seams import Choice
from tests.fixtures.rabbit import amqp_url as url_for
from tests.fixtures.rabbit import queue_counts

pytestmark = pytest.mark.integration

PATHS = {"private": Choice(True, "test: private"), "public": Choice(False, "test: public")}


def _msg(i: int, exchange: str, key: str = "v02.post.a", mandatory: bool = False) -> Outgoing:
    return Outgoing(exchange, key, {"n": str(i)}, f"body {i}".encode(), mandatory=mandatory)


def _names(msgs: list[Outgoing]) -> list[str]:
    return [m.headers["n"] for m in msgs]


def _take(b: Broker, want: int) -> list[Received]:
    got: list[Received] = []
    deadline = time.monotonic() + 20
    while len(got) < want and time.monotonic() < deadline:
        got += b.get(want - len(got), 1.0)
    return got


def _outcomes(url: str, vhost: str, tag: str) -> dict:
    """Everything one Broker sees through one path, on its own exchange and queue."""
    x, q = f"xs_{tag}", f"q_{tag}"
    b = Broker(url, prefetch=100, max_backoff=1.0)
    b.connect()
    try:
        kind = type(b._publisher).__name__
        assert b.declare_exchange(x)
        b.declare_queue(q)
        b.bind(q, x, "v02.post.#")
        b.consume(q)
        out: dict = {}
        batch = [_msg(1, x, mandatory=True), _msg(2, x, "nobody", mandatory=True), _msg(3, x)]
        out["returned"] = _names(b.publish_batch(batch))
        out["missing exchange"] = _names(b.publish_batch([_msg(4, "x_no"), _msg(5, "x_no")]))
        b.publish_nowait([_msg(6, x), _msg(7, x, "nobody")])
        out["nowait"] = _names(b.confirmed(0))
        got = {r.headers["n"]: r for r in _take(b, 3)}
        out["delivered"] = sorted(got)
        b.ack(got["1"])
        b.nack(got["3"], requeue=True)
        b.nack(got["6"], requeue=False)
        again = _take(b, 1)
        out["redelivered"] = [(r.headers["n"], r.redelivered) for r in again]
        for r in again:
            b.ack(r)
        b.flush()
        out["left in queue"] = queue_counts(vhost, q)
        return {"publisher": kind, **out}
    finally:
        b.close()


def test_both_pika_paths_give_the_same_outcomes(amqp_url, vhost, monkeypatch):
    seen = {}
    for name, choice in PATHS.items():
        monkeypatch.setattr(pika_seam, "CHANNEL", choice)
        seen[name] = _outcomes(amqp_url, vhost, name)
    kinds = {name: seen[name].pop("publisher") for name in seen}
    assert kinds == {"private": "BatchPublisher", "public": "PublicPublisher"}
    assert (
        seen["private"]
        == seen["public"]
        == {
            "returned": ["2"],
            "missing exchange": ["4", "5"],
            "nowait": [],
            "delivered": ["1", "3", "6"],
            "redelivered": [("3", True)],
            "left in queue": (0, 0),
        }
    )


@pytest.mark.parametrize("path", PATHS)
def test_a_refused_publish_names_the_whole_batch_on_both_paths(
    vhost, broker_user, amqp_url, monkeypatch, path
):
    monkeypatch.setattr(pika_seam, "CHANNEL", PATHS[path])
    admin = Broker(amqp_url, max_backoff=1.0)
    try:
        assert admin.declare_exchange("xs_other") and admin.declare_exchange("xs_eve")
    finally:
        admin.close()
    user, pw = broker_user("eve", "^q_eve.*", "^q_eve.*|^xs_eve$", "^q_eve.*|^xs_eve$")
    eve = Broker(url_for(vhost, user, pw), max_backoff=1.0)
    try:
        eve.connect()
        batch = [_msg(1, "xs_other"), _msg(2, "xs_other")]
        with pytest.raises(AccessRefused) as info:
            eve.publish_batch(batch)
        assert _names(info.value.refused) == ["1", "2"]
        assert eve.publish_batch([_msg(3, "xs_eve")]) == []  # a new channel, same connection
        assert eve.generation == 1
    finally:
        eve.close()
