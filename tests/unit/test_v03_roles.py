"""v03 in the producers and consumers (issue 17, step 3): the options, bindings of both
prefixes on one queue, posting in one or both formats, reports in the format of their
post, inline content made by the poster and written by the subscriber without a fetch."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from sarra.config.loader import table_defaults
from sarra.config.options import canonical, formats
from sarra.core import message
from sarra.core.delivery import Delivery
from sarra.flow import consumer
from sarra.flow.sinks import NoticePublisher, Reporter
from tests.fixtures.fakebroker import FakeBroker
from tests.unit.test_download import BASE, downloader
from tests.unit.test_posting import maker

DATA = b"Hello, world!\n"
MD5 = "d," + hashlib.md5(DATA).hexdigest()


def post(fmt: str = "v02", **extra: str) -> message.Notice:
    n = message.new_post(BASE, "data/hello.txt", {"sum": MD5, "parts": f"1,{len(DATA)},1,0,0"})
    return n.replace(extra=extra) if extra else n


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    "word, name",
    [("topicPrefix", "topic_prefix"), ("post_topicPrefix", "post_topic_prefix"),
     ("--post_topicPrefix", "post_topic_prefix"), ("post_format", "post_format"),
     ("inlineByteMax", "inline_max"), ("inlineEncoding", "inline_encoding"),
     ("inlineOnly", "inline_only"), ("inline", "inline")],
)  # fmt: skip
def test_sr3_spellings_are_synonyms_of_one_option(word, name) -> None:
    assert canonical(word) == name


def test_post_format_takes_v02_v03_or_both_and_nothing_else() -> None:
    assert formats("v03") == ("v03",)
    assert formats(" V02 , v03,v02") == ("v02", "v03")
    for bad in ("", "v04", "v02,json"):
        with pytest.raises(ValueError, match="post_format"):
            formats(bad)


@pytest.mark.parametrize(
    "post_format, prefix, want",
    [((), None, [("v02", "v02.post")]), ((), "v03", [("v03", "v03")]),
     ((), "v03.post", [("v03", "v03.post")]), (("v03",), "v02.post", [("v03", "v03")]),
     (("v02", "v03"), "v02.post", [("v02", "v02.post"), ("v03", "v03")])],
)  # fmt: skip
def test_the_formats_posted_follow_post_format_else_the_topic_prefix(post_format, prefix, want):
    assert message.post_formats(post_format, prefix) == want


def test_a_queue_is_bound_to_every_prefix_and_subtopic() -> None:
    o = table_defaults("subscribe").replace(topic_prefix="v02.post, v03", subtopic=("a.#", "b.#"))
    assert consumer.bindings(o) == ["v02.post.a.#", "v02.post.b.#", "v03.a.#", "v03.b.#"]
    broker = FakeBroker()
    bound = []
    broker.bind = lambda q, x, k: bound.append((q, x, k))  # type: ignore[method-assign]
    consumer.setup_queue(broker, o, "q_u.dd_subscribe.c", "xpublic")
    assert {q for q, _, _ in bound} == {"q_u.dd_subscribe.c"} and len(bound) == 4


# --------------------------------------------------------------------------- posting


def ok(notice: message.Notice, received=None) -> Delivery:
    d = Delivery(notice, received=received)
    d.ok(201, "Downloaded")
    d.post_notice = notice
    return d


def test_a_post_goes_out_once_in_each_format_asked_for() -> None:
    broker = FakeBroker()
    pub = NoticePublisher(broker, "xpublic", formats=message.post_formats(("v02", "v03")))
    d = ok(post(content=json.dumps({"encoding": "utf-8", "value": "Hello, world!\n"})))
    pub.publish([d])
    assert d.outcome == "ok"
    v2, v3 = broker.published
    assert (v2.routing_key, v3.routing_key) == ("v02.post.data", "v03.data")
    assert v2.body.startswith(b"2") and "content" not in v2.headers  # left out of v02
    got = json.loads(v3.body)
    assert got["identity"]["method"] == "md5" and got["content"]["value"] == DATA.decode()


def test_a_post_no_format_can_carry_whole_fails_and_nothing_of_it_goes_out() -> None:
    broker = FakeBroker()
    pub = NoticePublisher(broker, "xpublic", formats=message.post_formats(("v02", "v03")))
    d = ok(post().with_headers(link="x" * 300))
    pub.publish([d])
    assert d.outcome == "failed" and d.report and d.report[0] == 417
    assert broker.published == []


def test_a_shovel_without_post_format_keeps_each_message_in_its_own_format() -> None:
    broker = FakeBroker()
    v3 = message.encode(post(), "v03")
    r3 = broker.put_raw(v3.topic, {}, v3.body)
    v2 = message.encode(post())
    r2 = broker.put_raw(v2.topic, v2.headers, v2.body)
    pub = NoticePublisher(broker, "out", formats=None)
    items = [ok(message.decode(r.routing_key, r.headers, r.body), r) for r in (r3, r2)]
    pub.publish(items)
    assert [(o.routing_key, o.body) for o in broker.published] == [
        (v3.topic, v3.body), (v2.topic, v2.body),
    ]  # fmt: skip


def test_a_report_answers_in_the_format_of_its_post() -> None:
    broker = FakeBroker()
    v3 = message.encode(post(), "v03")
    v2 = message.encode(post())
    for enc in (v3, v2):
        broker.put_raw(enc.topic, enc.headers, enc.body)
    items = [ok(message.decode(r.routing_key, r.headers, r.body), r) for r in broker.queue]
    Reporter(broker, "xs_u", "u", "h.example").publish(items)
    r3, r2 = broker.published
    assert r3.routing_key == "v03.report.data" and json.loads(r3.body)["report"]["code"] == 201
    assert r2.routing_key == "v02.report.data" and b" 201 h.example u 0.0" in r2.body


# --------------------------------------------------------------------------- inline


def test_a_small_file_travels_inline_with_the_checksum_of_the_bytes_sent(tmp_path) -> None:
    (tmp_path / "t.txt").write_bytes(DATA)
    (tmp_path / "b.bin").write_bytes(b"\x00\xff" * 8)
    m = maker(tmp_path, post_format=("v03",), inline=True, inline_max=4096)
    text, binary = (m.for_path(str(tmp_path / n))[0] for n in ("t.txt", "b.bin"))
    assert json.loads(text.extra["content"]) == {"encoding": "utf-8", "value": DATA.decode()}
    assert text.headers["sum"] == MD5 and text.headers["parts"] == "1,14,1,0,0"
    content = json.loads(binary.extra["content"])
    assert content["encoding"] == "base64"
    assert base64.b64decode(content["value"]) == b"\x00\xff" * 8


@pytest.mark.parametrize("encoding, want", [("binary", "base64"), ("text", "utf-8")])
def test_inline_encoding_forces_base64_or_text(tmp_path, encoding, want) -> None:
    (tmp_path / "x.dat").write_bytes(DATA)
    m = maker(tmp_path, post_format=("v03",), inline=True, inline_max=64,
              inline_encoding=encoding)  # fmt: skip
    assert json.loads(m.for_path(str(tmp_path / "x.dat"))[0].extra["content"])["encoding"] == want


def test_no_inline_for_big_files_v02_only_posters_and_inline_only_refuses_big_ones(tmp_path):
    from sarra.core.errors import PathError

    (tmp_path / "big").write_bytes(b"x" * 100)
    (tmp_path / "small").write_bytes(b"x")
    assert not maker(tmp_path, post_format=("v03",), inline=True, inline_max=100).for_path(
        str(tmp_path / "big"))[0].extra  # fmt: skip
    assert not maker(tmp_path, inline=True).for_path(str(tmp_path / "small"))[0].extra
    strict = maker(tmp_path, post_format=("v03",), inline=True, inline_max=50, inline_only=True)
    with pytest.raises(PathError, match="inline_only"):
        strict.for_path(str(tmp_path / "big"))


def test_a_v03_only_poster_may_post_a_name_with_a_literal_percent_20(tmp_path) -> None:
    from sarra.core.errors import PathError

    (tmp_path / "a%20b").write_bytes(DATA)
    assert maker(tmp_path, post_format=("v03",)).for_path(str(tmp_path / "a%20b"))
    with pytest.raises(PathError, match="%20"):
        maker(tmp_path, post_format=("v02", "v03")).for_path(str(tmp_path / "a%20b"))


def _inline(value: bytes, **headers: str) -> message.Notice:
    content = json.dumps({"encoding": "base64", "value": base64.b64encode(value).decode()})
    return post(content=content).with_headers(headers)


def test_the_subscriber_writes_inline_bytes_without_a_fetch(tmp_path) -> None:
    dl, transfer, placed = downloader(tmp_path, {})
    d = Delivery(_inline(DATA))
    dl(d)
    assert d.outcome == "ok" and transfer.fetched == []
    assert (tmp_path / "data" / "hello.txt").read_bytes() == DATA


@pytest.mark.parametrize(
    "value, headers",
    [(b"Hello, WORLD!\n", {}), (DATA + b"x", {}),
     (DATA, {"parts": "1,99,1,0,0", "sum": "d," + hashlib.md5(b"y" * 99).hexdigest()})],
    ids=["wrong bytes", "longer", "other size announced"],
)  # fmt: skip
def test_inline_bytes_that_do_not_match_the_notice_are_fetched_instead(tmp_path, value, headers):
    served = DATA if not headers else b"y" * 99
    dl, transfer, placed = downloader(tmp_path, {"/data/hello.txt": served})
    n = _inline(value, **headers)
    d = Delivery(n)
    dl(d)
    assert transfer.fetched == ["/data/hello.txt"]
    assert d.outcome == "ok" and (tmp_path / "data" / "hello.txt").read_bytes() == served


def test_malformed_inline_content_is_fetched_instead(tmp_path) -> None:
    dl, transfer, placed = downloader(tmp_path, {"/data/hello.txt": DATA})
    for content in ('{"encoding": "rot13", "value": "x"}', '{"encoding": "base64", "value": "!"}',
                    "[1]"):  # fmt: skip
        transfer.fetched.clear()
        d = Delivery(post(content=content))
        dl(d)
        assert d.outcome == "ok" and transfer.fetched == ["/data/hello.txt"]


# --------------------------------------------------------------------------- dd_sara


def test_dd_sara_ingests_v03_and_reannounces_in_both_formats_its_config_names(tmp_path):
    from tests.unit import test_sara_flow as sf

    b, flow = sf.setup(tmp_path, "post_format v02,v03\n")
    enc = message.encode(sf.post(source="mallory", from_cluster="x"), "v03")
    b.put_raw(enc.topic, {}, enc.body, exchange="xs_alice")
    flow.run_once()
    v2, v3 = [o for o in b.published if o.exchange == "xpublic"]
    assert v2.routing_key.startswith("v02.post.") and v3.routing_key.startswith("v03.")
    for out in (v2, v3):
        n = sf.decoded(out)
        assert (n.baseurl, n.headers["source"], n.headers["from_cluster"]) == (
            "http://a.example/", "alice", "A",
        )  # fmt: skip
        assert (tmp_path / "tree" / n.relpath).read_bytes() == sf.DATA
    [rep] = [o for o in b.published if o.exchange == "xreport"]
    assert json.loads(rep.body)["report"]["code"] == 201  # in the format of the post
    assert len(b.acked) == 1


def test_a_v03_only_switch_takes_names_v02_could_not_announce(tmp_path):
    from tests.unit import test_sara_flow as sf

    for fmt, code in (("v03", None), ("v02,v03", 417)):
        top = tmp_path / fmt
        top.mkdir()
        b, flow = sf.setup(top, f"post_format {fmt}\n", {"tree/a%20b": sf.DATA})
        headers = {"sum": "d," + hashlib.md5(sf.DATA).hexdigest(), "parts": "1,14,1,0,0"}
        n = message.new_post("http://src.example/", "tree/a%20b", headers, v02=False)
        enc = message.encode(n, "v03")
        b.put_raw(enc.topic, {}, enc.body, exchange="xs_alice")
        flow.run_once()
        reports = [json.loads(o.body)["report"]["code"] for o in b.published
                   if o.exchange == "xreport"]  # fmt: skip
        assert reports == [code or 201]


def test_v03_posts_go_out_as_application_json_which_sr3_tells_them_by() -> None:
    broker = FakeBroker()
    NoticePublisher(broker, "x", formats=message.post_formats(("v02", "v03"))).publish([ok(post())])
    assert [o.content_type for o in broker.published] == ["text/plain", "application/json"]
