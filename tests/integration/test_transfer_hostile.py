"""Hostile servers against the transfer backends: more bytes than announced, a gzip bomb
behind a redirect, a trickle, redirects elsewhere, and the SSRF guard's addresses."""

from __future__ import annotations

import gzip
import io
import ipaddress

import pytest

from sarra.core.errors import TransferError
from sarra.core.fetchpolicy import FetchPolicy
from sarra.transfer import for_url
from sarra.transfer.limits import Limits
from sarra.transfer.netguard import Guard
from sarra.transfer.pool import TransferPool
from tests.fixtures.hostile_http import hostile_http, serve_hostile
from tests.fixtures.servers import TestCredential, ftp_server, http_server, sftp_server

pytestmark = pytest.mark.integration

__all__ = ["ftp_server", "hostile_http", "http_server", "sftp_server"]


def get(t, path, limit=None, length=None):
    dest = io.BytesIO()
    try:
        t.get(path, dest, limit=limit, length=length)
    finally:
        t.close()
    return dest.getvalue()


# -- class 9: never more than announced ---------------------------------------------------


@pytest.mark.parametrize("path", ["/long", "/long-nolen", "/long-chunked"])
@pytest.mark.parametrize("announced", [0, 9, 4096, 65537])
def test_a_body_longer_than_announced_is_refused_and_never_written_past_the_size(
    hostile_http, path, announced
):
    dest = io.BytesIO()
    t = for_url(hostile_http.url)
    with pytest.raises(TransferError) as info:
        t.get(path, dest, limit=announced)
    t.close()
    assert info.value.permanent  # the same server would send it all again
    assert len(dest.getvalue()) <= announced


def test_a_content_length_above_the_announced_size_fails_before_reading(hostile_http):
    dest = io.BytesIO()
    with pytest.raises(TransferError, match="more than the 10 announced"):
        for_url(hostile_http.url).get("/long", dest, limit=10)
    assert dest.getvalue() == b""


@pytest.mark.parametrize("cap", [1000, 200_000])
def test_a_notice_without_a_size_gets_the_configured_cap(hostile_http, cap):
    t = for_url(hostile_http.url)
    t.limits = Limits(max_size=cap)
    dest = io.BytesIO()
    with pytest.raises(TransferError):
        t.get("/long-chunked", dest)
    assert len(dest.getvalue()) <= cap


def test_the_exact_announced_size_is_delivered(hostile_http):
    assert get(for_url(hostile_http.url), "/long", limit=1 << 20) == b"x" * (1 << 20)


@pytest.mark.parametrize("size", [1 << 20, 1 << 24])
def test_a_gzip_body_behind_a_redirect_is_never_decoded(hostile_http, size):
    hostile_http.size = size
    raw = gzip.compress(b"\0" * size, mtime=0)  # same bytes as the server
    assert get(for_url(hostile_http.url), "/bomb", limit=len(raw)) == raw  # bytes as sent
    dest = io.BytesIO()
    with pytest.raises(TransferError) as info:
        for_url(hostile_http.url).get("/bomb", dest, limit=9)
    assert info.value.permanent and len(dest.getvalue()) <= 9


def test_every_request_asks_for_identity_encoding(hostile_http):
    get(for_url(hostile_http.url), "/bomb", limit=1 << 20)
    assert all(h.get("Accept-Encoding") == "identity" for _, h in hostile_http.requests)


# -- redirects ------------------------------------------------------------------------------


def test_a_redirect_within_the_origin_is_followed(hostile_http):
    assert get(for_url(hostile_http.url), "/to//plain") == b"ok:/plain"


@pytest.mark.parametrize("where", ["other-port", "localhost", "ftp", "file"])
def test_a_redirect_to_another_port_host_or_scheme_is_refused(hostile_http, where):
    other = serve_hostile()
    box = next(other)
    try:
        target = {
            "other-port": box.url + "secret",
            "localhost": f"http://localhost:{hostile_http.port}/secret",
            "ftp": f"ftp://127.0.0.1:{hostile_http.port}/secret",
            "file": "file:///etc/passwd",
        }[where]
        with pytest.raises(TransferError, match="redirect") as info:
            get(for_url(hostile_http.url), f"/to/{target}")
        assert info.value.permanent
        assert box.requests == [] and "/secret" not in hostile_http.paths()
    finally:
        other.close()


def test_a_redirect_to_a_listed_host_is_followed_without_the_credentials(hostile_http):
    target = f"http://localhost:{hostile_http.port}/elsewhere"
    t = for_url(
        hostile_http.url,
        options={"redirect_hosts": ("localhost",)},
        credentials=lambda url: TestCredential("u", "secret-pw"),
    )
    assert get(t, f"/to/{target}") == b"ok:/elsewhere"
    first, second = hostile_http.requests
    assert first[1].get("Authorization") and not second[1].get("Authorization")


def test_more_than_five_redirects_fail(hostile_http):
    with pytest.raises(TransferError, match="more than 5 redirects"):
        get(for_url(hostile_http.url), "/loop")
    assert len(hostile_http.requests) == 6


# -- class 10: a trickle cannot hold a download ------------------------------------------


def test_a_trickling_server_fails_at_the_deadline_not_at_the_end(hostile_http):
    """1 byte every 0.4 s never trips the 1 s idle timeout; the deadline (1 + max(1,
    100 B / 1 KiB/s) = 2 s) ends it long before the 40 s the body would take."""
    t = for_url(hostile_http.url, timeout=1)
    dest = io.BytesIO()
    with pytest.raises(TransferError, match="too slow") as info:
        t.get("/trickle", dest, limit=100)
    t.close()
    assert not info.value.permanent  # the retry queue tries again later
    assert len(dest.getvalue()) < 100


@pytest.mark.parametrize("path", ["/slow-headers", "/trickle"])
def test_a_read_blocked_inside_the_headers_or_a_chunk_is_cut_by_the_watchdog(hostile_http, path):
    """The headers (or a 1 MiB chunk) trickle in: no chunk boundary for the get loop to
    check the deadline at; the watchdog shuts the socket down at the deadline."""
    t = for_url(hostile_http.url, timeout=1)
    t.chunk_size = 1 << 20
    with pytest.raises(TransferError, match="too slow"):
        get(t, path, limit=100)
    assert hostile_http.sent[path] < 30  # the 60 header bytes would take 24 s


def test_a_stop_request_ends_a_trickling_download(hostile_http):
    asked = []
    t = for_url(hostile_http.url, timeout=1)
    t.limits = Limits(min_rate=0, stop=lambda: bool(asked) or asked.append(1) is not None)
    with pytest.raises(TransferError, match="stopped"):
        get(t, "/trickle", limit=100)


# -- other backends ---------------------------------------------------------------------------


def test_ftp_stops_reading_at_the_announced_size(ftp_server):
    (ftp_server.root / "big").write_bytes(b"f" * 300_000)
    t = for_url(ftp_server.url, credentials=ftp_server.credentials)
    dest = io.BytesIO()
    with pytest.raises(TransferError) as info:
        t.get("/big", dest, limit=1000)
    t.close()
    assert info.value.permanent and len(dest.getvalue()) <= 1000


@pytest.mark.parametrize("announced", [0, 1000, 299_999])
def test_sftp_stops_reading_at_the_announced_size(sftp_server, announced):
    (sftp_server.root / "big").write_bytes(b"s" * 300_000)
    t = for_url(sftp_server.url, credentials=sftp_server.credentials)
    dest = io.BytesIO()
    with pytest.raises(TransferError) as info:
        t.get(str(sftp_server.root / "big"), dest, limit=announced)
    t.close()
    assert info.value.permanent and len(dest.getvalue()) <= announced


def test_sftp_under_a_guard_connects_to_the_checked_address_with_the_host_key_of_the_name(
    sftp_server,
):
    (sftp_server.root / "f").write_bytes(b"guarded")
    allowed = FetchPolicy([("*", ("127.0.0.1",))]).for_source(None)
    t = for_url(sftp_server.url, credentials=sftp_server.credentials)
    t.guard = Guard(allowed, _resolver({"127.0.0.1": ["127.0.0.1"]}))
    assert get(t, str(sftp_server.root / "f")) == b"guarded"
    t = for_url(sftp_server.url, credentials=sftp_server.credentials)
    t.guard = Guard(FetchPolicy([("*", ("*",))]).for_source(None))
    with pytest.raises(TransferError) as info:
        get(t, str(sftp_server.root / "f"))
    assert info.value.code == 403


def test_ftp_under_a_guard_refuses_loopback_unless_listed(ftp_server):
    (ftp_server.root / "f").write_bytes(b"ftp-guarded")
    t = for_url(ftp_server.url, credentials=ftp_server.credentials)
    t.guard = Guard(FetchPolicy([("*", ("*",))]).for_source(None))
    with pytest.raises(TransferError) as info:
        get(t, "/f")
    assert info.value.code == 403
    t = for_url(ftp_server.url, credentials=ftp_server.credentials)
    t.guard = Guard(FetchPolicy([("*", ("127.0.0.0/8",))]).for_source(None))
    assert get(t, "/f") == b"ftp-guarded"


@pytest.mark.parametrize("announced", [0, 10, 2999])
def test_file_backend_stops_at_the_announced_size(tmp_path, announced):
    (tmp_path / "f").write_bytes(b"q" * 3000)
    dest = io.BytesIO()
    with pytest.raises(TransferError) as info:
        for_url(f"file://{tmp_path}/").get(str(tmp_path / "f"), dest, limit=announced)
    assert info.value.permanent and len(dest.getvalue()) <= announced


# -- class 8: the guard connects to the address it checked -------------------------------------


def _resolver(table):
    calls = []

    def resolve(host, port):
        calls.append(host)
        return [ipaddress.ip_address(a) for a in table[host]]

    resolve.calls = calls
    return resolve


@pytest.mark.parametrize("name", ["evil.test", "localhost.", "intranet.example"])
def test_a_name_resolving_to_loopback_is_refused_and_never_contacted(hostile_http, name):
    resolve = _resolver({name.rstrip("."): ["127.0.0.1"]})
    t = for_url(f"http://{name}:{hostile_http.port}/")
    t.guard = Guard(FetchPolicy([("*", ("*",))]).for_source("alice"), resolve)
    with pytest.raises(TransferError) as info:
        get(t, "/plain")
    assert info.value.code == 403 and info.value.permanent
    assert hostile_http.requests == []


def test_one_internal_address_among_public_ones_is_refused(hostile_http):
    resolve = _resolver({"mixed.test": ["192.0.2.10", "127.0.0.1"]})
    t = for_url(f"http://mixed.test:{hostile_http.port}/")
    t.guard = Guard(FetchPolicy([("*", ("*",))]).for_source("alice"), resolve)
    with pytest.raises(TransferError, match="internal"):
        get(t, "/plain")
    assert hostile_http.requests == []


def test_a_listed_address_is_fetched_from_the_checked_address_with_the_host_header(
    hostile_http,
):
    """evil.test exists in no DNS: the request can only reach the server through the
    address the guard checked (what the resolver said, once)."""
    resolve = _resolver({"evil.test": ["127.0.0.1"]})
    policy = FetchPolicy([("alice", ("127.0.0.1",))])
    t = for_url(f"http://evil.test:{hostile_http.port}/")
    t.guard = Guard(policy.for_source("alice"), resolve)
    assert get(t, "/plain") == b"ok:/plain"
    assert hostile_http.requests[0][1]["Host"] == f"evil.test:{hostile_http.port}"
    assert resolve.calls == ["evil.test"]


def test_a_redirect_target_is_checked_by_the_guard_too(hostile_http):
    resolve = _resolver({"public.test": ["127.0.0.1"], "inside.test": ["127.0.0.2"]})
    policy = FetchPolicy([("alice", ("public.test", "inside.test", "127.0.0.1/32"))])
    t = for_url(f"http://public.test:{hostile_http.port}/", options={"redirect_hosts": ("*",)})
    t.guard = Guard(policy.for_source("alice"), resolve)
    with pytest.raises(TransferError, match="internal") as info:
        get(t, f"/to/http://inside.test:{hostile_http.port}/secret")
    assert info.value.code == 403
    assert "/secret" not in [p for p, _ in hostile_http.requests]


def test_the_pool_keeps_one_guarded_transfer_per_source(hostile_http):
    policy = FetchPolicy([("alice", ("127.0.0.1",))])
    with TransferPool(policy=policy) as pool:
        pool.source = "alice"
        assert get(pool.get(hostile_http.url), "/a") == b"ok:/a"
        pool.source = "eve"
        with pytest.raises(TransferError) as info:
            get(pool.get(hostile_http.url), "/b")
        assert info.value.code == 403
    assert hostile_http.paths() == ["/a"]
