"""Golden tests: every example of spec section 11 and the 2.6 capture, both directions."""

from __future__ import annotations

import pika.data
import pytest

from sarra.core.errors import MessageError
from sarra.core.message import decode, encode, make_report, new_post, post_topic
from tests.fixtures.golden import (
    CAPTURE_2_6_BODY,
    CAPTURE_2_6_TABLE,
    GOLDEN,
    HTTP,
    LONG_RELPATH,
    LONG_TOPIC,
    Golden,
)

BY_NAME = {g.name: g for g in GOLDEN}


def _decode(g: Golden):
    return decode(g.topic, g.headers, g.body.encode("utf-8"))


@pytest.mark.parametrize("g", GOLDEN, ids=[g.name for g in GOLDEN])
def test_decoding_golden_message_gives_the_spec_fields(g: Golden) -> None:
    notice = _decode(g)
    assert notice.kind == g.kind
    assert notice.pubtime == g.pubtime
    assert notice.baseurl == g.baseurl
    assert notice.relpath == g.relpath
    assert notice.topic == g.topic
    assert dict(notice.headers) == g.headers
    if g.report is None:
        assert notice.report is None
    else:
        report = notice.report
        assert (report.code, report.host, report.user, report.elapsed) == g.report
        assert notice.message == g.headers["message"]


@pytest.mark.parametrize("g", GOLDEN, ids=[g.name for g in GOLDEN])
def test_encoding_decoded_golden_message_reproduces_the_wire_bytes(g: Golden) -> None:
    notice = _decode(g)
    expected_headers = dict(g.headers)
    if g.refused_header:
        with pytest.raises(MessageError, match=g.refused_header):
            encode(notice)
        notice = notice.relayable()
        del expected_headers[g.refused_header]
    encoded = encode(notice)
    assert encoded.topic == (g.encoded_topic or g.topic)
    assert encoded.headers == expected_headers
    assert list(encoded.headers) == list(expected_headers)  # order kept
    assert encoded.body == (g.encoded_body or g.body).encode("utf-8")
    assert encoded.content_type == "text/plain"
    assert encoded.delivery_mode == 2


def test_encoding_the_2_6_capture_gives_the_captured_header_table_and_body() -> None:
    g = BY_NAME["2.6-capture"]
    encoded = encode(_decode(g))
    pieces: list[bytes] = []
    pika.data.encode_table(pieces, encoded.headers)
    table = b"".join(pieces)
    assert table[:4] == len(CAPTURE_2_6_TABLE).to_bytes(4, "big")
    assert table[4:] == CAPTURE_2_6_TABLE
    assert encoded.body == CAPTURE_2_6_BODY
    assert len(encoded.body) == 68


def test_post_topic_of_the_long_relpath_is_the_253_byte_key_of_11_11() -> None:
    assert len(LONG_RELPATH) == 343
    assert post_topic(LONG_RELPATH) == LONG_TOPIC
    assert len(LONG_TOPIC.encode("utf-8")) == 253


@pytest.mark.parametrize(
    "path, topic",
    [
        ("data/small/hello.txt", "v02.post.data.small"),
        ("data/odd dir/file #1 é.txt", "v02.post.data.odd%20dir"),
        (
            "data/a.b/st*r/pc%t/q?x/h#sh/ünï/f+n&x=1;y%41.txt",
            "v02.post.data.a.b.st*r.pc%t.q?x.h%23sh.ünï",
        ),
        ("hello.txt", "v02.post"),
    ],
)
def test_post_topic_matches_the_captured_topics_of_3_4(path: str, topic: str) -> None:
    assert post_topic(path) == topic


# 2015 topics end with the file name, sr3 leaves spaces raw, and the 11.14 block example
# used a hand-made topic (the spec notes dd_post would derive v02.post.data.big there).
DERIVED_TOPIC_POSTS = [
    g.name
    for g in GOLDEN
    if g.kind == "post" and not any(s in g.name for s in ("2015", "sr3", "dd-name-sum"))
]


@pytest.mark.parametrize("name", DERIVED_TOPIC_POSTS)
def test_post_topic_of_each_golden_post_relpath_is_its_captured_topic(name: str) -> None:
    g = BY_NAME[name]
    assert post_topic(g.relpath) == g.topic


def test_post_topic_of_the_handmade_11_14_blocks_is_the_directory_topic() -> None:
    assert post_topic(BY_NAME["11.14-dd-name-sum-block0"].relpath) == "v02.post.data.big"


def test_new_post_reproduces_the_canonical_dd_example_11_14() -> None:
    g = BY_NAME["11.14-dd-whole"]
    notice = new_post(HTTP, "data/small/hello.txt", g.headers, pubtime="20261128212026.179")
    encoded = encode(notice)
    assert (encoded.topic, encoded.headers, encoded.body) == (
        g.topic,
        g.headers,
        g.body.encode("utf-8"),
    )


def test_make_report_on_11_10_gives_the_dd_form_stated_under_11_7b() -> None:
    post = _decode(BY_NAME["11.10-space-hash"])
    report = make_report(post, 499, "http download failed", "localhost", "guest", 0.000862)
    encoded = encode(report)
    assert encoded.topic == "v02.report.data.odd%20dir"
    assert (
        encoded.body
        == (
            f"{post.pubtime} http://localhost:8090/ /data/odd%20dir/file%20%231%20é.txt"
            " 499 localhost guest 0.000862"
        ).encode()
    )
    assert encoded.headers == {**post.headers, "message": "http download failed"}


def test_make_report_on_11_1_reproduces_report_11_7a_after_defaulting() -> None:
    g = BY_NAME["11.7a-report-201"]
    post = _decode(BY_NAME["11.1-md5"]).with_headers(source="guest", from_cluster="localhost")
    report = make_report(post, 201, "Downloaded", "localhost", "guest", 0.003449)
    encoded = encode(report)
    assert encoded.topic == g.topic
    assert encoded.headers == g.headers
    assert encoded.body == g.body.encode("utf-8")
