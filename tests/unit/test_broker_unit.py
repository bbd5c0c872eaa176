"""The pure pieces of sarra.broker (connection, urls, confirms): no broker, no network."""

from __future__ import annotations

import itertools
import logging
from types import SimpleNamespace

import pika
import pika.exceptions as pe
import pytest

from sarra.broker import confirms
from sarra.broker import connection as broker
from sarra.broker.confirms import ConfirmTracker
from sarra.broker.connection import Broker, Outgoing, Received, is_current
from sarra.broker.urls import backoff_delays, connection_parameters, parse_url
from sarra.core.errors import AccessRefused, ConfigError, ConnectionLost
from sarra.core.redaction import redact_url


@pytest.mark.parametrize(
    "url, vhost",
    [
        ("amqp://h", "/"),
        ("amqp://h/", "/"),
        ("amqp://h/%2F", "/"),
        ("amqp://h/name", "name"),
        ("amqp://h/%2Fname", "/name"),
        ("amqp://u:p@h:5673/t_a.b", "t_a.b"),
    ],
)
def test_vhost_is_the_url_path_without_its_leading_slash(url, vhost):
    assert parse_url(url).vhost == vhost


def test_url_gives_host_port_user_and_decoded_password():
    ep = parse_url("amqps://bob:p%40ss%3Aw@broker.example:5999/v")
    assert (ep.tls, ep.host, ep.port, ep.user, ep.password) == (
        True, "broker.example", 5999, "bob", "p@ss:w",
    )  # fmt: skip
    assert "p@ss" not in repr(ep)


def test_default_ports_follow_the_scheme_and_missing_credentials_are_guest():
    assert parse_url("amqp://h").port == 5672
    assert parse_url("amqps://h").port == 5671
    assert (parse_url("amqp://h").user, parse_url("amqp://h").password) == ("guest", "guest")


@pytest.mark.parametrize("url", ["http://h/", "amqp:///vhost", "amqp://h:notaport/", "h"])
def test_bad_broker_urls_raise_config_error_without_the_password(url):
    with pytest.raises(ConfigError):
        parse_url(url)
    with pytest.raises(ConfigError) as info:
        parse_url("ftp://u:secret@h/")
    assert "secret" not in str(info.value)


def test_redact_url_hides_only_the_password():
    assert redact_url("amqp://bob:s3cret@h:5672/v") == "amqp://bob:***@h:5672/v"
    assert redact_url("amqp://h/v") == "amqp://h/v"
    assert redact_url("amqps://bob:a@b@h/") == "amqps://bob:***@h/"


def test_backoff_doubles_from_one_second_up_to_the_cap():
    assert list(itertools.islice(backoff_delays(10.0), 7)) == [1, 2, 4, 8, 10, 10, 10]
    assert list(itertools.islice(backoff_delays(0.5), 3)) == [0.5, 0.5, 0.5]


def test_amqps_verifies_certificates_unless_told_not_to():
    ep = parse_url("amqps://h/")
    ctx = connection_parameters(ep, heartbeat=60).ssl_options.context
    assert ctx.check_hostname and ctx.verify_mode.name == "CERT_REQUIRED"
    off = connection_parameters(ep, heartbeat=60, tls_verify=False).ssl_options.context
    assert not off.check_hostname and off.verify_mode.name == "CERT_NONE"
    assert connection_parameters(parse_url("amqp://h/"), heartbeat=60).ssl_options is None


def _received(generation: int) -> Received:
    return Received("x", "k", {}, b"", 7, False, generation)


def test_only_messages_of_the_live_generation_may_be_acked():
    assert is_current(_received(3), 3, connected=True)
    assert not is_current(_received(2), 3, connected=True)
    assert not is_current(_received(3), 3, connected=False)


def test_ack_of_a_message_without_a_connection_is_dropped_quietly(caplog):
    b = Broker("amqp://guest:pw@localhost/v")
    caplog.set_level(logging.DEBUG, logger="sarra.broker.connection")
    b.ack(_received(1))
    b.nack(_received(1), requeue=True)
    assert "broker will redeliver" in caplog.text
    b.keepalive()  # no connection: nothing to do, no error


def test_broker_repr_and_logs_never_show_the_password():
    assert "s3cret" not in repr(Broker("amqp://bob:s3cret@localhost/v"))


def _fail_connect(monkeypatch, exc: Exception) -> list[int]:
    calls: list[int] = []

    def fake(_params):
        calls.append(1)
        raise exc

    monkeypatch.setattr(broker.pika, "BlockingConnection", fake)
    return calls


def test_refused_login_raises_access_refused_after_one_attempt(monkeypatch):
    calls = _fail_connect(monkeypatch, pe.ProbableAuthenticationError("403 ACCESS_REFUSED"))
    with pytest.raises(AccessRefused) as info:
        Broker("amqp://bob:s3cret@localhost/v", max_backoff=0.01).connect()
    assert len(calls) == 1 and "s3cret" not in str(info.value)
    assert isinstance(info.value.__cause__, pe.ProbableAuthenticationError)


def test_unreachable_broker_is_retried_with_a_warning_per_attempt_until_stop(monkeypatch, caplog):
    calls = _fail_connect(monkeypatch, pe.AMQPConnectionError("refused"))
    b = Broker("amqp://bob:s3cret@localhost/v", max_backoff=0.01, stop=lambda: len(calls) >= 3)
    with pytest.raises(ConnectionLost):
        b.connect()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(calls) == 3 and len(warnings) == 3
    assert all("amqp://bob:***@localhost/v" in w and "s3cret" not in w for w in warnings)


def test_tracker_settles_single_and_multiple_acks_in_order():
    t: ConfirmTracker[str] = ConfirmTracker()
    for m in "abcd":
        t.sent(m, "x", "k", m.encode())
    t.confirmed(2, multiple=True, ack=True)
    assert t.outstanding == 2
    t.confirmed(4, multiple=False, ack=False)
    t.confirmed(3, multiple=False, ack=True)
    assert t.outstanding == 0 and t.take_failed() == ["d"] and t.take_failed() == []


def test_tracker_counts_a_returned_message_as_failed_even_when_acked():
    t: ConfirmTracker[str] = ConfirmTracker()
    t.sent("a", "x", "k1", b"same")
    t.sent("b", "x", "k2", b"same")
    assert t.returned("x", "k2", b"same")
    assert not t.returned("x", "k9", b"other")
    t.confirmed(2, multiple=True, ack=True)
    assert t.take_failed() == ["b"]


def test_tracker_ignores_unknown_tags_and_abandon_returns_pending_in_order():
    t: ConfirmTracker[str] = ConfirmTracker()
    for m in "abc":
        t.sent(m, "x", "k", b"")
    t.confirmed(99, multiple=False, ack=False)
    t.confirmed(2, multiple=False, ack=True)
    assert t.abandon() == ["a", "c"] and t.outstanding == 0
    assert t.sent("d", "x", "k", b"") == 4  # numbering continues: it is the channel's


def test_outgoing_becomes_persistent_text_plain_with_string_headers_and_ttl():
    props = confirms._properties(
        Outgoing("x", "k", {"n": 1, "sum": "d,0"}, b"b", expiration_ms=5000)
    )
    assert props.delivery_mode == 2 and props.content_type == "text/plain"
    assert props.headers == {"n": "1", "sum": "d,0"} and props.expiration == "5000"
    transient = confirms._properties(Outgoing("x", "k", {}, b"", persistent=False))
    assert transient.delivery_mode == 1 and transient.expiration is None


def test_on_confirm_reads_ack_and_nack_frames():
    pub = confirms.BatchPublisher(SimpleNamespace(call_later=lambda *_: None), "u")
    pub._tracker.sent("a", "x", "k", b"")
    pub._tracker.sent("b", "x", "k", b"")
    nack = SimpleNamespace(method=pika.spec.Basic.Nack(delivery_tag=1))
    ack = SimpleNamespace(method=pika.spec.Basic.Ack(delivery_tag=2))
    pub._on_confirm(nack)
    pub._on_confirm(ack)
    assert pub._tracker.take_failed() == ["a"] and pub._tracker.outstanding == 0
