"""SFTP transfers against a private sshd on loopback (key-only, pinned host key)."""

from __future__ import annotations

import hashlib
import io
import subprocess

import paramiko
import pytest

from sarra.core.checksum import new
from sarra.core.errors import TransferError
from sarra.transfer import for_url, remote_path
from sarra.transfer.pool import TransferPool
from tests.fixtures.servers import TestCredential, sftp_server

pytestmark = pytest.mark.integration

__all__ = ["sftp_server"]


def pattern(size: int) -> bytes:
    return bytes((7 * k + 3) % 256 for k in range(size))


@pytest.fixture
def sftp(sftp_server):
    (sftp_server.root / "three_parts.bin").write_bytes(pattern(2500))
    t = for_url(sftp_server.url, credentials=sftp_server.credentials)
    yield t
    t.close()


def test_whole_file_get_verifies_checksum(sftp, sftp_server):
    dest = io.BytesIO()
    md5 = new("d")
    path = remote_path(sftp_server.url, f"{sftp_server.root}/three_parts.bin")
    assert sftp.get(path, dest, sums=[md5]) == 2500
    assert md5.value() == "1974f999ecd3884a25480a1b54c24120"


@pytest.mark.parametrize(
    "block, md5",
    [(1, "ec7b6e58df88bc0c0fdddfed9267d71f"), (2, "9b7dd0c7d1e817888a14bf5b4887dc36")],
)
def test_ranged_get_fetches_one_block(sftp, sftp_server, block, md5):
    s = new("d")
    length = min(1000, 2500 - block * 1000)
    sftp.get(
        f"{sftp_server.root}/three_parts.bin",
        io.BytesIO(),
        offset=block * 1000,
        length=length,
        sums=[s],
    )
    assert s.value() == md5


def test_large_whole_file_uses_prefetch_and_arrives_intact(sftp, sftp_server, tmp_path):
    data = pattern(3 * 1024 * 1024 + 17)
    (sftp_server.root / "big.bin").write_bytes(data)
    sha = new("s")
    with open(tmp_path / "out", "wb") as dest:
        sftp.get(f"{sftp_server.root}/big.bin", dest, sums=[sha])
    assert (tmp_path / "out").read_bytes() == data
    assert sha.value() == hashlib.sha512(data).hexdigest()


def test_odd_names_over_sftp(sftp, sftp_server):
    name = "odd dir/file #1 é?%41.txt"
    (sftp_server.root / "odd dir").mkdir(exist_ok=True)
    (sftp_server.root / name).write_bytes(b"odd")
    dest = io.BytesIO()
    sftp.get(remote_path(sftp_server.url, f"{sftp_server.root}/{name}"), dest)
    assert dest.getvalue() == b"odd"


def test_missing_file_is_permanent(sftp, sftp_server):
    with pytest.raises(TransferError) as info:
        sftp.get(f"{sftp_server.root}/nope", io.BytesIO())
    assert info.value.permanent
    assert isinstance(info.value.__cause__, OSError)


def test_put_blocks_rename_ls_delete(sftp, sftp_server):
    data = pattern(2500)
    d = f"{sftp_server.root}/up"
    sftp.mkdir(d)
    sftp.mkdir(d)
    for off in (0, 1000, 2000):
        src = io.BytesIO(data)
        src.seek(off)
        sftp.put(src, f"{d}/f.tmp", offset=off, length=min(1000, 2500 - off))
    sftp.rename(f"{d}/f.tmp", f"{d}/f.bin")
    assert sftp.ls(d) == ["f.bin"]
    assert sftp.stat(f"{d}/f.bin") == 2500
    assert (sftp_server.root / "up" / "f.bin").read_bytes() == data
    sftp.delete(f"{d}/f.bin")
    assert sftp.ls(d) == []


def test_unknown_host_key_is_refused_permanently(sftp_server, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    cred = sftp_server.credential()
    cred.options = {"known_hosts": str(empty)}
    t = for_url(sftp_server.url, credentials=lambda url: cred)
    with pytest.raises(TransferError, match="known_hosts") as info:
        t.connect()
    assert info.value.permanent


def test_changed_host_key_is_refused_permanently(sftp_server, tmp_path):
    other = paramiko.Ed25519Key.from_private_key_file(str(sftp_server.client_key))
    bad = tmp_path / "known_hosts"
    bad.write_text(f"[127.0.0.1]:{sftp_server.port} {other.get_name()} {other.get_base64()}\n")
    cred = sftp_server.credential()
    cred.options = {"known_hosts": str(bad)}
    with pytest.raises(TransferError) as info:
        for_url(sftp_server.url, credentials=lambda url: cred).connect()
    assert info.value.permanent
    assert isinstance(info.value.__cause__, paramiko.BadHostKeyException)


def test_wrong_key_is_an_authentication_failure(sftp_server, tmp_path):
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    cred = TestCredential(
        user="root", keyfile=str(key), options={"known_hosts": str(sftp_server.known_hosts)}
    )
    with pytest.raises(TransferError) as info:
        for_url(sftp_server.url, credentials=lambda url: cred).connect()
    assert info.value.permanent
    assert isinstance(info.value.__cause__, paramiko.AuthenticationException)


def test_unreadable_key_file_is_permanent(sftp_server, tmp_path):
    (tmp_path / "k").write_text("not a key")
    cred = TestCredential(user="root", keyfile=str(tmp_path / "k"))
    with pytest.raises(TransferError, match="key") as info:
        for_url(sftp_server.url, credentials=lambda url: cred).connect()
    assert info.value.permanent


def test_pool_reconnects_after_the_connection_breaks(sftp_server):
    (sftp_server.root / "x").write_bytes(b"x")
    with TransferPool(credentials=sftp_server.credentials) as pool:
        t = pool.get(sftp_server.url)
        t.get(f"{sftp_server.root}/x", io.BytesIO())
        t._client.get_transport().close()
        with pytest.raises(TransferError) as info:
            t.get(f"{sftp_server.root}/x", io.BytesIO())
        assert not info.value.permanent
        dest = io.BytesIO()
        pool.get(sftp_server.url).get(f"{sftp_server.root}/x", dest)
        assert dest.getvalue() == b"x"
