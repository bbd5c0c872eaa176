"""Switch routing decisions: anti-spoofing, validation, relay addressing, loops, reports."""

from __future__ import annotations

import re

import pytest

from sarra.admin.users import permissions_for
from sarra.config.loader import table_defaults
from sarra.core import message
from sarra.core.routing import (
    Refused,
    Switch,
    Target,
    ingest,
    owner_of,
    relay,
    report_target,
    source_from_exchange,
    stamp_refused,
)

MD5 = "d,746308829575e17c3331bbcb00c0898b"
SW = Switch(
    cluster="A",
    aliases=("alpha",),
    gateway_for=("C",),
    sources=("alice", "alice-x", "eve"),
    subscribers=("bob",),
    base_url="http://a.example/",
    report_routes={"Z": "amqp://z/"},
)


def post(rel="data/f.txt", **headers):
    h = {"sum": MD5, "parts": "1,14,1,0,0", **headers}
    return message.new_post(
        "http://src.example/", rel, {k: v for k, v in h.items() if v is not None}
    )


def report(code=201, user="bob", **headers):
    return message.make_report(post(**headers), code, "Downloaded", "host", user, 0.1)


def test_the_owner_is_the_name_up_to_the_first_underscore():
    assert owner_of("xs_alice-x_public", SW.sources) == "alice-x"
    assert owner_of("xs_alice-x", SW.sources) == "alice-x"
    assert owner_of("xs_alice_public", SW.sources) == "alice"
    assert owner_of("xs_alice_x_public", SW.sources) == "alice"
    assert owner_of("xs_alicex", SW.sources) is None
    assert owner_of("xs_", SW.sources) is None
    assert owner_of("xs__alice", SW.sources) is None
    assert source_from_exchange("xs_eve", SW) == "eve"


@pytest.mark.parametrize(
    "users, exchange, owner",
    [
        (("u", "u_x"), "xs_u_x", "u"),  # a name with "_" (refused by dd_admin) owns nothing
        (("u_x",), "xs_u_x", None),
        (("u", "u.x"), "xs_u.x", "u.x"),
        (("u", "ux"), "xs_ux", "ux"),
        (("u", "u-x"), "xs_u-x", "u-x"),
        (("u", "u-x"), "xs_u-x_public", "u-x"),
        (("a", "a-b-c"), "xs_a-b-c", "a-b-c"),
        (("a", "a-b-c"), "xs_a_b_c", "a"),
    ],
)
def test_owner_of_matches_the_broker_permission_rule(users, exchange, owner):
    assert owner_of(exchange, users) == owner
    if owner is not None:  # the owner's own dd_admin pattern covers it, nobody else's
        assert re.match(permissions_for("source", owner).write, exchange)
        for other in users:
            if other != owner and "_" not in other and "." not in other:
                assert not re.match(permissions_for("source", other).write, exchange)


def test_ingest_forces_source_and_from_cluster_whatever_the_poster_wrote():
    n = ingest(post(source="alice", from_cluster="elsewhere"), "xs_eve", SW)
    assert n.headers["source"] == "eve" and n.headers["from_cluster"] == "A"


def test_ingest_fills_missing_to_clusters_and_keeps_given_ones():
    assert ingest(post(), "xs_alice", SW).headers["to_clusters"] == "A"
    assert ingest(post(to_clusters="C"), "xs_alice", SW).headers["to_clusters"] == "C"


@pytest.mark.parametrize("to", ["A", "alpha", "C", "Z,C", "ALL", "a.example", " , "])
def test_ingest_takes_posts_for_a_cluster_it_serves_or_a_host_name_it_is_reached_by(to):
    sw = Switch(cluster="A", aliases=("alpha",), gateway_for=("C",), sources=("alice",),
                hosts=("a.example",))  # fmt: skip
    n = ingest(post(to_clusters=to), "xs_alice", sw)
    assert n.headers["to_clusters"] == (to if to.strip(" ,") else "A")


@pytest.mark.parametrize("to", ["Z", "Z,Y", "localhost", "all", "a"])
def test_ingest_refuses_posts_for_clusters_it_does_not_know_with_403(to):
    with pytest.raises(Refused) as e:
        ingest(post(to_clusters=to), "xs_alice", SW)
    assert e.value.code == 403 and e.value.text == "Forbidden : unknown destination cluster"
    assert repr(to) in str(e.value) and "A, alpha, C" in str(e.value)


def test_ingest_takes_posts_for_its_default_destinations_and_broker_host():
    o = table_defaults("sara").replace(cluster="A", to=("D",), declare=(("source", "alice"),))
    sw = Switch.from_options(o, "switch-a.example", hosts=("switch-a", "switch-a.example"))
    assert sw.hosts == ("switch-a.example", "switch-a")
    for to in ("D", "switch-a", "switch-a.example"):
        assert ingest(post(to_clusters=to), "xs_alice", sw).headers["to_clusters"] == to


@pytest.mark.parametrize("exchange", ["xs_mallory", "xpublic", "xs_"])
def test_ingest_refuses_exchanges_of_undeclared_owners_with_403(exchange):
    with pytest.raises(Refused) as e:
        ingest(post(source="alice"), exchange, SW)
    assert e.value.code == 403 and "without source" in e.value.text


@pytest.mark.parametrize(
    "headers",
    [
        {"sum": "d,xyz"},
        {"sum": "q,1"},
        {"sum": "z,q"},
        {"parts": "1,-3"},
        {"parts": None},
    ],
)
def test_ingest_refuses_malformed_sum_or_parts_with_417(headers):
    with pytest.raises(Refused) as e:
        ingest(post(**headers), "xs_alice", SW)
    assert e.value.code == 417


def test_ingest_refuses_file_urls():
    n = post().replace(baseurl="file:///etc/")
    with pytest.raises(Refused) as e:
        ingest(n, "xs_alice", SW)
    assert e.value.code == 403


def test_removal_needs_no_parts():
    n = post(sum="R,abc", parts=None)
    assert ingest(n, "xs_alice", SW).headers["source"] == "alice"


def test_refusal_report_names_the_exchange_owner_not_the_claimed_source():
    n = stamp_refused(post(source="alice"), "xs_mallory", SW)
    assert n.headers["source"] == "mallory"


@pytest.mark.parametrize("to", ["A", "alpha", "C", "X,C", "ALL"])
def test_relay_takes_posts_for_its_cluster_alias_or_gateway(to):
    assert (
        relay(post(to_clusters=to, from_cluster="Q", source="alice"), SW).headers["source"]
        == "alice"
    )


def test_relay_ignores_posts_for_other_clusters():
    with pytest.raises(Refused):
        relay(post(to_clusters="B", from_cluster="Q"), SW)


def test_relay_refuses_loops():
    with pytest.raises(Refused):
        relay(post(to_clusters="A", from_cluster="alpha"), SW)
    with pytest.raises(Refused):
        relay(post(to_clusters="A", from_cluster="Q").replace(baseurl=SW.base_url), SW)


def test_user_report_goes_to_xreport_only_from_its_own_exchange():
    assert report_target(report(user="bob"), "xs_bob", SW) == Target("xreport")
    with pytest.raises(Refused):
        report_target(report(user="bob"), "xs_eve", SW)
    with pytest.raises(Refused):
        report_target(report(user="bob"), "xs_stranger", SW)


def test_local_report_goes_to_its_sources_xr_exchange():
    r = report(source="alice", from_cluster="A")
    assert report_target(r, "xreport", SW) == Target("xr_alice")


def test_report_for_unknown_local_source_is_dropped():
    with pytest.raises(Refused):
        report_target(report(source="bob", from_cluster="A"), "xreport", SW)


def test_remote_report_goes_toward_its_cluster_or_is_dropped():
    assert report_target(report(source="x", from_cluster="Z"), "xreport", SW) == Target(
        "xreport", "amqp://z/"
    )
    with pytest.raises(Refused):
        report_target(report(source="x", from_cluster="Y"), "xreport", SW)
    sw = Switch(cluster="A", report_routes={"*": "amqp://up/"})
    assert report_target(report(from_cluster="Y"), "xreport", sw).broker == "amqp://up/"


# Issue 13: a switch never stores a file it could not re-announce (found by the fuzz).
UNANNOUNCEABLE_PATHS = ["a\tb", "a\x1bb", "d/\x7f", "a%20b", "x/\x00"]


@pytest.mark.parametrize("rel", UNANNOUNCEABLE_PATHS)
def test_ingest_and_relay_refuse_relpaths_v02_cannot_carry_with_417(rel):
    n = post().replace(relpath=rel)
    for check in (lambda: ingest(n, "xs_alice", SW), lambda: relay(n.with_headers(
            to_clusters="A", from_cluster="Q"), SW)):  # fmt: skip
        with pytest.raises(Refused) as e:
            check()
        assert e.value.code == 417


@pytest.mark.parametrize("size", [253, 300, 4000])
@pytest.mark.parametrize("char", ["o", "é", "😀"])
def test_ingest_refuses_headers_over_the_v02_limit_with_417(size, char):
    value = (char * size).encode("utf-8")[:size].decode("utf-8", "ignore")
    value += "o" * (size - len(value.encode("utf-8")))
    with pytest.raises(Refused) as e:
        ingest(post(oldname=value), "xs_alice", SW)
    assert e.value.code == 417


def test_ingest_keeps_headers_up_to_the_v02_limit():
    assert ingest(post(oldname="o" * 252), "xs_alice", SW).headers["oldname"] == "o" * 252
