"""Queue naming, bindings, accept/reject selection and mask-scoped placement."""

from __future__ import annotations

import re

import pytest

from sarra.config.loader import load, table_defaults
from sarra.config.paths import Paths
from sarra.core import message
from sarra.core.delivery import Delivery
from sarra.flow import consumer


def delivery(rel: str) -> Delivery:
    n = message.new_post("http://h/", rel, {"sum": "d,00", "parts": "1,1,1,0,0"})
    return Delivery(n)


def opts(tmp_path, *pairs):
    return load("dd_subscribe", None, list(pairs), Paths.under(tmp_path))


def fake(**values):
    return table_defaults("subscribe", "c1").replace(**values)


def test_queue_name_is_made_once_and_remembered(tmp_path):
    o = fake(broker="amqp://alice@h/")
    first = consumer.queue_name(o, "dd_subscribe", tmp_path, random_suffix=True)
    assert re.fullmatch(r"q_alice\.dd_subscribe\.c1\.\d{8}\.\d{8}", first)
    assert consumer.queue_name(o, "dd_subscribe", tmp_path, random_suffix=True) == first


def test_configured_queue_name_wins(tmp_path):
    o = fake(queue_name="q_mine", broker="amqp://alice@h/")
    assert consumer.queue_name(o, "dd_subscribe", tmp_path, random_suffix=True) == "q_mine"
    assert not (tmp_path / "queue_name").exists()


def test_every_subtopic_is_bound_under_the_prefix():
    o = fake(topic_prefix="v02.post", subtopic=("a.#", "b.*"))
    assert consumer.bindings(o) == ["v02.post.a.#", "v02.post.b.*"]
    assert consumer.bindings(fake()) == ["v02.post.#"]


class Recorder:
    """Records the broker calls made (FakeBroker keeps no topology)."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *a, **kw: self.calls.append((name, a, kw))


def test_setup_queue_declares_binds_every_subtopic_and_consumes():
    b = Recorder()
    o = fake(durable=True, expire=300.0, message_ttl=None, subtopic=("x.#", "y.#"))
    consumer.setup_queue(b, o, "q_t", "xs_guest")
    assert b.calls == [
        ("declare_exchange", ("xs_guest",), {"passive": True}),  # missing here (None)...
        ("declare_exchange", ("xs_guest",), {}),  # ... so it is created
        ("declare_queue", ("q_t",), {"durable": True, "expire_s": 300.0, "message_ttl_s": None}),
        ("bind", ("q_t", "xs_guest", "v02.post.x.#"), {}),
        ("bind", ("q_t", "xs_guest", "v02.post.y.#"), {}),
        ("consume", ("q_t",), {}),
    ]


def test_an_existing_exchange_is_not_declared_again():
    b = Recorder()
    b.declare_exchange = lambda *a, **kw: b.calls.append(("declare_exchange", a, kw)) or True
    o = fake(durable=True, expire=None, message_ttl=None, subtopic=())
    consumer.setup_queue(b, o, "q_t", "xpublic")
    assert [c for c in b.calls if c[0] == "declare_exchange"] == [
        ("declare_exchange", ("xpublic",), {"passive": True})
    ]


OPTS = dict(durable=False, expire=60.0, message_ttl=5.0, topic_prefix="v02.post",
            subtopic=("a.#",))  # fmt: skip


@pytest.mark.parametrize("names", [["xs_a"], ["xs_a", "xs_b"], ["xs_a", "xs_b", "xs_c"]])
def test_a_switch_declares_each_exchange_it_binds_on(names):
    b = Recorder()
    o = fake(**OPTS)
    consumer.setup_queue(b, o, "q_s", names, exchange_mode=consumer.DECLARE, consume=False)
    queue = ("declare_queue", ("q_s",), {"durable": False, "expire_s": 60.0, "message_ttl_s": 5.0})
    assert b.calls[0] == queue
    per_exchange = [(("declare_exchange", (n,), {}), ("bind", ("q_s", n, "v02.post.a.#"), {}))
                    for n in names]  # fmt: skip
    assert b.calls[1:] == [c for pair in per_exchange for c in pair]  # declare: no consume


@pytest.mark.parametrize("keys", [["v02.report.#"], ["v02.report.x", "v02.log.x"]])
def test_an_existing_exchange_is_only_bound_with_the_keys_given(keys):
    b = Recorder()
    o = fake(**OPTS)
    consumer.setup_queue(b, o, "q_l", "xr_u", keys, exchange_mode=consumer.EXISTING)
    assert [c[0] for c in b.calls] == ["declare_queue", *["bind"] * len(keys), "consume"]
    assert [c[1][2] for c in b.calls if c[0] == "bind"] == keys


def test_topic_keys_default_to_every_subtopic():
    assert consumer.topic_keys("v02.report", ()) == ["v02.report.#"]
    assert consumer.topic_keys("p", ["a", "b.*"]) == ["p.a", "p.b.*"]


def test_first_matching_mask_decides(tmp_path):
    o = opts(tmp_path, ("reject", ".*secret.*"), ("accept", ".*\\.txt"))
    select = consumer.Selector(o)
    assert select(delivery("a/b.txt")) is True
    assert select(delivery("a/secret.txt")) is False
    assert select(delivery("a/b.bin")) is False  # accepts exist: unmatched is rejected


def test_accept_unmatch_takes_what_no_mask_matches(tmp_path):
    o = opts(tmp_path, ("accept", ".*\\.txt"), ("accept_unmatch", "True"))
    assert consumer.Selector(o)(delivery("a/b.bin")) is True


def test_no_accept_lines_means_everything_not_rejected(tmp_path):
    o = opts(tmp_path, ("reject", ".*\\.tmp"))
    select = consumer.Selector(o)
    assert select(delivery("a/b.bin")) is True and select(delivery("a/b.tmp")) is False


def test_placement_uses_the_options_in_force_at_the_accepting_line(tmp_path):
    o = opts(
        tmp_path,
        ("directory", str(tmp_path / "texts")), ("mirror", "True"), ("accept", ".*\\.txt"),
        ("directory", str(tmp_path / "flat")), ("mirror", "False"), ("accept", ".*"),
    )  # fmt: skip
    select, locate = consumer.Selector(o), consumer.Locator(o)
    a, b = delivery("x/y/a.txt"), delivery("x/y/b.bin")
    for d in (a, b):
        assert select(d)
        locate(d)
    assert a.local_path == tmp_path / "texts" / "x" / "y" / "a.txt"
    assert b.local_path == tmp_path / "flat" / "b.bin"
