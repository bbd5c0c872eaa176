"""FTP transfers against pyftpdlib on loopback (passive, binary, REST for blocks)."""

from __future__ import annotations

import io
import ssl

import pytest

from sarra.core.checksum import new
from sarra.core.errors import TransferError
from sarra.transfer import for_url, remote_path
from tests.fixtures.servers import TestCredential, ftp_server, ftps_server

pytestmark = pytest.mark.integration

__all__ = ["ftp_server", "ftps_server"]


def pattern(size: int) -> bytes:
    return bytes((7 * k + 3) % 256 for k in range(size))


@pytest.fixture
def ftp(ftp_server):
    (ftp_server.root / "data").mkdir()
    (ftp_server.root / "data" / "three_parts.bin").write_bytes(pattern(2500))
    t = for_url(ftp_server.url, credentials=ftp_server.credentials)
    yield t
    t.close()


def test_whole_file_get_verifies_checksum(ftp, ftp_server):
    dest = io.BytesIO()
    md5 = new("d")
    assert ftp.get(remote_path(ftp_server.url, "data/three_parts.bin"), dest, sums=[md5]) == 2500
    assert md5.value() == "1974f999ecd3884a25480a1b54c24120"


def test_blocks_are_read_with_rest_on_one_connection(ftp):
    expected = [
        "10046f077f2082ac19676b8079f1cb1a",
        "ec7b6e58df88bc0c0fdddfed9267d71f",
        "9b7dd0c7d1e817888a14bf5b4887dc36",
    ]
    for block, md5 in enumerate(expected):
        s = new("d")
        length = min(1000, 2500 - block * 1000)
        ftp.get("/data/three_parts.bin", io.BytesIO(), offset=block * 1000, length=length, sums=[s])
        assert s.value() == md5
    first = ftp._ftp
    ftp.get("/data/three_parts.bin", io.BytesIO(), length=10)
    assert ftp._ftp is first  # stopping early did not cost a reconnect


def test_large_file_stops_exactly_after_length(ftp, ftp_server):
    data = pattern(5 * 1024 * 1024)
    (ftp_server.root / "big.bin").write_bytes(data)
    dest = io.BytesIO()
    ftp.get("/big.bin", dest, offset=1_000_000, length=1_500_000)
    assert dest.getvalue() == data[1_000_000:2_500_000]
    dest = io.BytesIO()
    ftp.get("/big.bin", dest)
    assert dest.getvalue() == data


def test_odd_names_over_ftp(ftp, ftp_server):
    name = "odd dir/file #1 é?%41.txt"
    (ftp_server.root / "odd dir").mkdir()
    (ftp_server.root / name).write_bytes(b"odd")
    dest = io.BytesIO()
    ftp.get(remote_path(ftp_server.url, name), dest)
    assert dest.getvalue() == b"odd"


def test_missing_file_is_permanent_and_connection_stays_usable(ftp):
    with pytest.raises(TransferError) as info:
        ftp.get("/nope.bin", io.BytesIO())
    assert info.value.permanent
    assert ftp.get("/data/three_parts.bin", io.BytesIO()) == 2500


def test_bad_password_is_permanent(ftp_server):
    t = for_url(ftp_server.url, credentials=lambda url: TestCredential("user", "wrong"))
    with pytest.raises(TransferError) as info:
        t.connect()
    assert info.value.permanent


def test_put_rename_ls_stat_delete(ftp, ftp_server):
    data = pattern(2500)
    ftp.mkdir("/up")
    ftp.mkdir("/up")
    ftp.put(io.BytesIO(data[:1000]), "/up/f.tmp")
    for off in (1000, 2000):
        src = io.BytesIO(data)
        src.seek(off)
        ftp.put(src, "/up/f.tmp", offset=off, length=min(1000, 2500 - off))
    ftp.rename("/up/f.tmp", "/up/f.bin")
    assert ftp.ls("/up") == ["f.bin"]
    assert ftp.stat("/up/f.bin") == 2500
    assert (ftp_server.root / "up" / "f.bin").read_bytes() == data
    ftp.delete("/up/f.bin")
    assert ftp.ls("/up") == []


def test_active_mode_option_works(ftp_server):
    (ftp_server.root / "a").write_bytes(b"active")
    t = for_url(
        ftp_server.url,
        credentials=lambda url: TestCredential("user", "secret", options={"passive": "no"}),
    )
    dest = io.BytesIO()
    with t:
        t.get("/a", dest)
    assert not t.passive and dest.getvalue() == b"active"


def test_refused_connection_is_transient():
    from tests.fixtures.servers import free_port

    with pytest.raises(TransferError) as info:
        for_url(f"ftp://u@127.0.0.1:{free_port()}/", timeout=2).connect()
    assert not info.value.permanent


def test_ftps_get_verifies_server_certificate(ftps_server):
    (ftps_server.root / "s.bin").write_bytes(pattern(2500))
    md5 = new("d")
    with for_url(ftps_server.url, credentials=ftps_server.credentials) as t:
        t.get("/s.bin", io.BytesIO(), offset=1000, length=1000, sums=[md5])
        t.put(io.BytesIO(b"up"), "/up.bin")
    assert md5.value() == "ec7b6e58df88bc0c0fdddfed9267d71f"
    assert (ftps_server.root / "up.bin").read_bytes() == b"up"


def test_ftps_untrusted_certificate_is_refused(ftps_server):
    t = for_url(ftps_server.url, credentials=lambda url: TestCredential("user", "secret"))
    with pytest.raises(TransferError) as info:
        t.connect()
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
