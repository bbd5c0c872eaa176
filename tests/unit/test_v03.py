"""The v03 codec (sarra.core.v03, v03fields) and the format choice of sarra.core.message:
golden messages captured from metpx-sr3 3.3.1, each row of the mapping table of
doc/v03.rst in both directions, v02 <-> v03 conversions, hostile bodies."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sarra.core import message, v03
from sarra.core.errors import MessageError
from sarra.core.message import Notice, Report, decode, encode, encode_local, make_report
from tests.fixtures import golden
from tests.fixtures.golden_v03 import GOLDEN, MAN_PAGE_ANOTHER, MAN_PAGE_EXAMPLE, V03Golden

HEAD = '{"pubTime": "20240102T030405.5", "relPath": "d/f.txt", "baseUrl": "http://h/"'
N_F = "n," + hashlib.md5(b"f.txt").hexdigest()  # the sum of a post without identity
MD5 = hashlib.md5(b"x").digest()
SHA = hashlib.sha512(b"x").digest()
MD5_SUM = "d," + MD5.hex()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def sha512(text: str) -> str:
    return hashlib.sha512(text.encode()).hexdigest()


def body(fields: str = "") -> bytes:
    return (HEAD + (", " + fields if fields else "") + "}").encode()


# --------------------------------------------------------------------------- golden


@pytest.mark.parametrize("g", GOLDEN, ids=[g.name for g in GOLDEN])
def test_decoding_an_sr3_message_gives_the_mapped_notice(g: V03Golden) -> None:
    n = decode(g.topic, {}, g.body.encode())
    assert (n.kind, n.pubtime, n.baseurl, n.relpath, n.topic) == (
        "post", g.pubtime, g.baseurl, g.relpath, g.topic,
    )  # fmt: skip
    assert list(n.headers.items()) == list(g.headers.items())
    assert dict(n.extra) == g.extra


@pytest.mark.parametrize("g", GOLDEN, ids=[g.name for g in GOLDEN])
def test_encoding_a_decoded_sr3_message_gives_its_bytes_back(g: V03Golden) -> None:
    enc = encode(decode(g.topic, {}, g.body.encode()), "v03")
    assert enc.body == g.body.encode()
    assert enc.topic == g.topic
    assert (enc.headers, enc.content_type, enc.delivery_mode) == ({}, "application/json", 2)


@pytest.mark.parametrize("g", [g for g in GOLDEN if g.data is not None], ids=lambda g: g.name)
def test_the_sum_of_a_golden_message_is_the_checksum_of_its_file(g: V03Golden) -> None:
    method, value = g.headers["sum"].split(",")
    algo = {"d": hashlib.md5, "s": hashlib.sha512}[method]
    assert value == algo(g.data).hexdigest()
    assert g.headers["parts"] == f"1,{len(g.data)},1,0,0"
    if "content" in g.extra:
        content = json.loads(g.extra["content"])
        raw = content["value"].encode()
        assert (base64.b64decode(raw) if content["encoding"] == "base64" else raw) == g.data


def test_the_sr_post_7_example_as_printed_is_refused_for_its_12_digit_pubtime() -> None:
    with pytest.raises(MessageError, match="pubTime.*14 digits"):
        decode(MAN_PAGE_EXAMPLE[0], {}, MAN_PAGE_EXAMPLE[1].encode())


def test_the_sr_post_7_example_completed_decodes_its_v2_parts_and_rename() -> None:
    topic, text = MAN_PAGE_EXAMPLE
    text = text.replace("201506011357.345", "20150601T135700.345")
    text = text.replace("<md5sum-base64>", b64(MD5))
    n = decode(topic, {}, text.encode())
    assert n.relpath == "/data/NRPDS/outputs/NRDPS_HiRes_000.gif"
    assert n.headers == {"rename": "NRDPS/GIF/", "parts": "p,457,1,0,0",
                         "sum": "d," + MD5.hex(), "source": "ec_cmc"}  # fmt: skip
    enc = json.loads(encode(n, "v03").body)
    blocks = {"method": "partitioned", "size": 457, "count": 1, "remainder": 0, "number": 0}
    assert enc["blocks"] == blocks and "parts" not in enc  # sr3 normalises parts alike


def test_the_sr_post_7_other_example_keeps_its_v2_sum_and_parts() -> None:
    n = decode(MAN_PAGE_ANOTHER[0], {}, MAN_PAGE_ANOTHER[1].encode())
    assert n.pubtime == "20150813161959.854"
    assert n.headers == {"parts": "1,256,1,0,0", "sum": "d,25d231ec0ae3c569ba27ab7a74dd72ce",
                         "source": "guest"}  # fmt: skip
    enc = json.loads(encode(n, "v03").body)
    assert enc["size"] == 256
    assert enc["identity"] == {"method": "md5", "value": b64(bytes.fromhex(n.headers["sum"][2:]))}


# --------------------------------------------------------------------------- the table

#: one row of doc/v03.rst each: v03 fields (after pubTime, relPath, baseUrl) -> headers,
#: extras; encoding the notice gives the same bytes back
ROWS = [
    (f'"identity": {{"method": "md5", "value": "{b64(MD5)}"}}', {"sum": "d," + MD5.hex()}, {}),
    (f'"identity": {{"method": "sha512", "value": "{b64(SHA)}"}}', {"sum": "s," + SHA.hex()}, {}),
    ('"identity": {"method": "random", "value": "5765"}', {"sum": "0,5765"}, {}),
    ('"identity": {"method": "arbitrary", "value": "v1.2"}', {"sum": "a,v1.2"}, {}),
    ('"identity": {"method": "cod", "value": "md5"}', {"sum": "z,d"}, {}),
    ('"identity": {"method": "cod", "value": "sha512"}', {"sum": "z,s"}, {}),
    ('"identity": {"method": "sha256", "value": "q83v"}', {"sum": N_F},
     {"identity": '{"method": "sha256", "value": "q83v"}'}),
    ('"size": 0', {"parts": "1,0,1,0,0", "sum": N_F}, {}),
    ('"blocks": {"method": "inplace", "size": 1000, "count": 3, "remainder": 500, "number": 2}, '
     '"size": 1000', {"parts": "i,1000,3,500,2", "sum": N_F}, {"size": "1000"}),
    ('"blocks": {"method": "partitioned", "size": 10, "count": 2, "remainder": 0, "number": 1}',
     {"parts": "p,10,2,0,1", "sum": N_F}, {}),
    ('"blocks": {"method": "inplace", "size": 10, "number": -1, "manifest": {}}', {"sum": N_F},
     {"blocks": '{"method": "inplace", "size": 10, "number": -1, "manifest": {}}'}),
    ('"fileOp": {"link": "../a b"}', {"sum": "L," + sha512("../a b"), "link": "../a b"}, {}),
    ('"fileOp": {"hlink": "d/g.txt"}', {"sum": "l," + sha512("d/g.txt"), "link": "d/g.txt"}, {}),
    ('"fileOp": {"remove": ""}', {"sum": "R," + sha512("f.txt")}, {}),
    ('"fileOp": {"directory": ""}', {"sum": "m," + sha512("f.txt")}, {}),
    ('"fileOp": {"remove": "", "directory": ""}', {"sum": "r," + sha512("f.txt")}, {}),
    (f'"identity": {{"method": "md5", "value": "{b64(MD5)}"}}, "fileOp": {{"rename": "d/old.txt"}}',
     {"sum": "d," + MD5.hex(), "oldname": "d/old.txt"}, {}),
    ('"fileOp": {"rename": "d/old", "link": "t"}',
     {"oldname": "d/old", "sum": "L," + sha512("t"), "link": "t"}, {}),
    ('"fileOp": {"remove": "", "future": [1]}', {"sum": "R," + sha512("f.txt")},
     {"fileOp": '{"future": [1]}'}),
    ('"newname": "d/new.txt", "fileOp": {"remove": ""}',
     {"newname": "d/new.txt", "sum": "R," + sha512("f.txt")}, {}),
    ('"mtime": "20240102T030405.5", "atime": "20261208T000446.554091692", "mode": "644"',
     {"mtime": "20240102030405.5", "atime": "20261208000446.554091692", "mode": "644",
      "sum": N_F}, {}),
    ('"source": "alice", "from_cluster": "A", "to_clusters": "B,C", "rename": "x/"',
     {"source": "alice", "from_cluster": "A", "to_clusters": "B,C", "rename": "x/", "sum": N_F},
     {}),
    ('"contentType": "text/plain", "content": {"encoding": "utf-8", "value": "hi\\n"}',
     {"contentType": "text/plain", "sum": N_F},
     {"content": '{"encoding": "utf-8", "value": "hi\\n"}'}),
    ('"geometry": {"type": "Point", "coordinates": [-75.7, 45.4]}, "x": null, "n": 1.5',
     {"sum": N_F},
     {"geometry": '{"type": "Point", "coordinates": [-75.7, 45.4]}', "x": "null", "n": "1.5"}),
]  # fmt: skip


@pytest.mark.parametrize("fields, headers, extra", ROWS, ids=[r[0][:40] for r in ROWS])
def test_each_v03_field_maps_to_its_v02_header_and_back(fields, headers, extra) -> None:
    n = decode("v03.d", {}, body(fields))
    assert dict(n.headers) == headers
    assert dict(n.extra) == extra
    assert encode(n, "v03").body == body(fields)


def test_a_v03_report_is_a_report_notice_whatever_its_topic() -> None:
    fields = (
        '"report": {"code": 201, "timeCompleted": "20261208T001018.5", "message": "Downloaded"}'
    )
    n = decode("v03.d", {}, body(fields))
    assert n.kind == "report" and n.message == "Downloaded"
    assert (n.report.code, n.report.completed) == (201, "20261208001018.5")
    assert (n.report.host, n.report.user, n.report.elapsed) == ("", "", "")
    assert encode(n, "v03").body == body(fields)


def test_our_v03_report_names_host_user_and_elapsed_time_too() -> None:
    post = decode("v03.d", {}, body('"size": 3'))
    rep = make_report(post, 201, "Downloaded", "h.example", "bob", 0.25)
    enc = encode(rep, "v03")
    assert enc.topic == "v03.report.d"
    got = json.loads(enc.body)["report"]
    assert {k: got[k] for k in ("code", "message", "host", "user", "elapsedTime")} == {
        "code": 201, "message": "Downloaded", "host": "h.example", "user": "bob",
        "elapsedTime": "0.250000",
    }  # fmt: skip
    assert got["timeCompleted"][8] == "T"
    back = decode(enc.topic, {}, enc.body)
    assert back.report == rep.report and back.message == "Downloaded"


# --------------------------------------------------------------------------- formats


def test_the_body_chooses_the_codec_whatever_the_topic_says() -> None:
    assert message.format_of(b'  {"a": 1}') == "v03"
    assert message.format_of("20240102030405.5 http://h/ x") == "v02"
    n = decode("v02.post.d", {}, body('"size": 3'))  # sr3 with topicPrefix v02.post
    assert n.headers["parts"] == "1,3,1,0,0" and n.topic == "v02.post.d"


@pytest.mark.parametrize(
    "fmt, prefix, want",
    [("v03", None, "v03.data.small"), ("v03", "v03.post", "v03.post.data.small"),
     ("v03", "v02.post", "v03.data.small"), ("v02", None, "v02.post.data.small")],
)  # fmt: skip
def test_a_notice_of_another_version_gets_the_topic_of_the_format_asked_for(fmt, prefix, want):
    g = GOLDEN[0]
    v3 = decode(g.topic, {}, g.body.encode())
    v2 = decode("v02.post.data.small", {}, encode(v3.relayable(), "v02").body)
    for n in (v3, v2):
        got = encode(n.relayable() if fmt == "v02" else n, fmt, topic_prefix=prefix).topic
        assert got == (n.topic if n.topic.startswith(fmt) else want)


V02_POSTS = [g for g in golden.GOLDEN if not g.refused_header]


@pytest.mark.parametrize("g", V02_POSTS, ids=[g.name for g in V02_POSTS])
def test_every_v02_golden_message_survives_a_trip_through_v03(g) -> None:
    n = decode(g.topic, g.headers, g.body.encode("utf-8"))
    if n.headers.get("sum", "").startswith("L") and "link" not in n.headers:
        with pytest.raises(MessageError, match="without its link"):  # sr3's v02 defect (8.2)
            encode(n, "v03")
        return
    back = decode("v03.x", {}, encode(n, "v03").body)
    assert (back.kind, back.pubtime, back.baseurl, back.relpath) == (
        n.kind, n.pubtime, n.baseurl, n.relpath,
    )  # fmt: skip
    name = n.relpath.rstrip("/").rsplit("/", 1)[-1].encode()
    assert dict(back.headers) == {"sum": "n," + hashlib.md5(name).hexdigest(), **n.headers}
    assert back.report == n.report


@pytest.mark.parametrize("g", GOLDEN, ids=[g.name for g in GOLDEN])
def test_every_v03_golden_message_survives_a_trip_through_v02_less_what_v02_cannot_say(g):
    n = decode(g.topic, {}, g.body.encode())
    back = decode("v02.post.x", {}, encode(n.relayable(), "v02").body)
    v2 = encode(n.relayable(), "v02")
    back = decode(v2.topic, v2.headers, v2.body)
    assert (back.pubtime, back.baseurl, back.relpath) == (n.pubtime, n.baseurl, n.relpath)
    assert dict(back.headers) == dict(n.headers) and not back.extra


def test_relaying_to_v02_says_each_field_it_leaves_out_once(caplog) -> None:
    n = decode("v03.d", {}, body('"contentType": "a/b", "content": {"value": "x"}'))
    with caplog.at_level("INFO", logger="sarra.core.notice"):
        for _ in range(3):
            out = n.relayable()
    said = [r.getMessage() for r in caplog.records if "v02 cannot carry" in r.getMessage()]
    assert "contentType" not in out.headers and not out.extra
    assert len([s for s in said if "'content'" in s]) <= 1
    assert len([s for s in said if "'contentType'" in s]) <= 1
    with pytest.raises(MessageError, match="no v02 form"):
        encode(n.replace(headers={"sum": N_F}), "v02")


# --------------------------------------------------------------------------- encode rules


def _notice(relpath: str = "d/f.txt", **headers: str) -> Notice:
    return Notice("post", "20240102030405.5", "http://h/", relpath, headers or {"sum": N_F})


@pytest.mark.parametrize(
    "headers, text",
    [({"sum": "q,abc"}, "no v03 identity"), ({"sum": "d,xyz"}, "md5 in hex"),
     ({"sum": "L,abc"}, "without its link"), ({"sum": MD5_SUM, "parts": "1,3"}, "5 fields"),
     ({"sum": MD5_SUM, "parts": "x,1,1,0,0"}, "method 'x'"), ({"sum": ""}, "empty"),
     ({"sum": N_F, "relPath": "/etc/passwd"}, "v03's own"), ({"sum": N_F, "size": "9"}, "own")],
)  # fmt: skip
def test_encode_refuses_headers_v03_cannot_say(headers, text) -> None:
    with pytest.raises(MessageError, match=text):
        encode(_notice(**headers), "v03")


@pytest.mark.parametrize("headers", [{"sum": "q,abc"}, {"sum": "d,xyz", "parts": "1,3"}])
def test_local_storage_keeps_what_the_wire_refuses(headers) -> None:
    n = _notice("d/a\nb", **headers).replace(topic="v03.d")
    enc = encode_local(n)
    assert enc.content_type == "application/json"
    assert decode(enc.topic, enc.headers, enc.body) == n


def test_local_storage_of_a_v02_notice_stays_v02() -> None:
    n = _notice(**{"sum": "d," + MD5.hex(), "identity": "kept"}).replace(topic="v02.post.d")
    enc = encode_local(n)
    assert enc.content_type == "text/plain"
    assert decode(enc.topic, enc.headers, enc.body) == n


def test_encode_refuses_a_control_character_on_the_wire_but_json_carries_percent_20() -> None:
    with pytest.raises(MessageError, match="control character"):
        encode(_notice("d/a\x1bb"), "v03")
    enc = encode(_notice("d/a%20b #"), "v03")
    assert decode(enc.topic, {}, enc.body).relpath == "d/a%20b #"


# --------------------------------------------------------------------------- hostile

HOSTILE = [
    (b'{"relPath": "\xff"}', "not UTF-8"),
    (b"{", "not JSON"),
    (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "not JSON"),
    (body('"size": NaN'), "not JSON"),
    (b'{"a": "' + b"x" * v03.MAX_BODY_BYTES + b'"}', "over"),
    (b"{}", "pubTime missing"),
    (b'{"pubTime": 20240102030405, "relPath": "a", "baseUrl": "h"}', "pubTime missing"),
    (b'{"pubTime": "2024", "relPath": "a", "baseUrl": "h"}', "14 digits"),
    (b'{"pubTime": "20240102T030405", "relPath": "", "baseUrl": "h"}', "relPath missing, empty"),
    (b'{"pubTime": "20240102T030405", "relPath": ["a"], "baseUrl": "h"}', "not text"),
    (b'{"pubTime": "20240102T030405", "relPath": "' + b"a" * 4097 + b'", "baseUrl": "h"}', "over"),
    (b'{"pubTime": "20240102T030405", "relPath": "a", "baseUrl": "' + b"h" * 4097 + b'"}', "over"),
    (body('"x": "\\ud800"'), "lone surrogate"),
    (body('"x": {"y": ["\\udfff"]}'), "lone surrogate"),
    (body('"\\ud800": 1'), "lone surrogate"),
    (body('"%s": 1' % ("k" * 256)), "field name over"),
    (body('"identity": "md5"'), "identity is not an object"),
    (body('"identity": {"method": "md5", "value": "!!"}'), "not base64"),
    (body(f'"identity": {{"method": "md5", "value": "{b64(SHA)}"}}'), "64 bytes, not 16"),
    (body('"identity": {"method": "sha512", "value": 7}'), "not text"),
    (body('"fileOp": "remove"'), "fileOp is not an object"),
    (body('"fileOp": {"link": 7}'), "fileOp link is not text"),
    (body('"size": -1'), "size"),
    (body('"size": true'), "size"),
    (body('"size": 1.5'), "size"),
    (body('"size": ' + "9" * 30), "size"),
    (body('"size": ' + "9" * 5000), "not JSON"),
    (body('"report": 201'), "report is not an object"),
    (body('"report": {"code": "abc"}'), "3-digit"),
    (body('"report": {"code": 1000}'), "3-digit"),
    (body('"report": {"code": true}'), "3-digit"),
    (body('"report": {"code": 201, "message": 5}'), "not text"),
]


@pytest.mark.parametrize("raw, text", HOSTILE, ids=[f"{i}:{t}" for i, (_, t) in enumerate(HOSTILE)])
def test_hostile_v03_bodies_raise_message_error_naming_the_fault(raw, text) -> None:
    with pytest.raises(MessageError, match=text):
        decode("v03.x", {}, raw)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
KNOWN = ["identity", "integrity", "fileOp", "size", "blocks", "report", "mtime", "sum", "parts",
         "content", "link", "oldname", "message", "source"]  # fmt: skip
FIELD_VALUES = {
    "identity": st.fixed_dictionaries({"method": st.sampled_from(["md5", "sha512", "random",
        "cod", "md5name", "x"]), "value": st.sampled_from([b64(MD5), b64(SHA), "md5", "1"])}),
    "fileOp": st.dictionaries(st.sampled_from(["link", "hlink", "remove", "directory", "rename",
        "z"]), st.text(max_size=5), max_size=3),
    "blocks": st.fixed_dictionaries({k: st.integers(-1, 5) for k in ("size", "count",
        "remainder", "number")}, optional={"method": st.sampled_from(["inplace", "partitioned"])}),
    "report": st.fixed_dictionaries({"code": st.integers(100, 999)},
        optional={"message": st.text(max_size=5), "timeCompleted": st.just("20240102T030405")}),
    "size": st.integers(0, 10**6),
}  # fmt: skip
fields = st.dictionaries(
    st.one_of(st.sampled_from(KNOWN), st.text(max_size=6)),
    st.one_of(JSON, *FIELD_VALUES.values()),
    max_size=6,
)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(extra=fields, rel=st.text(min_size=1, max_size=12))
def test_any_json_object_decodes_or_raises_message_error_and_round_trips_locally(extra, rel):
    obj = {"pubTime": "20240102T030405.25", "relPath": rel, "baseUrl": "http://h/", **extra}
    raw = json.dumps(obj).encode()
    try:
        n = decode("v03.x", {}, raw)
    except MessageError:
        return
    assert decode("v03.x", {}, encode(n, "v03", strict=False).body) == n
    stored = encode_local(n)
    assert decode(stored.topic, stored.headers, stored.body) == n


def test_a_report_as_decoded_equals_itself_through_v03() -> None:
    rep = Report(201, "h", "u", "0.1", "20240102030405")
    n = Notice("report", "20240102030405", "http://h/", "d/f.txt", {"sum": N_F, "message": "ok"},
               "v03.report", rep)  # fmt: skip
    assert decode("v03.report", {}, encode(n, "v03").body) == n
