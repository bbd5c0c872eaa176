"""Overlapping reads with hashing and writing: a reader thread and a bounded queue.

Owns two iterators used by the shared transfer loop (:meth:`Transfer.get`) and by
dd_post's one-pass block sums (``sarra.post.notices``):

* :func:`prefetch` runs any chunk iterator (a backend's ``iter_read``) in a reader
  thread, at most ``depth`` chunks ahead of the consumer;
* :func:`read_views` reads a local file with ``readinto`` into a small ring of recycled
  buffers, yielding memoryviews; no per-chunk allocation.

Why: one thread that receives, hashes and writes in turn leaves the disk and the network
idle while it hashes.  ``hashlib`` and file/socket I/O release the GIL on large
buffers, so with a reader thread the three overlap and a download runs at about the
speed of its slowest step (usually the hash).  The queue is bounded, so memory stays
flat (``depth`` + 2 chunks) whatever the file size.

Both iterators re-raise the reader's exception in the consumer, in order (every chunk
read before the error is delivered first).  When the consumer stops early (closes the
generator, or raises), the reader is told to stop and joined: the source iterator is
closed in the reader thread, so its resources (an HTTP response, a file) are released
before the call returns.
"""

from __future__ import annotations

import queue
import threading
from typing import BinaryIO, Iterable, Iterator, TypeVar, Union

__all__ = ["prefetch", "read_views"]

T = TypeVar("T")

_END = object()
_POLL = 0.5  # s: how often a blocked reader looks at the stop flag


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put ``item`` unless ``stop`` is set first; False when stopped."""
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL)
            return True
        except queue.Full:
            continue
    return False


def _pump(source: Iterator[T], q: queue.Queue, stop: threading.Event) -> None:
    try:
        for item in source:
            if not _put(q, item, stop):
                return
        _put(q, _END, stop)
    except BaseException as e:  # noqa: BLE001 - handed to the consumer, re-raised there
        _put(q, _Failed(e), stop)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


def _drain(q: queue.Queue) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return


def prefetch(chunks: Iterable[T], depth: int = 4, name: str = "sarra-read") -> Iterator[T]:
    """Yield the items of ``chunks``, produced by a reader thread up to ``depth`` ahead.

    Raises:
        Whatever iterating ``chunks`` raised, after the items that came before it.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    reader = threading.Thread(target=_pump, args=(iter(chunks), q, stop), name=name, daemon=True)
    reader.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        _drain(q)
        reader.join()


def _fill(f: BinaryIO, view: memoryview) -> int:
    """``readinto`` until ``view`` is full or EOF; returns the bytes read."""
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])  # type: ignore[attr-defined]  # BinaryIO omits it
        if not n:
            break
        got += n
    return got


def _views(f: BinaryIO, sizes: Iterable[int], free: queue.Queue) -> Iterator[tuple]:
    for size in sizes:
        buf = free.get()
        n = _fill(f, memoryview(buf)[:size])
        yield buf, n
        if n < size:
            return


def read_views(
    f: BinaryIO, sizes: Iterable[int], chunk_size: int, depth: int = 3
) -> Iterator[memoryview]:
    """Read ``f`` in pieces of the given ``sizes`` (each <= ``chunk_size``), in a thread.

    Yields a memoryview per size; a short (or empty) view means EOF and ends the
    iteration.  A view is only valid until the next one is requested: its buffer is
    then recycled for a later read.

    Raises:
        OSError: reading ``f`` failed (after the views read before the error).
    """
    free: queue.Queue = queue.Queue()
    for _ in range(depth + 2):
        free.put(bytearray(chunk_size))
    previous: Union[bytearray, None] = None
    views = prefetch(_views(f, sizes, free), depth, name="sarra-readinto")
    try:
        for buf, n in views:
            if previous is not None:
                free.put(previous)
            previous = buf
            yield memoryview(buf)[:n]
    finally:
        free.put(bytearray(0))  # a reader waiting for a buffer reads 0 bytes and ends
        views.close()  # type: ignore[attr-defined]  # a generator
