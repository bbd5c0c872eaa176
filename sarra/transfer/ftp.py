"""FTP and FTPS transfer backend on ``ftplib``.

Owns the control connection (``FTP``, or ``FTP_TLS`` for ``ftps://`` or the ``tls``
option, with a protected data channel and the server certificate verified against the
system CAs or option ``cafile``; option ``tls_verify`` off disables that), passive mode
by default (option ``passive``), binary transfers (``TYPE I``), ``REST`` for block
offsets (the read stops after ``length`` bytes and aborts the rest of the transfer), and
file operations by server path.

Errors: 5xx replies (no such file, permission denied) are permanent; 4xx replies,
network and protocol failures are transient, and a failure in the middle of a transfer
drops the connection so the next use reconnects.

Limitation: ``REST`` with a zero offset is ignored by servers, so a block put at offset
0 (``truncate=False``) truncates the remote file like a whole-file put.
"""

from __future__ import annotations

import ftplib
import logging
import socket
import ssl
import time
from typing import Any, Iterable, Iterator, NoReturn

from sarra.core.errors import TransferError
from sarra.transfer import Entry, Transfer
from sarra.transfer.listing import list_entry, mlsd_entry

__all__ = ["FtpTransfer"]

log = logging.getLogger(__name__)

_ERRORS = (ftplib.Error, OSError, EOFError, ValueError)
#: replies that say a command is not implemented (then LIST stands in for MLSD)
_UNKNOWN_COMMAND = ("500", "501", "502", "504")
#: longest listing line read; a longer one is skipped (a hostile server's)
_MAX_LINE = 8192


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "yes", "true", "on")
    return bool(value)


class FtpTransfer(Transfer):
    """Reads and writes files over one FTP control connection."""

    scheme = "ftp"

    def __init__(self, baseurl: str, **kwargs: Any) -> None:
        super().__init__(baseurl, **kwargs)
        self.tls = baseurl.lower().startswith("ftps:") or _flag(self.options.get("tls"), False)
        self.scheme = "ftps" if self.tls else "ftp"
        self.passive = _flag(self.options.get("passive"), True)
        self.port = self.port or 21
        self._ftp: ftplib.FTP | None = None
        self._data: Any = None  # the data connection of the transfer under way

    def connect(self) -> None:
        if self._ftp is not None:
            return
        if self.tls:
            ftp: ftplib.FTP = ftplib.FTP_TLS(context=self._tls_context(), timeout=self.timeout)
        else:
            ftp = ftplib.FTP(timeout=self.timeout)
        try:
            self._connect_to(ftp)
            ftp.login(self.user or "anonymous", self.password or "")
            if isinstance(ftp, ftplib.FTP_TLS):
                ftp.prot_p()
            ftp.set_pasv(self.passive)
        except ftplib.error_perm as e:
            _quiet_close(ftp)
            raise TransferError(
                f"{self.scheme}: login to {self.host} refused: {e}", permanent=True
            ) from e
        except _ERRORS as e:
            _quiet_close(ftp)
            raise TransferError(f"{self.scheme}: connecting to {self.host}:{self.port}: {e}") from e
        self._ftp = ftp
        log.debug("%s connected to %s@%s:%s", self.scheme, self.user, self.host, self.port)

    def _connect_to(self, ftp: ftplib.FTP) -> None:
        """Connect the control connection; under an SSRF policy to the address it
        checked (data connections go to the same peer: ftplib ignores the address in a
        PASV reply), the TLS certificate still checked against the host's name."""
        if self.guard is None:
            ftp.connect(self.host, self.port or 21)
            return
        ftp.connect(self.guard.address(self.host, self.port or 21), self.port or 21)
        ftp.host = self.host  # the name FTP_TLS gives as server_hostname

    def _tls_context(self) -> ssl.SSLContext:
        """Verify the server certificate (CA file: option ``cafile``) unless ``tls_verify``."""
        context = ssl.create_default_context(cafile=self.options.get("cafile"))
        if not _flag(self.options.get("tls_verify"), True):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def close(self) -> None:
        ftp, self._ftp = self._ftp, None
        if ftp is not None:
            try:
                ftp.quit()
            except _ERRORS:
                _quiet_close(ftp)

    def _control(self, binary: bool = True) -> ftplib.FTP:
        self.connect()
        assert self._ftp is not None
        if binary:
            # Listing switches to TYPE A (ftplib.retrlines); data and SIZE need TYPE I.
            try:
                self._ftp.voidcmd("TYPE I")
            except _ERRORS as e:
                self._fail(e, "TYPE I")
        return self._ftp

    def _fail(self, e: Exception, what: str, *, broken: bool = False) -> NoReturn:
        if isinstance(e, ftplib.error_perm):
            raise TransferError(f"{self.scheme}: {what}: {e}", permanent=True) from e
        if broken or not isinstance(e, ftplib.error_temp):
            self.close()
        raise TransferError(f"{self.scheme}: {what}: {e}") from e

    def iter_read(self, path: str, offset: int, length: int | None) -> Iterator[bytes]:
        ftp = self._control()
        try:
            conn = ftp.transfercmd(f"RETR {path}", rest=offset or None)
        except _ERRORS as e:
            self._fail(e, f"reading {path}")
        # a whole file: at most one byte more than the caller accepts is asked for
        left = length if length is not None or self.read_limit is None else self.read_limit + 1
        self._data = conn
        try:
            with conn:
                while left is None or left > 0:
                    chunk = conn.recv(
                        self.chunk_size if left is None else min(self.chunk_size, left)
                    )
                    if not chunk:
                        break
                    if left is not None:
                        left -= len(chunk)
                    yield chunk
        except _ERRORS as e:
            self._fail(e, f"reading {path}", broken=True)
        except BaseException:
            self._end_transfer(path, early=True)  # the consumer stopped reading
            raise
        self._end_transfer(path, early=length is not None)

    def abort(self) -> None:
        """Shut the data and control connections down (see Transfer.abort)."""
        for sock in (self._data, getattr(self._ftp, "sock", None)):
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _end_transfer(self, path: str, *, early: bool) -> None:
        """Read the reply that ends a transfer; 426 is expected after stopping early."""
        if self._ftp is None:
            return
        try:
            self._ftp.voidresp()
        except ftplib.error_temp as e:
            if not early:
                self._fail(e, f"reading {path}", broken=True)
        except _ERRORS as e:
            self._fail(e, f"reading {path}", broken=True)

    def write_from(
        self, path: str, chunks: Iterable[bytes], offset: int, *, truncate: bool = True
    ) -> None:
        ftp = self._control()
        try:
            conn = ftp.transfercmd(f"STOR {path}", rest=None if truncate else offset or None)
        except _ERRORS as e:
            self._fail(e, f"writing {path}")
        try:
            with conn:
                for chunk in chunks:
                    conn.sendall(chunk)
                if isinstance(conn, ssl.SSLSocket):
                    conn.unwrap()
        except _ERRORS as e:
            self._fail(e, f"writing {path}", broken=True)
        except BaseException:
            self.close()
            raise
        try:
            ftp.voidresp()
        except _ERRORS as e:
            self._fail(e, f"writing {path}", broken=True)

    def _call(self, what: str, fn: Any, *args: Any, binary: bool = False) -> Any:
        ftp = self._control(binary)
        try:
            return fn(ftp, *args)
        except _ERRORS as e:
            self._fail(e, what)

    def ls(self, path: str) -> list[str]:
        names = self._call(f"listing {path}", ftplib.FTP.nlst, path)
        return sorted({n.rstrip("/").rsplit("/", 1)[-1] for n in names} - {".", "..", ""})

    def mkdir(self, path: str) -> None:
        try:
            self._call(f"mkdir {path}", ftplib.FTP.mkd, path)
        except TransferError:
            # Most servers answer 550 when it exists: accept that if it is a directory.
            current = self._call("pwd", ftplib.FTP.pwd)
            self._call(f"mkdir {path}", ftplib.FTP.cwd, path)
            self._call("cwd", ftplib.FTP.cwd, current)

    def delete(self, path: str) -> None:
        self._call(f"deleting {path}", ftplib.FTP.delete, path)

    def rename(self, old: str, new: str) -> None:
        self._call(f"renaming {old}", ftplib.FTP.rename, old, new)

    def stat(self, path: str) -> int:
        size = self._call(f"stat {path}", ftplib.FTP.size, path, binary=True)
        if size is None:
            raise TransferError(f"{self.scheme}: no size for {path}")
        return int(size)

    def listing(self, path: str) -> Iterator[Entry]:
        """Files and directories of ``path`` from ``MLSD`` (``LIST`` on servers without
        it), read line by line as the server sends them; links are not listed."""
        try:
            yield from self._lines(f"MLSD {path}", mlsd_entry)
        except _NoMlsd:
            yield from self._lines(f"LIST {path}", list_entry)

    def _lines(self, command: str, parse: Any) -> Iterator[Entry]:
        ftp = self._control(binary=False)
        try:
            ftp.voidcmd("TYPE A")
            conn = ftp.transfercmd(command)
        except ftplib.error_perm as e:
            if command.startswith("MLSD") and str(e)[:3] in _UNKNOWN_COMMAND:
                raise _NoMlsd() from e
            self._fail(e, command)
        except _ERRORS as e:
            self._fail(e, command)
        self._data = conn
        try:
            with conn, conn.makefile("r", encoding="utf-8", errors="surrogateescape") as f:
                for line in _bounded_lines(f):
                    entry = parse(line)
                    if entry is not None:
                        yield entry
                if isinstance(conn, ssl.SSLSocket):
                    conn.unwrap()
        except _ERRORS as e:
            self._fail(e, command, broken=True)
        except BaseException:
            self.close()  # stopped mid-listing: the rest of it would confuse the next reply
            raise
        self._end_transfer(command, early=False)

    def chmod(self, path: str, mode: int) -> None:
        self._call(f"chmod {path}", ftplib.FTP.voidcmd, f"SITE CHMOD {mode:o} {path}")

    def utime(self, path: str, mtime: float) -> None:
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(mtime))
        self._call(f"setting times of {path}", ftplib.FTP.voidcmd, f"MFMT {stamp} {path}")


class _NoMlsd(Exception):
    """The server does not implement MLSD."""


def _bounded_lines(f: Any) -> Iterator[str]:
    """The lines of ``f`` without their end; a line over ``_MAX_LINE`` is skipped whole."""
    while True:
        line = f.readline(_MAX_LINE + 1)
        if not line:
            return
        if len(line) > _MAX_LINE and not line.endswith("\n"):
            while line and not line.endswith("\n"):  # the rest of the overlong line
                line = f.readline(_MAX_LINE + 1)
            continue
        yield line.rstrip("\r\n")


def _quiet_close(ftp: ftplib.FTP) -> None:
    try:
        ftp.close()
    except _ERRORS:
        log.debug("ftp: error while closing", exc_info=True)
