"""requests_seam's two paths, straight to the adapter's pools and through
``Session.request``, give the same outcomes against loopback servers: bytes, ranges,
errors, listings, TLS, credentials kept to their own origin."""

from __future__ import annotations

import io

import pytest
import requests

from sarra.core.errors import TransferError
from sarra.core.seams import Choice
from sarra.transfer import for_url, requests_seam
from tests.fixtures.hostile_http import hostile_http
from tests.fixtures.servers import TestCredential, http_server, https_server

pytestmark = pytest.mark.integration

__all__ = ["hostile_http", "http_server", "https_server"]

DATA = bytes(range(256)) * 40


@pytest.fixture(params=["private", "public"])
def path(request, monkeypatch):
    """Which path requests take; counts the requests that went through Session.request."""
    monkeypatch.setattr(requests_seam, "ADAPTER", Choice(request.param == "private", "test"))
    calls = []
    real = requests.Session.request

    def counted(self, *args, **kwargs):
        calls.append(args[:2])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", counted)
    return request.param, calls


def _outcomes(url: str, **kw) -> dict:
    out: dict = {}
    with for_url(url, **kw) as t:
        dest = io.BytesIO()
        out["whole"] = (t.get("/d/a.bin", dest), dest.getvalue() == DATA)
        dest = io.BytesIO()
        out["block"] = (t.get("/d/a.bin", dest, offset=1000, length=10), dest.getvalue())
        out["size"] = t.stat("/d/a.bin")
        out["listing"] = t.ls("/d/")
        with pytest.raises(TransferError) as info:
            t.get("/d/missing", io.BytesIO())
        out["missing"] = (info.value.permanent, "404" in str(info.value))
    return out


WANT = {
    "whole": (len(DATA), True),
    "block": (10, DATA[1000:1010]),
    "size": len(DATA),
    "listing": ["a.bin", "b.bin"],
    "missing": (True, True),
}


def test_both_paths_read_the_same_bytes_and_errors(http_server, path):
    name, calls = path
    (http_server.root / "d").mkdir()
    (http_server.root / "d" / "a.bin").write_bytes(DATA)
    (http_server.root / "d" / "b.bin").write_bytes(b"b")
    assert _outcomes(http_server.url) == WANT
    assert (len(calls) > 0) is (name == "public")


def test_both_paths_verify_tls_the_same_way(https_server, path):
    (https_server.root / "d").mkdir()
    (https_server.root / "d" / "a.bin").write_bytes(DATA)
    (https_server.root / "d" / "b.bin").write_bytes(b"b")
    url = f"https://127.0.0.1:{https_server.port}/"
    with pytest.raises(TransferError, match="(?i)certificate"):
        for_url(url).get("/d/a.bin", io.BytesIO())
    assert _outcomes(url, options={"verify": str(https_server.cafile)}) == WANT


def test_both_paths_send_credentials_to_their_origin_only(hostile_http, path):
    target = f"http://localhost:{hostile_http.port}/elsewhere"
    t = for_url(
        hostile_http.url,
        options={"redirect_hosts": ("localhost",)},
        credentials=lambda url: TestCredential("u", "secret-pw"),
    )
    dest = io.BytesIO()
    with t:
        t.get(f"/to/{target}", dest)
    assert dest.getvalue() == b"ok:/elsewhere"
    first, second = hostile_http.requests
    assert first[1].get("Authorization") and not second[1].get("Authorization")
