"""The Transfer base loops (get/put), the registry, the pool and the file backend."""

from __future__ import annotations

import io
from typing import Iterator

import pytest

from sarra.core.checksum import new
from sarra.core.errors import TransferError
from sarra.core.redaction import redact_url
from sarra.transfer import (
    Transfer,
    _Throttle,
    for_url,
    pool_key,
    remote_path,
)
from sarra.transfer.file import FileTransfer
from sarra.transfer.pool import TransferPool


def pattern(size: int) -> bytes:
    return bytes((7 * k + 3) % 256 for k in range(size))


class Canned(Transfer):
    """A backend yielding fixed chunks, to drive the base loop."""

    scheme = "canned"

    def __init__(self, chunks: list[bytes]) -> None:
        super().__init__("canned://h/")
        self.chunks = chunks
        self.written: list[tuple[str, bytes, int, bool]] = []

    def iter_read(self, path: str, offset: int, length: int | None) -> Iterator[bytes]:
        yield from self.chunks

    def write_from(self, path, chunks, offset, *, truncate=True):
        self.written.append((path, b"".join(chunks), offset, truncate))


@pytest.mark.parametrize(
    "baseurl, relpath, expected",
    [
        ("file:", "/abs/path/f.txt", "/abs/path/f.txt"),
        ("file:///base/", "sub/f.txt", "/base/sub/f.txt"),
        ("file:///base", "/sub/f.txt", "/base/sub/f.txt"),
        ("http://localhost:8090/", "/data/big/three_parts.bin", "/data/big/three_parts.bin"),
        ("http://h/pump/", "data/x", "/pump/data/x"),
        ("http://h/odd%20dir/", "file #1 é?.txt", "/odd dir/file #1 é?.txt"),
        ("sftp://u@h/", "abs/path", "/abs/path"),
        ("sftp://u@h//abs/", "f", "/abs/f"),
    ],
)
def test_remote_path_joins_base_and_relpath_with_one_slash(baseurl, relpath, expected):
    assert remote_path(baseurl, relpath) == expected


def test_redact_url_hides_password_only():
    assert redact_url("sftp://bob:s3cret@h:22/x") == "sftp://bob:***@h:22/x"
    assert redact_url("http://h/x") == "http://h/x"


def test_pool_key_is_scheme_user_host_port():
    assert pool_key("SFTP://bob@Host:2222/a/") == ("sftp", "bob", "host", 2222)
    assert pool_key("file:") == ("file", None, "", None)


def test_get_streams_chunks_updates_sums_and_reports_progress():
    data = pattern(2500)
    t = Canned([data[:1000], data[1000:2000], data[2000:]])
    dest = io.BytesIO()
    md5, sha = new("d"), new("s")
    seen: list[int] = []
    assert t.get("/x", dest, sums=[md5, sha], progress=seen.append) == 2500
    assert dest.getvalue() == data
    assert md5.value() == "1974f999ecd3884a25480a1b54c24120"
    assert seen == [1000, 1000, 500]


def test_get_raises_when_fewer_bytes_than_length_arrive():
    t = Canned([b"abc"])
    with pytest.raises(TransferError, match="got 3 of 5"):
        t.get("/x", io.BytesIO(), length=5)


def test_get_never_writes_bytes_beyond_length():
    t = Canned([b"abc", b"def"])
    dest = io.BytesIO()
    with pytest.raises(TransferError, match="more than 4"):
        t.get("/x", dest, length=4)
    assert dest.getvalue() == b"abc"


def test_get_wraps_local_write_errors():
    class Full(io.BytesIO):
        def write(self, b):
            raise OSError(28, "No space left on device")

    with pytest.raises(TransferError, match="No space"):
        Canned([b"abc"]).get("/x", Full())


def test_progress_errors_propagate_unchanged():
    class Stop(Exception):
        pass

    def boom(n: int) -> None:
        raise Stop()

    with pytest.raises(Stop):
        Canned([b"abc"]).get("/x", io.BytesIO(), progress=boom)


def test_put_sends_length_bytes_from_positioned_source():
    t = Canned([])
    src = io.BytesIO(pattern(3000))
    src.seek(1000)
    md5 = new("d")
    assert t.put(src, "/dst", offset=1000, length=1000, sums=[md5]) == 1000
    assert t.written == [("/dst", pattern(3000)[1000:2000], 1000, False)]
    assert md5.value() == "ec7b6e58df88bc0c0fdddfed9267d71f"


def test_put_whole_file_truncates_and_short_source_raises():
    t = Canned([])
    t.put(io.BytesIO(b"hello"), "/dst")
    assert t.written[-1] == ("/dst", b"hello", 0, True)
    with pytest.raises(TransferError, match="source had 5 of 9"):
        t.put(io.BytesIO(b"hello"), "/dst", length=9)


def test_throttle_sleeps_until_rate_is_respected():
    now = [0.0]
    slept: list[float] = []
    throttle = _Throttle(1000, clock=lambda: now[0], sleep=slept.append)
    throttle.wait(500)  # 500 bytes at t=0: half a second early
    now[0] = 2.0
    throttle.wait(1000)  # 1000 bytes after 2 s: slower than the rate
    assert slept == [0.5]
    _Throttle(0, clock=lambda: 0.0, sleep=slept.append).wait(10**9)
    assert slept == [0.5]


def test_unknown_scheme_is_permanent_503():
    with pytest.raises(TransferError) as info:
        for_url("gopher://h/")
    assert info.value.permanent and info.value.code == 503


def test_for_url_uses_credentials_lookup_and_its_options():
    class Cred:
        user = "bob"
        password = "pw"
        keyfile = None
        options = {"passive": False}

    t = for_url("ftp://h/", credentials=lambda url: Cred(), options={"passive": True, "x": 1})
    assert (t.user, t.password) == ("bob", "pw")
    assert t.options == {"passive": False, "x": 1}
    assert "pw" not in repr(t)


def test_pool_reuses_one_transfer_per_server_and_closes_all():
    closed: list[Transfer] = []

    class Counting(FileTransfer):
        def close(self) -> None:
            closed.append(self)

    with TransferPool(registry={"file": Counting}) as pool:
        a = pool.get("file:///a/")
        assert pool.get("file:///b/") is a
        assert len(pool) == 1
    assert closed == [a] and len(pool) == 0


def test_file_get_reads_a_block_at_offset(tmp_path):
    (tmp_path / "f.bin").write_bytes(pattern(2500))
    t = for_url("file:")
    dest = io.BytesIO()
    md5 = new("d")
    assert t.get(str(tmp_path / "f.bin"), dest, offset=1000, length=1000, sums=[md5]) == 1000
    assert md5.value() == "ec7b6e58df88bc0c0fdddfed9267d71f"


def test_file_get_whole_file_through_base_url(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f b#.txt").write_bytes(b"Hello, world!\n")
    base = f"file://{tmp_path}/"
    with for_url(base) as t:
        dest = io.BytesIO()
        t.get(remote_path(base, "d/f b#.txt"), dest)
    assert dest.getvalue() == b"Hello, world!\n"


def test_file_missing_is_permanent(tmp_path):
    with pytest.raises(TransferError) as info:
        for_url("file:").get(str(tmp_path / "nope"), io.BytesIO())
    assert info.value.permanent
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_file_short_block_at_end_of_file_raises(tmp_path):
    (tmp_path / "f").write_bytes(b"12345")
    with pytest.raises(TransferError, match="got 2 of 4"):
        for_url("file:").get(str(tmp_path / "f"), io.BytesIO(), offset=3, length=4)


def test_file_put_blocks_into_existing_file_without_truncating(tmp_path):
    t = for_url("file:")
    target = str(tmp_path / "out")
    data = pattern(2500)
    for off in (2000, 0, 1000):
        src = io.BytesIO(data)
        src.seek(off)
        t.put(src, target, offset=off, length=min(1000, 2500 - off))
    assert (tmp_path / "out").read_bytes() == data
    t.put(io.BytesIO(b"new"), target)
    assert (tmp_path / "out").read_bytes() == b"new"


def test_file_directory_operations(tmp_path):
    t = for_url("file:")
    t.mkdir(str(tmp_path / "a" / "b"))
    t.mkdir(str(tmp_path / "a" / "b"))
    (tmp_path / "a" / "x").write_bytes(b"1234")
    assert t.ls(str(tmp_path / "a")) == ["b", "x"]
    assert t.stat(str(tmp_path / "a" / "x")) == 4
    t.rename(str(tmp_path / "a" / "x"), str(tmp_path / "a" / "y"))
    t.delete(str(tmp_path / "a" / "y"))
    assert t.ls(str(tmp_path / "a")) == ["b"]
    with pytest.raises(TransferError):
        t.delete(str(tmp_path / "a" / "y"))


def test_file_refuses_remote_hosts():
    with pytest.raises(TransferError) as info:
        for_url("file://otherhost/x/")
    assert info.value.permanent
