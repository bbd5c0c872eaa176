"""Transfer abstraction: the :class:`Transfer` base class, the scheme registry, a pool.

This package owns moving bytes to and from remote servers.  A backend (``file``,
``http``/``https``, ``sftp``, ``ftp``/``ftps``) implements a few primitive operations;
the base class does the shared work once: the read/write loop, checksums computed as
the bytes stream past, throttling, progress callbacks, the byte-count check, the
announced-size bound and the wall-clock deadline (``sarra.transfer.limits``).
:class:`TransferPool` (``sarra.transfer.pool``) hands each transfer its limits and,
where the SSRF policy applies, its guard (``sarra.transfer.netguard``).  The HTTP
backend's one speed trick on requests' internals lives in ``sarra.transfer.requests_seam``.

Server paths: :func:`remote_path` joins the baseurl path and a *decoded* relpath with a
single ``/`` (spec 4.5).  Every backend call takes such an absolute server path.

Every library exception is translated into :class:`sarra.core.errors.TransferError` (with
``from e``) inside the backend module; ``permanent`` says whether retrying can help.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import re
from types import MappingProxyType
from typing import (
    Any,
    BinaryIO,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Optional,
    Protocol,
    Sequence,
)
from urllib.parse import unquote, urlsplit

from sarra.core.checksum import Checksum
from sarra.core.errors import TransferError
from sarra.core.redaction import redact_url
from sarra.transfer.bandwidth import Throttle as _Throttle  # noqa: F401 - tests use it
from sarra.transfer.bandwidth import pacer
from sarra.transfer.limits import WATCHDOG, Budget, Limits
from sarra.transfer.listing import Entry
from sarra.transfer.pipeline import prefetch

__all__ = [
    "CHUNK_SIZE",
    "Credential",
    "CredentialLookup",
    "Entry",
    "Transfer",
    "TRANSFERS",
    "backend",
    "for_url",
    "pool_key",
    "remote_base",
    "read_chunks",
    "remote_path",
]

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
#: Chunks a reader thread may have ready ahead of the hashing caller (memory: about
#: depth + 2 chunks, plus the HTTP library's own copy of the one being read).
PREFETCH_DEPTH = 2


class Credential(Protocol):
    """What a credentials lookup returns (duck-typed; see ``sarra.config.credentials``)."""

    @property
    def user(self) -> str | None: ...

    @property
    def password(self) -> str | None: ...

    @property
    def keyfile(self) -> str | None: ...

    @property
    def options(self) -> Mapping[str, Any]: ...


CredentialLookup = Callable[[str], Optional[Credential]]
Progress = Callable[[int], None]


def remote_path(baseurl: str, relpath: str) -> str:
    """Return the server path for ``relpath`` (already decoded) under ``baseurl``.

    The baseurl path (percent-decoded) and relpath are joined with exactly one ``/``;
    the result is always absolute.  ``file:`` + ``/abs/path`` gives ``/abs/path``;
    repeated slashes in the baseurl path collapse (``sftp://u@h//abs/`` is ``/abs/``).
    """
    return remote_base(baseurl) + relpath.lstrip("/")


def remote_base(baseurl: str) -> str:
    """The server directory of ``baseurl`` ending in one ``/`` (see :func:`remote_path`)."""
    return re.sub("/+", "/", unquote(urlsplit(baseurl).path)).rstrip("/") + "/"


def pool_key(baseurl: str) -> tuple[str, str | None, str, int | None]:
    """Return the connection key ``(scheme, user, host, port)`` of ``baseurl``."""
    parts = urlsplit(baseurl)
    return (parts.scheme.lower(), parts.username, parts.hostname or "", parts.port)


class Transfer:
    """One connection to one server, reading and writing files by server path.

    Backends implement ``connect``, ``close``, ``iter_read``, ``write_from``, ``ls``,
    ``listing``, ``mkdir``, ``delete``, ``rename``, ``stat``, ``chmod`` and ``utime``;
    they connect lazily, so a transfer whose connection broke reconnects on next use.
    :meth:`get` and :meth:`put` are the shared loops: callers position ``dest``/``src``,
    the loop streams ``chunk_size`` pieces, feeds every checksum in ``sums``, calls
    ``progress(nbytes)`` after each piece (a good place to keep a broker heartbeat
    alive), throttles to ``throttle`` bytes/s, waits for the shared bandwidth
    budgets (:attr:`pacing`) and checks the byte count against ``length``.
    """

    scheme = ""
    chunk_size = CHUNK_SIZE
    #: Set by :class:`TransferPool`: the size cap, minimum rate and stop request.
    limits = Limits()
    #: Set by :class:`TransferPool` where an SSRF policy applies (``transfer.netguard``):
    #: backends then connect only to the address it checked.
    guard: Any = None
    #: During :meth:`get` of a whole file: the most bytes the caller accepts.  A backend
    #: asks the server for at most one byte more (to see that it sends too much).
    read_limit: int | None = None
    #: Set by :class:`TransferPool` where bandwidth limits apply: the shared budgets
    #: (:class:`sarra.transfer.bandwidth.Pacing`) this transfer waits for after each piece.
    pacing: Any = None

    def __init__(
        self,
        baseurl: str,
        *,
        credentials: CredentialLookup | None = None,
        timeout: float = 30,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        parts = urlsplit(baseurl)
        self.baseurl = baseurl
        self.host = parts.hostname or ""
        self.port = parts.port
        self.timeout = timeout
        cred = credentials(baseurl) if credentials else None
        self.user: str | None = parts.username or getattr(cred, "user", None)
        self.password: str | None = getattr(cred, "password", None) or parts.password
        self.keyfile: str | None = getattr(cred, "keyfile", None)
        self.options: dict[str, Any] = dict(options or {})
        self.options.update(getattr(cred, "options", None) or {})

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.scheme}://{self.host}:{self.port}>"

    def __enter__(self) -> Transfer:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- backend interface -------------------------------------------------------------

    def connect(self) -> None:
        """Open the connection now (backends otherwise connect on first use)."""

    def close(self) -> None:
        """Close the connection; never raises."""

    def iter_read(self, path: str, offset: int, length: int | None) -> Iterator[bytes]:
        """Yield the bytes of ``path`` from ``offset`` (``length`` bytes, or to EOF)."""
        raise NotImplementedError

    def write_from(
        self, path: str, chunks: Iterable[bytes], offset: int, *, truncate: bool = True
    ) -> None:
        """Write ``chunks`` into ``path`` at ``offset``; ``truncate`` replaces the file."""
        raise TransferError(f"{self.scheme}: sending is not supported", permanent=True)

    def ls(self, path: str) -> list[str]:
        """Return the sorted names in directory ``path``."""
        raise TransferError(f"{self.scheme}: ls is not supported", permanent=True)

    def mkdir(self, path: str) -> None:
        """Create directory ``path`` (existing is fine)."""
        raise TransferError(f"{self.scheme}: mkdir is not supported", permanent=True)

    def delete(self, path: str) -> None:
        """Remove file ``path``."""
        raise TransferError(f"{self.scheme}: delete is not supported", permanent=True)

    def rename(self, old: str, new: str) -> None:
        """Rename ``old`` to ``new``, replacing ``new`` where the server allows it."""
        raise TransferError(f"{self.scheme}: rename is not supported", permanent=True)

    def stat(self, path: str) -> int:
        """Return the size of ``path`` in bytes."""
        raise NotImplementedError

    def listing(self, path: str) -> Iterator[Entry]:
        """Yield the entries of directory ``path`` as the server lists them, streamed
        (see :mod:`sarra.transfer.listing`); names only, never ``.`` or ``..``."""
        raise TransferError(f"{self.scheme}: listing is not supported", permanent=True)

    def chmod(self, path: str, mode: int) -> None:
        """Set the permission bits of ``path``."""
        raise TransferError(f"{self.scheme}: chmod is not supported", permanent=True)

    def utime(self, path: str, mtime: float) -> None:
        """Set the modification (and access) time of ``path``."""
        raise TransferError(f"{self.scheme}: setting times is not supported", permanent=True)

    def abort(self) -> None:
        """Called from another thread when a transfer passed its deadline: make the
        read blocked in this transfer fail now (shut its sockets down); never raises."""

    # -- shared loops ------------------------------------------------------------------

    def _pace(self, throttle: int, budget: Budget | None) -> Callable[[int], None] | None:
        """What the loops call after each piece (:func:`sarra.transfer.bandwidth.pacer`)."""
        return pacer(throttle, self.pacing, self.limits.stop, budget)

    def get(
        self,
        remote_path: str,
        dest: BinaryIO,
        *,
        offset: int = 0,
        length: int | None = None,
        limit: int | None = None,
        sums: Sequence[Checksum] = (),
        progress: Progress | None = None,
        throttle: int = 0,
    ) -> int:
        """Copy ``length`` bytes (or to EOF) of ``remote_path`` from ``offset`` into ``dest``.

        ``dest`` is already open and positioned.  Returns the number of bytes written.
        ``limit`` (a whole file: ``length`` None) is the announced size: more bytes than
        that are never written (without it, ``limits.max_size`` applies).  The transfer
        must end before its deadline (:class:`sarra.transfer.limits.Budget`), each read
        within ``timeout``.  When the first chunk is a full one (a big transfer), the rest
        is received and written by a reader thread while this thread hashes
        (:func:`sarra.transfer.pipeline.prefetch`); small files need no thread.

        Raises:
            TransferError: the backend failed, ``dest`` could not be written, the
                server sent fewer or more bytes than ``length`` (extra bytes are never
                written), more than ``limit`` (permanent: the same server would send
                them again), or the deadline passed or a stop was asked (transient).
        """
        total = 0
        announced = length if length is not None else limit
        bound = announced if announced is not None else self.limits.max_size
        budget = Budget(self.timeout, self.limits, announced)
        # read by the backend's generator when it starts, within this call
        self.read_limit = None if length is not None else bound
        reads = self.iter_read(remote_path, offset, length)
        pace = self._pace(throttle, budget)
        written = _written(reads, dest, remote_path, length, bound, budget, pace)
        chunks = _read_ahead(written, self.chunk_size)
        watch = WATCHDOG.watch(budget, self.abort)  # ends a read blocked mid-chunk too
        try:
            with contextlib.closing(chunks):  # an early exit stops the reader thread at once
                for chunk in chunks:
                    for s in sums:
                        s.update(chunk)
                    total += len(chunk)
                    if progress is not None:
                        progress(len(chunk))
        except TransferError as e:
            if watch.fired is None:
                raise
            raise TransferError(f"{remote_path}: {watch.fired}") from e
        finally:
            WATCHDOG.forget(watch)
        if length is not None and total != length:
            raise TransferError(f"{remote_path}: got {total} of {length} bytes")
        log.debug("got %d bytes of %s from %s", total, remote_path, redact_url(self.baseurl))
        return total

    def put(
        self,
        src: BinaryIO,
        remote_path: str,
        *,
        offset: int = 0,
        length: int | None = None,
        sums: Sequence[Checksum] = (),
        progress: Progress | None = None,
        throttle: int = 0,
    ) -> int:
        """Send ``length`` bytes (or to EOF) of ``src`` to ``remote_path`` at ``offset``.

        ``src`` is already open and positioned.  A whole-file put (``offset`` 0, no
        ``length``) replaces the remote file; a block put writes into it.

        Raises:
            TransferError: the backend failed, ``src`` could not be read, or it held
                fewer than ``length`` bytes.
        """
        sent = [0]

        pace = self._pace(throttle, None)

        def chunks() -> Iterator[bytes]:
            while length is None or sent[0] < length:
                want = self.chunk_size if length is None else min(self.chunk_size, length - sent[0])
                chunk = _read(src, want, remote_path)
                if not chunk:
                    break
                for s in sums:
                    s.update(chunk)
                sent[0] += len(chunk)
                yield chunk
                if progress is not None:
                    progress(len(chunk))
                if pace is not None:
                    pace(len(chunk))

        truncate = offset == 0 and length is None
        self.write_from(remote_path, chunks(), offset, truncate=truncate)
        if length is not None and sent[0] != length:
            raise TransferError(f"{remote_path}: source had {sent[0]} of {length} bytes")
        log.debug("put %d bytes to %s on %s", sent[0], remote_path, redact_url(self.baseurl))
        return sent[0]


def read_chunks(f: Any, length: int | None, chunk_size: int) -> Iterator[bytes]:
    """Chunks of an open file from its current position: ``length`` bytes, or to EOF."""
    left = length
    while left is None or left > 0:
        chunk = f.read(chunk_size if left is None else min(chunk_size, left))
        if not chunk:
            return
        if left is not None:
            left -= len(chunk)
        yield chunk


def _written(
    chunks: Iterator[bytes],
    dest: BinaryIO,
    what: str,
    length: int | None,
    bound: int,
    budget: Budget,
    pace: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """Write each chunk to ``dest`` (never past ``length`` nor ``bound``), then pass it
    on for hashing; the deadline is checked after each chunk (in the reader thread when
    there is one, so it stops too), and the bandwidth limits are waited for there too,
    so that reading ahead never runs ahead of them."""
    done = 0
    for chunk in chunks:
        if length is not None and done + len(chunk) > length:
            raise TransferError(f"{what}: server sent more than {length} bytes")
        if done + len(chunk) > bound:
            raise TransferError(
                f"{what}: server sent more than the {bound} bytes announced", permanent=True
            )
        _write(dest, chunk, what)
        done += len(chunk)
        if pace is not None:
            pace(len(chunk))
        budget.check(what, done)
        yield chunk


def _read_ahead(chunks: Iterator[bytes], chunk_size: int) -> Generator[bytes, None, None]:
    """``chunks``, produced in a thread from the second chunk on if the first is full.

    The thread receives and writes (system calls that release the GIL) while the
    caller hashes (hashlib releases the GIL too): a big download takes about as long
    as its checksum, not as the sum of receive, write and checksum.
    """
    first = next(chunks, None)
    if first is None:
        return
    yield first
    if len(first) < chunk_size:
        yield from chunks  # a small file: its end is near, a thread would cost more
    else:
        yield from prefetch(chunks, PREFETCH_DEPTH)


def _write(dest: BinaryIO, chunk: bytes, what: str) -> None:
    try:
        dest.write(chunk)
    except OSError as e:
        raise TransferError(f"{what}: writing local copy failed: {e}") from e


def _read(src: BinaryIO, size: int, what: str) -> bytes:
    try:
        return src.read(size)
    except OSError as e:
        raise TransferError(f"{what}: reading local file failed: {e}") from e


#: Scheme -> ``"module:Class"`` of its backend.  Backends are imported on first use of
#: their scheme, so a process that only fetches over http never loads paramiko or
#: ftplib (start-up time and resident memory).
TRANSFERS: Mapping[str, str] = MappingProxyType(
    {
        "file": "sarra.transfer.file:FileTransfer",
        "http": "sarra.transfer.http:HttpTransfer",
        "https": "sarra.transfer.http:HttpTransfer",
        "sftp": "sarra.transfer.sftp:SftpTransfer",
        "ftp": "sarra.transfer.ftp:FtpTransfer",
        "ftps": "sarra.transfer.ftp:FtpTransfer",
    }
)


def backend(entry: str | type[Transfer]) -> type[Transfer]:
    """Return the backend class of a registry entry (a class or a ``"module:Class"``).

    Raises:
        TransferError: the backend's module (or a library it needs) cannot be imported
            (permanent, code 503).
    """
    if not isinstance(entry, str):
        return entry
    module, _, name = entry.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as e:
        raise TransferError(
            f"transfer backend {entry} unavailable: {e}", permanent=True, code=503
        ) from e


def for_url(
    baseurl: str,
    *,
    credentials: CredentialLookup | None = None,
    timeout: float = 30,
    options: Mapping[str, Any] | None = None,
    registry: Mapping[str, str | type[Transfer]] | None = None,
) -> Transfer:
    """Return an (unconnected) transfer for ``baseurl``, chosen by its scheme.

    Raises:
        TransferError: unknown scheme (permanent, code 503).
    """
    scheme = urlsplit(baseurl).scheme.lower()
    entry = (TRANSFERS if registry is None else registry).get(scheme)
    if entry is None:
        raise TransferError(
            f"unsupported scheme {scheme!r} in {redact_url(baseurl)}", permanent=True, code=503
        )
    cls = backend(entry)
    return cls(baseurl, credentials=credentials, timeout=timeout, options=options)
