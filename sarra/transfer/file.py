"""Local-file transfer backend (``file:`` baseurls).

Owns reading and writing local paths at an offset.  ``file:`` with an absolute relpath
(v2's form, spec 4.3) and ``file:///base/`` + relpath both give absolute paths through
:func:`sarra.transfer.remote_path`.  ``OSError`` becomes ``TransferError``: missing
file, permission denied or a directory are permanent, anything else transient.
"""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from typing import Iterable, Iterator

from sarra.core.errors import TransferError
from sarra.transfer import Entry, Transfer, read_chunks

__all__ = ["FileTransfer"]

_PERMANENT = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR}


def _error(e: OSError, what: str) -> TransferError:
    permanent = e.errno in _PERMANENT
    return TransferError(f"file: {what} failed: {e.strerror or e}", permanent=permanent)


class FileTransfer(Transfer):
    """Reads and writes local files; nothing to connect."""

    scheme = "file"

    def __init__(self, baseurl: str, **kwargs: object) -> None:
        super().__init__(baseurl, **kwargs)  # type: ignore[arg-type]
        if self.host not in ("", "localhost"):
            raise TransferError(f"file: remote host {self.host!r} not supported", permanent=True)

    def iter_read(self, path: str, offset: int, length: int | None) -> Iterator[bytes]:
        most = length if length is not None or self.read_limit is None else self.read_limit + 1
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                yield from read_chunks(f, most, self.chunk_size)
        except OSError as e:
            raise _error(e, f"reading {path}") from e

    def write_from(
        self, path: str, chunks: Iterable[bytes], offset: int, *, truncate: bool = True
    ) -> None:
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if truncate else 0)
        try:
            fd = os.open(path, flags, 0o666)
            with os.fdopen(fd, "wb") as f:
                f.seek(offset)
                for chunk in chunks:
                    f.write(chunk)
        except OSError as e:
            raise _error(e, f"writing {path}") from e

    def ls(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except OSError as e:
            raise _error(e, f"listing {path}") from e

    def mkdir(self, path: str) -> None:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            raise _error(e, f"mkdir {path}") from e

    def delete(self, path: str) -> None:
        try:
            os.unlink(path)
        except OSError as e:
            raise _error(e, f"deleting {path}") from e

    def rename(self, old: str, new: str) -> None:
        try:
            os.replace(old, new)
        except OSError as e:
            raise _error(e, f"renaming {old}") from e

    def stat(self, path: str) -> int:
        try:
            return os.stat(path).st_size
        except OSError as e:
            raise _error(e, f"stat {path}") from e

    def listing(self, path: str) -> Iterator[Entry]:
        """Regular files and directories of ``path``; links are neither followed nor
        listed (a link could lead out of the polled tree)."""
        try:
            with os.scandir(path) as entries:
                for e in entries:
                    st = e.stat(follow_symlinks=False)
                    if stat_mod.S_ISDIR(st.st_mode):
                        yield Entry(e.name, is_dir=True)
                    elif stat_mod.S_ISREG(st.st_mode):
                        line = f"{st.st_size} {st.st_mtime_ns}"
                        yield Entry(e.name, False, st.st_size, st.st_mtime, line)
        except OSError as e:
            raise _error(e, f"listing {path}") from e

    def chmod(self, path: str, mode: int) -> None:
        try:
            os.chmod(path, mode)
        except OSError as e:
            raise _error(e, f"chmod {path}") from e

    def utime(self, path: str, mtime: float) -> None:
        try:
            os.utime(path, (mtime, mtime), follow_symlinks=False)
        except OSError as e:
            raise _error(e, f"setting times of {path}") from e
