"""The faster code paths behave exactly as the slow ones they replaced.

parse_time by slicing (was strptime), target_path's link check by lstat below the base
(was two realpath calls), the HTTP session reading the environment once (was requests'
trust_env per request), dd_post's one lstat per file, the corked publish (pika_seam; the
seams themselves: test_seams).
"""

from __future__ import annotations

import calendar
import datetime
import hashlib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sarra.broker.pika_seam import corked as _corked
from sarra.core.errors import PathError
from sarra.core.timestamps import TimeFormatError, parse_time
from sarra.fs.placement import target_path
from sarra.transfer.http import HttpTransfer


def _strptime_seconds(head: str) -> float | None:
    try:
        moment = datetime.datetime.strptime(head, "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return float(calendar.timegm(moment.timetuple()))


@given(st.text(alphabet="0123456789", min_size=14, max_size=14))
def test_parse_time_accepts_and_rejects_the_same_14_digits_as_strptime(head):
    want = _strptime_seconds(head)
    if want is None:
        with pytest.raises(TimeFormatError):
            parse_time(head)
    else:
        assert parse_time(head) == want


@pytest.mark.parametrize(
    "text", ["20240229120000", "20231231235959.999", "20000101T000000.5", "99991231235959"]
)
def test_parse_time_reads_valid_calendar_times(text):
    head = text.replace("T", "")[:14]
    assert parse_time(text) == pytest.approx(
        _strptime_seconds(head) + float("0" + text[14 + ("T" in text) :])
    )


@pytest.mark.parametrize(
    "text", ["20230229120000", "20241301000000", "20240100000000", "20240101240000",
             "20240101006000", "20240101000060", "00000101000000"],
)  # fmt: skip
def test_parse_time_refuses_impossible_calendar_times(text):
    with pytest.raises(TimeFormatError):
        parse_time(text)


def test_target_path_still_refuses_a_link_below_the_base_that_leads_outside(tmp_path):
    base = tmp_path / "base"
    outside = tmp_path / "outside"
    base.mkdir()
    outside.mkdir()
    os.symlink(outside, base / "evil")
    with pytest.raises(PathError):
        target_path(str(base), "evil/x/file")


def test_target_path_accepts_a_link_below_the_base_that_stays_inside(tmp_path):
    base = tmp_path / "base"
    (base / "real").mkdir(parents=True)
    os.symlink(base / "real", base / "alias")
    assert target_path(str(base), "alias/file") == base / "alias" / "file"


def test_target_path_refuses_dot_dot_and_accepts_missing_directories(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    with pytest.raises(PathError):
        target_path(str(base), "../../etc/passwd")
    assert target_path(str(base), "a/b/c/file") == base / "a" / "b" / "c" / "file"


def test_target_path_works_when_the_base_itself_is_a_link(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "base")
    assert target_path(str(tmp_path / "base"), "d/f") == tmp_path / "base" / "d" / "f"


def test_http_session_takes_its_proxy_from_the_environment_once(monkeypatch):
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    t = HttpTransfer("http://data.example/")
    t.connect()
    assert t._session.trust_env is False
    assert t._session.proxies.get("http") == "http://proxy.example:3128"
    t.close()


def test_http_session_honours_no_proxy(monkeypatch):
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    t = HttpTransfer("http://127.0.0.1:8000/")
    t.connect()
    assert "http" not in t._session.proxies
    t.close()


def test_http_session_takes_the_ca_bundle_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))
    t = HttpTransfer("https://data.example/")
    t.connect()
    assert t._session.verify == str(tmp_path / "ca.pem")
    t.close()


class _Conn:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def _adapter_emit_data(self, data: bytes) -> None:
        self.sent.append(data)


def test_corked_frames_reach_the_transport_as_one_buffer_in_order():
    conn = _Conn()
    with _corked(conn):
        for frame in (b"a", b"bb", b"ccc"):
            conn._adapter_emit_data(frame)
        assert conn.sent == []
    assert conn.sent == [b"abbccc"]
    conn._adapter_emit_data(b"d")  # the class's method again
    assert conn.sent == [b"abbccc", b"d"]


def test_corked_frames_are_still_sent_when_publishing_fails_midway():
    conn = _Conn()
    with pytest.raises(RuntimeError):
        with _corked(conn):
            conn._adapter_emit_data(b"first")
            raise RuntimeError("encode failed")
    assert conn.sent == [b"first"]


def _maker(tmp_path, **kw):
    from sarra.config.loader import table_defaults
    from sarra.post.notices import NoticeMaker

    base = dict(post_base_url="http://localhost:8090/", post_base_dir=str(tmp_path))
    base.update(kw)
    o = table_defaults("post").replace(**base)
    return NoticeMaker(o, broker_user="guest", broker_host="localhost")


def test_post_of_a_followed_link_announces_the_target_file(tmp_path):
    (tmp_path / "target").write_bytes(b"data")
    os.symlink(tmp_path / "target", tmp_path / "link")
    [n] = _maker(tmp_path, follow_symlinks=True).for_path(str(tmp_path / "link"))
    assert n.headers["sum"] == "d," + hashlib.md5(b"data").hexdigest()


def test_post_of_a_dangling_followed_link_or_a_fifo_is_not_a_regular_file(tmp_path):
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    os.mkfifo(tmp_path / "fifo")
    m = _maker(tmp_path, follow_symlinks=True)
    for name in ("dangling", "fifo"):
        with pytest.raises(PathError, match="not a regular file"):
            m.for_path(str(tmp_path / name))


def test_post_of_a_big_file_sums_each_block_in_one_threaded_pass(tmp_path):
    data = os.urandom(5 * 1024 * 1024 + 17)
    (tmp_path / "big").write_bytes(data)
    notices = _maker(tmp_path, blocksize=2 * 1024 * 1024).for_path(str(tmp_path / "big"))
    starts = [0, 2 << 20, 4 << 20, len(data)]
    want = [hashlib.md5(data[a:b]).hexdigest() for a, b in zip(starts, starts[1:])]
    assert [n.headers["sum"] for n in notices] == [f"d,{w}" for w in want]
    [whole] = _maker(tmp_path).for_path(str(tmp_path / "big"))
    assert whole.headers["sum"] == "d," + hashlib.md5(data).hexdigest()


class _FakeRaw:
    """Stands for urllib3's reply: records what is done to its connection."""

    def __init__(self, chunks):
        self.status, self.reason, self.headers = 200, "OK", {}
        self._chunks, self.calls = chunks, []

    def read1(self, size, decode_content=None):
        assert decode_content is False  # a content-encoding is never decoded
        return self._chunks.pop(0) if self._chunks else b""

    def close(self):
        self.calls.append("close")

    def release_conn(self):
        self.calls.append("release")


def _reply(raw):
    import urllib3

    from sarra.transfer.http import _Reply

    urllib3.BaseHTTPResponse.register(_FakeRaw)  # the reply class checks for urllib3's
    return _Reply(raw)


def test_a_reply_read_whole_hands_its_connection_back_for_reuse():
    raw = _FakeRaw([b"ab", b"cd"])
    reply = _reply(raw)
    assert b"".join(reply.chunks(2)) == b"abcd"
    reply.close()
    assert raw.calls == ["release"]


def test_a_reply_left_half_read_closes_its_connection_before_handing_it_back():
    raw = _FakeRaw([b"ab", b"cd"])
    reply = _reply(raw)
    chunks = reply.chunks(2)
    assert next(chunks) == b"ab"
    chunks.close()
    reply.close()
    assert raw.calls == ["close", "release"]  # unread bytes never serve the next GET
