"""The on-disk state of an assembly in progress (see ``sarra.flow.assembly``): the state
file of present blocks (``PartsState``, ``flock``-ed), the shape that identifies one
assembly, and the OFD byte-range lock that keeps two writers off one block.

Files are opened relative to a directory fd (``sarra.fs.safefs``) with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

from sarra.core.errors import TransferError
from sarra.fs.safefs import Place, lstat, open_shared, remove_name

log = logging.getLogger(__name__)

MAGIC = "sarra-parts 1"
#: Recorded sum of a block copied from a complete local file (value not known).
LOCAL = "-"

_F_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", 37)


class BlockBusy(TransferError):
    """Another instance is writing this block right now (retry later)."""


@dataclass(frozen=True)
class Spot:
    """A ``Place`` and the (borrowed) fd of its directory."""

    place: Place
    fd: int

    @property
    def name(self) -> str:
        return self.place.name

    @property
    def dir(self) -> str:
        return self.place.dir

    @property
    def path(self) -> Path:
        return self.place.path

    @property
    def state_path(self) -> Path:
        return self.place.path.parent / state_name(self.name)

    def stat(self) -> Optional[os.stat_result]:
        return lstat(self.fd, self.name)

    def unlink(self) -> None:
        remove_name(self.fd, self.name)


@dataclass(frozen=True)
class Shape:
    """What identifies one assembly: file size, block size, block count, post time."""

    size: int
    bsz: int
    count: int
    pubtime: str

    def same_file(self, other: Shape) -> bool:
        return (self.size, self.bsz, self.count) == (other.size, other.bsz, other.count)

    def line(self) -> str:
        return f"{MAGIC} {self.size} {self.bsz} {self.count} {self.pubtime}\n"


def state_path(target: Path) -> Path:
    """The hidden record of present blocks for ``target``."""
    return target.parent / state_name(target.name)


def state_name(name: str) -> str:
    return f".{name}.parts"


class PartsState:
    """The state file, opened and ``flock``-ed for the duration of a ``with`` block.

    ``shape`` is None for a new (empty) file; ``blocks`` maps block number to the sum
    recorded for it.  The file is ``name`` in directory ``dir_fd`` (borrowed); without
    ``dir_fd``, ``path``'s parent is opened (trusted callers).
    """

    def __init__(self, path: Path, dir_fd: Optional[int] = None) -> None:
        self.path = path
        self.fd = -1
        self._dir_fd = dir_fd
        self.shape: Optional[Shape] = None
        self.blocks: Dict[int, str] = {}

    def __enter__(self) -> PartsState:
        own = self._dir_fd is None
        dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY) if own else self._dir_fd
        assert dir_fd is not None
        name = self.path.name
        try:
            while True:
                fd = open_shared(dir_fd, name, os.O_RDWR, 0o644)
                fcntl.flock(fd, fcntl.LOCK_EX)
                # The file may have been deleted (completion) while we waited for the lock.
                st = lstat(dir_fd, name)
                if st is not None and st.st_ino == os.fstat(fd).st_ino:
                    break
                os.close(fd)
        finally:
            if own:
                os.close(dir_fd)
        self.fd = fd
        self._read()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # releases the flock
            self.fd = -1

    def _read(self) -> None:
        raw = os.pread(self.fd, os.fstat(self.fd).st_size, 0).decode("utf-8", "replace")
        end = raw.rfind("\n") + 1
        if end < len(raw):  # a torn last line: never counted, cut off before appending
            os.ftruncate(self.fd, end)
        lines = raw[:end].splitlines()
        self.shape, self.blocks = None, {}
        if not lines:
            return
        head = lines[0].split(" ")
        if " ".join(head[:2]) != MAGIC or len(head) != 6:
            log.warning("%s: unreadable state, starting over", self.path)
            return
        self.shape = Shape(int(head[2]), int(head[3]), int(head[4]), head[5])
        for line in lines[1:]:
            n, _, value = line.partition(" ")
            if n.isdigit() and value:
                self.blocks[int(n)] = value

    def _append(self, text: str) -> None:
        os.lseek(self.fd, 0, os.SEEK_END)
        os.write(self.fd, text.encode("utf-8"))
        os.fsync(self.fd)

    def reset(self, shape: Shape, present: Tuple[int, ...] = ()) -> None:
        """Start a new assembly of ``shape``, with blocks ``present`` marked as local."""
        os.ftruncate(self.fd, 0)
        self._append(shape.line() + "".join(f"{n} {LOCAL}\n" for n in present))
        self.shape, self.blocks = shape, {n: LOCAL for n in present}

    def record(self, n: int, value: str) -> None:
        self._append(f"{n} {value}\n")
        self.blocks[n] = value

    @property
    def complete(self) -> bool:
        return self.shape is not None and len(self.blocks) == self.shape.count

    def remove(self) -> None:
        if self._dir_fd is not None:
            remove_name(self._dir_fd, self.path.name)
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class PositionedWriter:
    """A file-like ``write`` that puts bytes at an advancing offset with ``os.pwrite``."""

    def __init__(self, fd: int, offset: int) -> None:
        self.fd = fd
        self.offset = offset

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            n = os.pwrite(self.fd, view, self.offset)
            self.offset += n
            view = view[n:]
        return len(data)


def range_lock(fd: int, offset: int, length: int, path: Path) -> None:
    """Exclusive OFD lock on ``length`` bytes at ``offset``, without waiting.

    Raises:
        BlockBusy: another open file description holds a lock on those bytes.
    """
    arg = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, offset, max(length, 1), 0)
    try:
        fcntl.fcntl(fd, _F_OFD_SETLK, arg)
    except (BlockingIOError, PermissionError):
        raise BlockBusy(f"{path}: block at {offset} is being written elsewhere") from None
