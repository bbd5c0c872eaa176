"""Unit and property tests of the v02 codec (sarra.core.message, sarra.core.timestamps)."""

from __future__ import annotations

import dataclasses
import logging
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sarra.core import v02
from sarra.core.errors import MessageError, PathError
from sarra.core.message import (
    IgnoredMessage,
    Notice,
    NotV02,
    Report,
    check_name,
    decode,
    decode_path,
    encode,
    encode_path,
    format_time,
    format_time_ns,
    make_report,
    new_post,
    parse_time,
    post_topic,
    report_topic,
    split_sum,
)
from sarra.core.timestamps import TimeFormatError

HTTP = "http://localhost:8090/"
BODY = "20240102030405.500 http://localhost:8090/ data/small/hello.txt"
T0 = 1704164645.0  # 2024-01-02 03:04:05 UTC


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    "t, text",
    [
        (T0 + 0.5, "20240102030405.500"),
        (T0, "20240102030405.000"),
        (T0 + 0.179, "20240102030405.179"),
        (T0 + 0.9999, "20240102030405.999"),
        (T0 + 0.0019, "20240102030405.001"),
    ],
)
def test_format_time_writes_three_truncated_millisecond_digits(t: float, text: str) -> None:
    assert format_time(t) == text


def test_format_time_ns_writes_nine_fraction_digits() -> None:
    assert format_time_ns(1704164645_500000000) == "20240102030405.500000000"
    assert format_time_ns(1704164645_000000007) == "20240102030405.000000007"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("20240102030405", T0),
        ("20240102030405.5", T0 + 0.5),
        ("20240102030405.500", T0 + 0.5),
        ("20240102030405.257513523", T0 + 0.257513523),
        ("20240102030405.0614514351", T0 + 0.0614514351),
        ("20240102030405.23977661e-05", T0 + 2.3977661e-06),
        ("20240102T030405.5", T0 + 0.5),
        ("20240102030405.", T0),
    ],
)
def test_parse_time_accepts_every_wire_variant(text: str, expected: float) -> None:
    assert parse_time(text) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "text",
    ["", "2024010203040", "2024-01-02 03:04:05", "20241302030405", "20240102030405,5",
     "20240102030405.5x", "20240102030405.5e3", "２０２４01020304056", "20240102030405 "],
)  # fmt: skip
def test_parse_time_rejects_malformed_timestamps(text: str) -> None:
    with pytest.raises(TimeFormatError, match="bad timestamp"):
        parse_time(text)
    assert issubclass(TimeFormatError, ValueError) and issubclass(TimeFormatError, MessageError)


@given(st.integers(min_value=0, max_value=4_000_000_000_000_000_000))
def test_format_time_ns_round_trips_through_parse_time(ns: int) -> None:
    assert parse_time(format_time_ns(ns)) == pytest.approx(ns / 1e9, abs=1e-6)


# --------------------------------------------------------------------------- paths, sum


def test_encode_path_escapes_only_space_and_hash() -> None:
    assert encode_path("a b#c%d?e&f+é*") == "a%20b%23c%d?e&f+é*"
    assert decode_path("a%20b%23c%25d%41") == "a b#c%25d%41"


@pytest.mark.parametrize("name", ["a%20b", "x/%23y", "tab\there", "nl\n", "del\x7f", "", "\udcff"])
def test_check_name_refuses_names_v02_cannot_carry(name: str) -> None:
    with pytest.raises(PathError):
        check_name(name)


def test_new_post_refuses_a_literal_percent_20_with_a_message_naming_the_file() -> None:
    with pytest.raises(PathError, match=r"a%20b\.txt.*literal '%20'"):
        new_post(HTTP, "data/a%20b.txt", {})


@pytest.mark.parametrize(
    "value, expected",
    [("d,abc", ("d", "abc")), ("n", ("n", "")), ("0", ("0", "")), ("z,d", ("z", "d")),
     ("0,0123", ("0", "0123")), ("R,0", ("R", "0"))],
)  # fmt: skip
def test_split_sum_accepts_bare_methods(value: str, expected: tuple[str, str]) -> None:
    assert split_sum(value) == expected


def test_split_sum_rejects_an_empty_method() -> None:
    with pytest.raises(MessageError, match="bad sum"):
        split_sum(",abc")


# --------------------------------------------------------------------------- topics


def test_post_topic_ignores_empty_components_and_uses_prefix() -> None:
    assert post_topic("/data//x/y.txt") == "v02.post.data.x"
    assert post_topic("data/x/", prefix="v02.post.mine") == "v02.post.mine.data"


def test_post_topic_cuts_on_a_character_boundary_and_warns(caplog) -> None:
    path = "d/" + "€" * 300 + "/f.txt"
    with caplog.at_level(logging.WARNING, logger="sarra.core.notice"):
        topic = post_topic(path)
    raw = topic.encode("utf-8")
    assert len(raw) <= 253 and len(raw) >= 251
    assert topic == ("v02.post.d." + "€" * 300)[: len(topic)]
    assert "too long" in caplog.text


def test_report_topic_changes_only_the_type_word() -> None:
    assert report_topic("v02.post.data.small") == "v02.report.data.small"
    assert report_topic("v02.post") == "v02.report"
    assert report_topic("v02.post.data.odd dir") == "v02.report.data.odd%20dir"


def test_report_topic_refuses_a_topic_of_no_known_version() -> None:
    with pytest.raises(MessageError, match="not a v02 topic"):
        report_topic("v04.post.data")


def test_report_topic_of_a_v03_topic_puts_report_after_v03() -> None:
    assert report_topic("v03.data.small") == "v03.report.data.small"
    assert report_topic("v03.post.data") == "v03.report.data"
    assert report_topic("v03") == "v03.report"
    assert report_topic("v03.data.odd dir#1") == "v03.report.data.odd dir%231"


# --------------------------------------------------------------------------- Notice


def _notice(**headers: str) -> Notice:
    return decode("v02.post.data.small", headers, BODY)


def test_notice_is_immutable() -> None:
    notice = _notice(sum="d,x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        notice.relpath = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        notice.headers["sum"] = "x"  # type: ignore[index]


def test_with_headers_adds_replaces_and_deletes_without_touching_the_original() -> None:
    notice = _notice(sum="d,x", mode="644")
    changed = notice.with_headers({"x-site": "1"}, mode=None, sum="s,y")
    assert dict(changed.headers) == {"sum": "s,y", "x-site": "1"}
    assert dict(notice.headers) == {"sum": "d,x", "mode": "644"}
    assert notice.replace(baseurl="sftp://u@h/").baseurl == "sftp://u@h/"


def test_notice_properties_read_sum_and_message() -> None:
    assert _notice(sum="R,abc").is_removal and not _notice(sum="R,abc").is_link
    assert _notice(sum="L,abc").is_link
    assert _notice(sum="n").sum_method == "n"
    assert _notice().sum_method is None and _notice().message is None


@pytest.mark.parametrize(
    "base, rel, url",
    [(HTTP, "/data/x", "http://localhost:8090/data/x"), (HTTP, "data/x", "http://localhost:8090/data/x"),
     ("http://h/p", "d/x", "http://h/p/d/x"), ("file:", "/abs/p", "file:/abs/p")],
)  # fmt: skip
def test_url_joins_with_exactly_one_slash(base: str, rel: str, url: str) -> None:
    notice = Notice("post", "20240102030405.500", base, rel, {}, "v02.post")
    assert notice.url == url


def test_notice_refuses_non_string_header_values() -> None:
    with pytest.raises(TypeError, match="mode"):
        Notice("post", "20240102030405.500", HTTP, "x", {"mode": 644}, "v02.post")  # type: ignore[dict-item]


# --------------------------------------------------------------------------- decode


def test_decode_strips_one_trailing_newline_and_ignores_extra_post_fields() -> None:
    assert decode("v02.post", {}, BODY + "\n").relpath == "data/small/hello.txt"
    assert decode("v02.post", {}, BODY + "\r\n").relpath == "data/small/hello.txt"
    assert decode("v02.post", {}, BODY + " extra field\nrest").relpath == "data/small/hello.txt"


def test_decode_converts_header_values_to_text() -> None:
    headers = {"sum": b"d,abc", "n": 5, "flag": True, "t": {"a": 1}, b"bk": "v", "void": None}
    notice = decode(b"v02.post.data", headers, BODY.encode())
    assert dict(notice.headers) == {
        "sum": "d,abc", "n": "5", "flag": "True", "t": '{"a": 1}', "bk": "v", "void": ""
    }  # fmt: skip
    assert notice.topic == "v02.post.data"
    assert decode("v02.post", None, BODY).headers == {}


def test_decode_reads_v02_log_as_a_report() -> None:
    notice = decode("v02.log.data", {"message": "Downloaded"}, BODY + " 201 h u -0.648599")
    assert notice.kind == "report" and notice.report == Report(201, "h", "u", "-0.648599")


def test_decode_treats_a_v2_report_on_a_post_topic_as_a_report() -> None:
    notice = decode("v02.post", {"message": "removed"}, BODY + " 201 h u 0.1")
    assert notice.kind == "report" and notice.report is not None
    assert encode(notice).topic == "v02.report"


def test_decode_keeps_report_relpath_with_raw_spaces_from_both_ends() -> None:
    body = "20240102030405.5 http://h/ /a  b/c #1.txt 499 h.example u 0.5"
    notice = decode("v02.report.a", {"message": "x"}, body)
    assert notice.relpath == "/a  b/c #1.txt"
    assert notice.report == Report(499, "h.example", "u", "0.5")


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "topic, body, error, text",
    [
        ("v02.post", b"\xff\xfe 2024 x", MessageError, r"not UTF-8.*\\xff"),
        ("v02.post", "20240102030405.5 http://h/", MessageError, "2 fields, needs at least 3"),
        ("v02.post", "", MessageError, "1 fields"),
        ("v02.post", "2024-01-02 http://h/ x", MessageError, "bad pubtime.*2024-01-02"),
        ("v02.post", "20240102030405.5  x", MessageError, "empty baseurl"),
        ("v02.pulse.tick", "20240102030405.5", IgnoredMessage, "not handled"),
        ("v02.post", '{"pubTime": "x"}', MessageError, "v03 relPath missing"),
        ("v02.post", '["x"]', NotV02, "v03/JSON"),
        ("v03.post.x", BODY, NotV02, "not a v02 topic"),
        ("v02.report.x", BODY + " 201 h", MessageError, "5 fields, needs 7"),
        ("v02.report.x", BODY + " 2x1 h u 0.1", MessageError, "'2x1' is not 3 digits"),
    ],
)
def test_malformed_messages_raise_message_error_with_a_clear_text(topic, body, error, text) -> None:
    with pytest.raises(error, match=text):
        decode(topic, {}, body)


def test_the_v02_codec_alone_hands_a_json_body_back_as_not_v02() -> None:
    with pytest.raises(NotV02, match="v03/JSON.*pubTime"):
        v02.decode("v02.post", {}, '{"pubTime": "x"}')


def test_non_utf8_header_value_raises_naming_the_header() -> None:
    with pytest.raises(MessageError, match="header 'link' is not valid UTF-8"):
        decode("v02.post", {"link": b"\xff"}, BODY)


def test_excerpt_of_a_long_bad_body_is_short() -> None:
    with pytest.raises(MessageError) as info:
        decode("v02.post", {}, "x" * 5000)
    assert len(str(info.value)) < 200


# --------------------------------------------------------------------------- encode


def test_encode_refuses_a_header_of_253_bytes_naming_it() -> None:
    ok = _notice(link="é" * 126)  # 252 bytes
    assert encode(ok).headers["link"] == "é" * 126
    with pytest.raises(MessageError, match="header 'link' is 254 bytes"):
        encode(_notice(link="é" * 127))
    with pytest.raises(MessageError, match="header 'rename' is 253 bytes"):
        encode(_notice(rename="x" * 253))


@pytest.mark.parametrize("name", ["flow", "filename", "event", "identity", "pubTime", "content"])
def test_encode_refuses_v03_and_legacy_headers_and_relayable_drops_them(name: str) -> None:
    notice = _notice(sum="d,x", **{name: "v"})
    with pytest.raises(MessageError, match=f"'{name}'"):
        encode(notice)
    assert encode(notice.relayable()).headers == {"sum": "d,x"}


@pytest.mark.parametrize(
    "change, text",
    [({"relpath": "a\nb"}, "control character"), ({"baseurl": "http://h/ x"}, "baseurl"),
     ({"pubtime": "yesterday"}, "bad timestamp"), ({"topic": "v02.report.x"}, "post on topic")],
)  # fmt: skip
def test_encode_refuses_fields_that_would_corrupt_the_body(change, text) -> None:
    with pytest.raises(MessageError, match=text):
        encode(_notice().replace(**change))


def test_encode_keeps_sr3_percent_22_and_escapes_raw_spaces_in_a_received_topic() -> None:
    notice = decode("v02.post.st%22r.odd dir", {}, BODY)
    assert notice.topic == "v02.post.st%22r.odd dir"
    assert encode(notice).topic == "v02.post.st%22r.odd%20dir"


def test_encode_cuts_a_received_255_byte_topic_to_253() -> None:
    notice = _notice().replace(topic="v02.post." + "a" * 246)
    assert len(encode(notice).topic) == 253


def test_encode_writes_the_report_code_as_three_digits() -> None:
    notice = _notice().replace(kind="report", topic="v02.report", report=Report(5, "h", "u", "1"))
    assert encode(notice).body.endswith(b" 005 h u 1")


# --------------------------------------------------------------------------- producers


def test_new_post_defaults_pubtime_to_now_in_pubtime_form() -> None:
    notice = new_post(HTTP, "data/x y/f.txt", {"sum": "d,x"})
    assert re.fullmatch(r"\d{14}\.\d{3}", notice.pubtime)
    assert notice.topic == "v02.post.data.x%20y" and notice.kind == "post"


def test_make_report_copies_headers_adds_message_and_formats_elapsed() -> None:
    post = _notice(sum="d,x", filename="hello.txt")
    report = make_report(post, 201, "Downloaded", "h.example", "u", 0.0034494)
    assert dict(report.headers) == {"sum": "d,x", "message": "Downloaded"}
    assert report.report == Report(201, "h.example", "u", "0.003449")
    assert report.topic == "v02.report.data.small" and report.pubtime == post.pubtime
    assert dict(post.headers) == {"sum": "d,x", "filename": "hello.txt"}


def test_make_report_refuses_reports_and_bad_codes() -> None:
    post = _notice()
    report = make_report(post, 201, "ok", "h", "u", 0.1)
    with pytest.raises(MessageError, match="needs a post"):
        make_report(report, 201, "ok", "h", "u", 0.1)
    with pytest.raises(MessageError, match="3-digit"):
        make_report(post, 2010, "ok", "h", "u", 0.1)


# --------------------------------------------------------------------------- properties

_SPECIAL = st.sampled_from([" ", "#", "*", ".", "..", "%", "%2", "%4", "é", "€", "😀", "?", "&"])
_CHARS = st.characters(
    blacklist_categories=("Cs",),
    blacklist_characters=[chr(c) for c in range(0x20)] + ["\x7f", "/"],
)
_PIECE = st.one_of(_CHARS, _SPECIAL)
_SHORT = st.lists(_PIECE, min_size=1, max_size=12).map("".join)
_COMPONENT = st.one_of(_SHORT, _SHORT, st.text(_CHARS, min_size=150, max_size=260))
_RELPATH = st.builds(
    lambda lead, parts: ("/" if lead else "") + "/".join(parts),
    st.booleans(),
    st.lists(_COMPONENT, min_size=1, max_size=6),
).filter(lambda p: "%20" not in p and "%23" not in p)


@settings(max_examples=200, deadline=None)
@given(_RELPATH)
def test_any_carriable_relpath_round_trips_through_encode_and_decode(relpath: str) -> None:
    post = new_post(HTTP, relpath, {"sum": "d,x"}, pubtime="20240102030405.500")
    encoded = encode(post)
    back = decode(encoded.topic, encoded.headers, encoded.body)
    assert (back.relpath, back.baseurl, back.kind) == (relpath, HTTP, "post")
    assert dict(back.headers) == {"sum": "d,x"}
    report = encode(make_report(back, 201, "Downloaded", "h", "u", 0.5))
    assert decode(report.topic, report.headers, report.body).relpath == relpath


@settings(max_examples=200, deadline=None)
@given(_RELPATH)
def test_topic_is_short_valid_utf8_and_built_from_directories_only(relpath: str) -> None:
    topic = encode(new_post(HTTP, relpath, {}, pubtime="20240102030405.500")).topic
    raw = topic.encode("utf-8")
    assert len(raw) <= 253
    assert raw.decode("utf-8") == topic
    assert " " not in topic and "#" not in topic
    dirs = [p for p in relpath.split("/") if p][:-1]
    full = encode_path(".".join(["v02.post", *dirs]))
    assert full.startswith(topic) and (topic == full or len(raw) > 249)


@settings(deadline=None)
@given(_RELPATH, _SHORT, _SHORT)
def test_topic_never_depends_on_the_file_name(relpath: str, name1: str, name2: str) -> None:
    directory = relpath.rstrip("/")
    assert post_topic(f"{directory}/{name1}") == post_topic(f"{directory}/{name2}")
