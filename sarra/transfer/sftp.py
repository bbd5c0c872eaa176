"""SFTP transfer backend on ``paramiko``.

Owns the SSH connection (``SSHClient`` with host key checking: the ``known_hosts``
credentials option, else ``~/.ssh/known_hosts``; unknown hosts are rejected, never
auto-added), key (``keyfile`` / ``ssh_keyfile``) or password authentication, and file
operations by absolute server path.  Whole-file reads use paramiko's prefetch for speed;
block reads seek.

Errors: unknown or changed host key and failed authentication are permanent, as are
missing files and permission denied; network and protocol failures are transient and
drop the connection so the next use reconnects.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat as stat_mod
from typing import Any, Iterable, Iterator, NoReturn

import paramiko

from sarra.core.errors import TransferError
from sarra.transfer import Entry, Transfer, read_chunks

__all__ = ["SftpTransfer"]

log = logging.getLogger(__name__)

_PERMANENT_ERRNO = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR}
# Bound paramiko's read-ahead: requests in flight, 32 KiB each.
_PREFETCH_REQUESTS = 64
# Directory reads in flight while listing (each answer holds up to ~100 names).
_LIST_READ_AHEADS = 16


class UnknownHostKey(paramiko.SSHException):
    """The server's host key is not in the known_hosts file."""


class _Reject(paramiko.RejectPolicy):
    def missing_host_key(self, client: Any, hostname: str, key: Any) -> NoReturn:
        raise UnknownHostKey(f"host key of {hostname} not found in known_hosts")


class SftpTransfer(Transfer):
    """Reads and writes files over one SSH connection and SFTP channel."""

    scheme = "sftp"

    def __init__(self, baseurl: str, **kwargs: Any) -> None:
        super().__init__(baseurl, **kwargs)
        self.port = self.port or 22
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    def connect(self) -> None:
        if self._sftp is not None:
            return
        client = paramiko.SSHClient()
        try:
            known_hosts = self.options.get("known_hosts")
            if known_hosts:
                client.load_host_keys(os.path.expanduser(known_hosts))
            else:
                client.load_system_host_keys()
            client.set_missing_host_key_policy(_Reject())
            pkey = self._load_key()
            explicit = bool(pkey or self.password)
            client.connect(
                self.host,
                sock=self._guarded_socket(),
                port=self.port,
                username=self.user,
                password=self.password,
                pkey=pkey,
                timeout=self.timeout,
                banner_timeout=self.timeout,
                auth_timeout=self.timeout,
                allow_agent=not explicit,
                look_for_keys=not explicit,
            )
            sftp = client.open_sftp()
            sftp.get_channel().settimeout(self.timeout)
        except (
            paramiko.BadHostKeyException,
            paramiko.AuthenticationException,
            UnknownHostKey,
        ) as e:
            client.close()
            raise TransferError(f"sftp: {self.user}@{self.host}: {e}", permanent=True) from e
        except (paramiko.SSHException, OSError, EOFError) as e:
            client.close()
            raise TransferError(f"sftp: connecting to {self.host}:{self.port}: {e}") from e
        self._client, self._sftp = client, sftp
        log.debug("sftp connected to %s@%s:%s", self.user, self.host, self.port)

    def _guarded_socket(self) -> Any:
        """Under an SSRF policy, a socket connected to the address the policy checked
        (paramiko still checks the host key under the host's name); else None."""
        if self.guard is None:
            return None
        port = self.port or 22
        address = self.guard.address(self.host, port)
        return socket.create_connection((address, port), timeout=self.timeout)

    def abort(self) -> None:
        """Shut the SSH connection's socket down (see Transfer.abort)."""
        client = self._client
        transport = client.get_transport() if client is not None else None
        sock = getattr(transport, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _load_key(self) -> paramiko.PKey | None:
        """Load the private key named by ``keyfile`` (or option ``ssh_keyfile``)."""
        keyfile = self.keyfile or self.options.get("ssh_keyfile")
        if not keyfile:
            return None
        try:
            passphrase = self.options.get("passphrase")
            return paramiko.PKey.from_path(os.path.expanduser(keyfile), passphrase)
        except (paramiko.SSHException, OSError, ValueError) as e:
            raise TransferError(f"sftp: cannot load key {keyfile}: {e}", permanent=True) from e

    def close(self) -> None:
        sftp, client = self._sftp, self._client
        self._sftp = self._client = None
        for thing in (sftp, client):
            if thing is not None:
                try:
                    thing.close()
                except (paramiko.SSHException, OSError, EOFError):
                    log.debug("sftp: error while closing", exc_info=True)

    def _channel(self) -> paramiko.SFTPClient:
        self.connect()
        assert self._sftp is not None
        return self._sftp

    def _fail(self, e: Exception, what: str) -> NoReturn:
        code = getattr(e, "errno", None)
        if isinstance(e, OSError) and code in _PERMANENT_ERRNO:
            raise TransferError(f"sftp: {what}: {e.strerror or e}", permanent=True) from e
        if not (isinstance(e, OSError) and code is not None):
            self.close()  # the session may be broken; reconnect on next use
        raise TransferError(f"sftp: {what}: {e}") from e

    def iter_read(self, path: str, offset: int, length: int | None) -> Iterator[bytes]:
        sftp = self._channel()
        # a whole file: at most one byte more than the caller accepts is asked for
        most = length if length is not None or self.read_limit is None else self.read_limit + 1
        try:
            with sftp.open(path, "rb") as f:
                if offset == 0 and length is None:
                    size = f.stat().st_size or 0
                    f.prefetch(size if most is None else min(size, most), _PREFETCH_REQUESTS)
                else:
                    f.seek(offset)
                yield from read_chunks(f, most, self.chunk_size)
        except (OSError, EOFError, paramiko.SSHException, paramiko.SFTPError) as e:
            self._fail(e, f"reading {path}")

    def write_from(
        self, path: str, chunks: Iterable[bytes], offset: int, *, truncate: bool = True
    ) -> None:
        sftp = self._channel()
        try:
            if truncate:
                f = sftp.open(path, "wb")
            else:
                try:
                    f = sftp.open(path, "r+b")
                except FileNotFoundError:
                    f = sftp.open(path, "wb")
            with f:
                f.set_pipelined(True)
                f.seek(offset)
                for chunk in chunks:
                    f.write(chunk)
        except (OSError, EOFError, paramiko.SSHException, paramiko.SFTPError) as e:
            self._fail(e, f"writing {path}")

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        sftp = self._channel()
        try:
            return fn(sftp, *args)
        except (OSError, EOFError, paramiko.SSHException, paramiko.SFTPError) as e:
            self._fail(e, what)

    def ls(self, path: str) -> list[str]:
        return sorted(self._call(f"listing {path}", paramiko.SFTPClient.listdir, path))

    def mkdir(self, path: str) -> None:
        sftp = self._channel()
        try:
            if stat_mod.S_ISDIR(sftp.stat(path).st_mode or 0):
                return
        except FileNotFoundError:
            pass
        except (OSError, EOFError, paramiko.SSHException) as e:
            self._fail(e, f"mkdir {path}")
        self._call(f"mkdir {path}", paramiko.SFTPClient.mkdir, path)

    def delete(self, path: str) -> None:
        self._call(f"deleting {path}", paramiko.SFTPClient.remove, path)

    def rename(self, old: str, new: str) -> None:
        self._call(f"renaming {old}", paramiko.SFTPClient.posix_rename, old, new)

    def stat(self, path: str) -> int:
        return int(self._call(f"stat {path}", paramiko.SFTPClient.stat, path).st_size or 0)

    def listing(self, path: str) -> Iterator[Entry]:
        """Regular files and directories of ``path``, streamed as the server answers
        (``listdir_iter``); links are neither followed nor listed."""
        sftp = self._channel()
        try:
            for a in sftp.listdir_iter(path, read_aheads=_LIST_READ_AHEADS):
                mode = a.st_mode or 0
                if stat_mod.S_ISDIR(mode):
                    yield Entry(a.filename, is_dir=True)
                elif stat_mod.S_ISREG(mode):
                    size, mtime = a.st_size or 0, a.st_mtime
                    yield Entry(a.filename, False, size, mtime, f"{size} {mtime}")
        except (OSError, EOFError, UnicodeError, paramiko.SSHException, paramiko.SFTPError) as e:
            if isinstance(e, UnicodeError):
                self.close()  # the answers still due would confuse the next request
            self._fail(e, f"listing {path}")

    def chmod(self, path: str, mode: int) -> None:
        self._call(f"chmod {path}", paramiko.SFTPClient.chmod, path, mode)

    def utime(self, path: str, mtime: float) -> None:
        self._call(f"setting times of {path}", paramiko.SFTPClient.utime, path, (mtime, mtime))
