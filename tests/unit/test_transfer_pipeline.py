"""Read-ahead pipeline (sarra.transfer.pipeline) and the shared get loop that uses it."""

from __future__ import annotations

import hashlib
import io
import threading
from typing import Iterator

import pytest

from sarra.core.checksum import new
from sarra.core.errors import TransferError
from sarra.transfer import Transfer
from sarra.transfer.pipeline import prefetch, read_views


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sarra-read")]


def test_prefetch_yields_every_item_in_order():
    assert list(prefetch(iter(range(100)), depth=2)) == list(range(100))


def test_prefetch_reraises_the_readers_error_after_the_items_before_it():
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for item in prefetch(source(), depth=1):
            got.append(item)
    assert got == [1, 2]


def test_prefetch_closed_early_closes_the_source_in_the_reader_and_joins_it():
    closed = threading.Event()

    def source() -> Iterator[int]:
        try:
            yield from range(1000)
        finally:
            closed.set()

    it = prefetch(source(), depth=1)
    assert next(it) == 0
    it.close()
    assert closed.is_set()
    assert _reader_threads() == []


def test_read_views_reads_the_file_in_the_asked_sizes_and_stops_at_eof():
    data = bytes(range(256)) * 40  # 10,240 bytes
    views = read_views(io.BytesIO(data), [4096, 4096, 4096, 4096], chunk_size=4096, depth=1)
    pieces = [bytes(v) for v in views]
    assert [len(p) for p in pieces] == [4096, 4096, 2048]
    assert b"".join(pieces) == data


def test_read_views_recycles_a_bounded_number_of_buffers():
    data = b"x" * (64 * 1024)
    seen = set()
    for view in read_views(io.BytesIO(data), [1024] * 64, chunk_size=1024, depth=2):
        seen.add(id(view.obj))
    assert len(seen) <= 4  # depth + 2


def test_read_views_abandoned_midway_leaves_no_reader_thread():
    views = read_views(io.BytesIO(b"y" * 10_000), [100] * 100, chunk_size=100, depth=1)
    next(views)
    views.close()
    assert _reader_threads() == []


class _Chunks(Transfer):
    """A backend serving ``chunks`` for any path (records whether it was closed)."""

    scheme = "mem"

    def __init__(self, chunks: list[bytes], fail_after: int | None = None) -> None:
        super().__init__("mem://host/")
        self.chunks = chunks
        self.fail_after = fail_after
        self.closed = False

    def iter_read(self, path: str, offset: int, length: int | None) -> Iterator[bytes]:
        try:
            for i, c in enumerate(self.chunks):
                if self.fail_after is not None and i == self.fail_after:
                    raise TransferError("connection reset")
                yield c
        finally:
            self.closed = True


def test_big_get_writes_and_hashes_every_chunk_with_a_reader_thread():
    chunk = Transfer.chunk_size
    chunks = [bytes([i]) * chunk for i in range(6)] + [b"tail"]
    t = _Chunks(chunks)
    dest = io.BytesIO()
    md5 = new("d")
    progressed = []
    assert t.get("/f", dest, sums=[md5], progress=progressed.append) == 6 * chunk + 4
    assert dest.getvalue() == b"".join(chunks)
    assert md5.value() == hashlib.md5(b"".join(chunks)).hexdigest()
    assert sum(progressed) == 6 * chunk + 4
    assert t.closed and _reader_threads() == []


def test_big_get_failing_midway_raises_and_stops_the_reader():
    chunk = Transfer.chunk_size
    t = _Chunks([b"a" * chunk] * 5, fail_after=3)
    dest = io.BytesIO()
    with pytest.raises(TransferError, match="connection reset"):
        t.get("/f", dest)
    assert dest.getvalue() == b"a" * (3 * chunk)
    assert t.closed and _reader_threads() == []


def test_big_get_never_writes_bytes_past_the_asked_length():
    chunk = Transfer.chunk_size
    t = _Chunks([b"b" * chunk] * 4)
    dest = io.BytesIO()
    with pytest.raises(TransferError, match="more than"):
        t.get("/f", dest, length=3 * chunk - 1)
    assert len(dest.getvalue()) <= 3 * chunk - 1
    assert _reader_threads() == []
