"""The SSRF policy: address forms, internal addresses, and what a source may name."""

from __future__ import annotations

import ipaddress
import logging

import pytest

from sarra.config import converters
from sarra.config.loader import table_defaults
from sarra.core.fetchpolicy import FetchPolicy, Refused, is_internal, parse_address
from sarra.transfer.netguard import Guard

A = ipaddress.ip_address


@pytest.mark.parametrize(
    "host, address",
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
        ("[fe80::1%eth0]", "fe80::1"),
        ("169.254.169.254", "169.254.169.254"),
        ("0", "0.0.0.0"),
        ("127.0.0.1.", "127.0.0.1"),
    ],
)
def test_every_literal_address_form_is_read_as_its_address(host, address):
    assert parse_address(host) == A(address)


@pytest.mark.parametrize(
    "host", ["localhost", "localhost.", "example.com", "1.2.3.4.5", "256.1.1.1", "0xg", "1e3", ""]
)
def test_host_names_and_impossible_forms_are_not_addresses(host):
    assert parse_address(host) is None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.5.6.7",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",
        "2002:7f00:1::",
        "2002:a9fe:a9fe::1",
        "::127.0.0.1",
        "169.254.169.254",
        "fe80::1",
        "0.0.0.0",
        "0.1.2.3",
        "::",
        "224.0.0.1",
        "ff02::1",
        "255.255.255.255",
        "240.0.0.1",
    ],
)
def test_loopback_link_local_unspecified_multicast_and_reserved_are_internal(address):
    assert is_internal(A(address))


@pytest.mark.parametrize("address", ["192.0.2.10", "8.8.8.8", "10.1.2.3", "2001:db8::5"])
def test_other_addresses_are_not_internal_unless_the_switch_owns_them(address):
    assert not is_internal(A(address))
    assert is_internal(A(address), own=[A(address)])


def test_an_own_address_wrapped_in_ipv6_is_still_the_switch():
    assert is_internal(A("::ffff:192.0.2.10"), own=[A("192.0.2.10")])


def check(policy, source, host, *addresses):
    policy.for_source(source).check(host, [A(a) for a in addresses])


@pytest.mark.parametrize(
    "host, addresses",
    [
        ("localhost", ["127.0.0.1"]),
        ("localhost.", ["::1"]),
        ("2130706433", ["127.0.0.1"]),
        ("0x7f.1", ["127.0.0.1"]),
        ("metadata", ["169.254.169.254"]),
        ("rebind.example", ["192.0.2.1", "127.0.0.1"]),
        ("me.example", ["192.0.2.99"]),  # the switch itself
    ],
)
@pytest.mark.parametrize("lines", [[], [("*", ("*",))], [("alice", ("*.example", "*"))]])
def test_internal_addresses_are_refused_whatever_names_are_allowed(host, addresses, lines):
    with pytest.raises(Refused) as info:
        check(FetchPolicy(lines, own=[A("192.0.2.99")]), "alice", host, *addresses)
    assert info.value.code == 403 and info.value.permanent


@pytest.mark.parametrize("lines", [[], [("bob", ("data.example.org",))]])
def test_without_lines_for_the_source_even_public_hosts_are_refused(lines):
    """Issue 13: a source names only the hosts declared for it (default deny)."""
    with pytest.raises(Refused) as info:
        check(FetchPolicy(lines), "alice", "data.example.org", "192.0.2.1", "2001:db8::1")
    assert info.value.code == 403 and "no source_hosts line" in str(info.value)


@pytest.mark.parametrize("who", ["*", "alice"])
def test_a_star_pattern_lets_any_public_host_but_never_an_internal_one(who):
    policy = FetchPolicy([(who, ("*",))], own=[A("192.0.2.99")])
    check(policy, "alice", "data.example.org", "192.0.2.1", "2001:db8::1")
    for host, address in (
        ("localhost", "127.0.0.1"),
        ("me", "192.0.2.99"),
        ("m", "169.254.169.254"),
    ):
        with pytest.raises(Refused):
            check(policy, "alice", host, address)


@pytest.mark.parametrize("pattern", ["127.0.0.1", "127.0.0.0/8", "2130706433", "::ffff:7f00:1"])
def test_a_listed_address_unlocks_loopback(pattern):
    policy = FetchPolicy([("alice", (pattern,))])
    check(policy, "alice", "127.0.0.1", "127.0.0.1")
    check(policy, "alice", "127.1", "127.0.0.1")


@pytest.mark.parametrize(
    "pattern, host",
    [("localhost", "localhost"), ("*", "evil.example"), ("*.example", "evil.example")],
)
def test_a_host_name_never_unlocks_an_internal_address(pattern, host):
    policy = FetchPolicy([("alice", (pattern,))])
    for address in ("127.0.0.1", "::1", "169.254.169.254", "::ffff:127.0.0.1"):
        with pytest.raises(Refused, match="internal"):
            check(policy, "alice", host, address)


def test_a_source_with_lines_may_name_only_the_listed_hosts():
    policy = FetchPolicy([("alice", ("data.alice.org", "*.cdn.example", "10.9.0.0/16"))])
    check(policy, "alice", "DATA.alice.org.", "192.0.2.1")
    check(policy, "alice", "a.b.cdn.example", "192.0.2.2")
    check(policy, "alice", "anything.example", "10.9.1.1")
    for host, addr in (("cdn.example", "192.0.2.2"), ("data.alice.org.evil", "192.0.2.3")):
        with pytest.raises(Refused, match="not allowed"):
            check(policy, "alice", host, addr)


def test_lines_are_per_source_plus_the_star_lines():
    policy = FetchPolicy([("alice", ("a.example",)), ("*", ("common.example",))])
    check(policy, "alice", "a.example", "192.0.2.1")
    check(policy, "eve", "common.example", "192.0.2.1")
    with pytest.raises(Refused):
        check(policy, "eve", "a.example", "192.0.2.1")


def test_a_name_without_any_address_is_refused():
    with pytest.raises(Refused):
        check(FetchPolicy([("*", ("*",))]), "alice", "nothing.example")


def test_the_guard_resolves_once_and_returns_the_checked_address():
    calls = []

    def resolve(host, port):
        calls.append((host, port))
        return [A("192.0.2.5")]

    guard = Guard(FetchPolicy([("alice", ("*",))]).for_source("alice"), resolve)
    assert guard.address("Data.Example.", 80) == "192.0.2.5"
    assert calls == [("data.example", 80)]


@pytest.mark.parametrize(
    "line, parsed",
    [
        ("alice 127.0.0.1", ("alice", ("127.0.0.1",))),
        ("* *.example.org 10.0.0.0/8", ("*", ("*.example.org", "10.0.0.0/8"))),
        ("bob Data.Example.", ("bob", ("data.example",))),
    ],
)
def test_source_hosts_option_lines(line, parsed):
    assert converters.source_hosts(line) == parsed


@pytest.mark.parametrize("line", ["alice", "alice http://x/", "alice 10.0.0.0/99", "a b/c"])
def test_bad_source_hosts_lines_are_config_errors(line):
    with pytest.raises(ValueError):
        converters.source_hosts(line)


def test_dd_admin_copies_source_hosts_into_the_ingest_config_only(tmp_path):
    from sarra.admin.config import load_admin_config
    from sarra.admin.switchconf import ingest_config, relay_config

    conf = tmp_path / "admin.conf"
    conf.write_text(
        "cluster sw1\nadmin amqp://root@localhost/\nfeeder amqp://feeder@localhost/\n"
        "post_base_dir /srv\npost_base_url http://sw1/\nsource_hosts * 127.0.0.1\n"
        "source_hosts alice *.alice.org\nlink sw2 amqp://feeder@sw2/\n"
    )
    c = load_admin_config(conf)
    lines = ingest_config(c).splitlines()
    assert "source_hosts * 127.0.0.1" in lines and "source_hosts alice *.alice.org" in lines
    assert "source_hosts" not in relay_config(c, c.links[0])


def test_dd_admin_refuses_a_bad_source_hosts_line(tmp_path):
    from sarra.admin.config import load_admin_config
    from sarra.core.errors import ConfigError

    conf = tmp_path / "admin.conf"
    conf.write_text("admin amqp://root@localhost/\nsource_hosts alice\n")
    with pytest.raises(ConfigError, match="source_hosts"):
        load_admin_config(conf)


def _ctx(program, **options):
    from sarra.flow.context import Context

    c = Context.__new__(Context)  # only the fields transfers()/fetch_policy() read
    c.program, c._policy, c._closers = program, None, []
    c.options = table_defaults(program).replace(**options)
    c.stop = lambda: False
    c.credentials = type("C", (), {"lookup": staticmethod(lambda url: None)})()
    return c


@pytest.mark.parametrize(
    "program, options, applies",
    [
        ("sara", {"source_from_exchange": True}, True),  # ingest: always
        ("sara", {"source_from_exchange": False}, False),  # relay: only with lines
        ("sara", {"source_from_exchange": False, "source_hosts": [("*", ("a",))]}, True),
        ("subscribe", {}, False),  # a subscriber's own network is legitimate
        ("subscribe", {"source_hosts": [("*", ("127.0.0.1",))]}, True),
    ],
)
def test_where_the_ssrf_policy_applies(program, options, applies):
    c = _ctx(program, **options)
    assert (c.fetch_policy() is not None) == applies
    pool = c.transfers()
    t = pool.get("http://192.0.2.1/")
    assert (t.guard is not None) == applies
    assert t.limits.min_rate == 1024 and t.limits.max_size == 1 << 30


def test_the_pool_gets_the_limit_options():
    c = _ctx("subscribe", timeout_min_rate=0, download_max_size=5000, timeout=3)
    t = c.transfers().get("http://192.0.2.1/")
    assert (t.limits.min_rate, t.limits.max_size, t.timeout) == (0, 5000, 3)


@pytest.mark.parametrize("lines, warned", [([], True), ([("*", ("*",))], False)])
def test_an_ingest_without_any_source_hosts_line_says_once_that_it_refuses_all(
    caplog, lines, warned
):
    c = _ctx("sara", source_from_exchange=True, source_hosts=lines)
    with caplog.at_level(logging.WARNING):
        c.fetch_policy()
        c.fetch_policy()
    said = [r for r in caplog.records if "no source_hosts lines" in r.getMessage()]
    assert len(said) == (1 if warned else 0)


def test_dd_sara_as_the_command_names_it_ingests_under_the_policy(tmp_path):
    """Context is built with the program as called (``dd_sara``): an ingest without
    ``source_hosts`` lines gets the policy that refuses every host, not no policy."""
    from sarra.config.loader import load
    from sarra.config.paths import Paths
    from sarra.flow.context import Context

    paths = Paths.under(tmp_path)
    conf = paths.config_file("sara", "ingest")
    conf.parent.mkdir(parents=True)
    conf.write_text("broker amqp://feeder@localhost/\n")
    o = load("dd_sara", "ingest", paths=paths, defaults={"source_from_exchange": True})
    assert Context("dd_sara", o, paths).fetch_policy() is not None
