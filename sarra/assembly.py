"""Receiving partitioned files (spec 7.5, 7.6): fetch one block, place it, complete once.

The ``Downloader`` hands every ``i``/``p`` post here through ``Assembler.block``.

**inplace on** (the default).  Every block is written at its offset into ONE temporary
file next to the target (the ``inflight`` name, ``<target>.tmp`` by default), opened
without truncation and written with positioned writes, so the ``instances`` of a config
fill different blocks of the same file at the same time.  Which blocks are present is
recorded in a hidden state file ``.<name>.parts`` next to the target: a header line
``sarra-parts 1 <size> <bsz> <count> <pubtime>`` then one ``<n> <sum>`` line per block,
appended only after that block's bytes were written, checked against the announced
checksum and fsync'd.  A kill -9 therefore never loses a finished block (its line is
on disk) and never counts an unfinished one (no line; the unacknowledged message comes
back and the block is fetched again).  A torn last line is ignored and cut off.

Coordination between instances on this host uses two kinds of lock, both released by
the kernel when a process dies:

* ``flock`` on the state file serialises every decision (is block *n* present? record
  it; is the file complete?).  It is never held during a transfer.
* an OFD byte-range lock on the block's bytes of the temporary file, taken (without
  waiting) under the state lock and held while the block is fetched and recorded, so
  two deliveries of the same block never write it at once: the second one fails with
  a retryable error and, on its retry, finds the block present.

**Completion, exactly once.**  The instance whose record makes the set complete does,
still under the state lock: check the size (cutting a longer file), apply mtime and
mode, rename the temporary file to the target and delete the state file.  Only that
instance runs ``after_file`` (the ``on_file`` hooks).  Every block reports ``201`` and
runs ``after_part`` (the ``on_part`` hooks); a block already present reports ``304``.
Should a crash fall between the rename and the deletion of the state file, the next
delivery of any block finds all blocks present and the target in place, and completes
(hooks included) then.

**Changed block of a complete file.**  A block post for a target that is already
complete (same size, no state file) is compared with the local bytes: equal gives
``304``; different makes a new temporary copy of the target with every other block
marked present, writes the new block into it and completes again (rename, ``on_file``).
The file under the final name is never written in place.  A post announcing another
size or block size starts a new assembly, unless it is older (``pubtime``) than the one
in progress, in which case it is rejected as superseded.

**inplace off.**  Each block is stored as its own part file ``<name><suffix>`` (spec
7.6, ``.<bsz>.<count>.<rem>.<n>.<sumflag>.Part``), written to ``<part>.tmp`` and
renamed once verified; nothing is reassembled (as v2 pumps do, spec 7.5) and
``on_file`` never runs.  The post sent downstream names the part file with method
``p`` (spec 7.7).

Linux only (OFD locks).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

from sarra import checksum, partition
from sarra.delivery import Delivery
from sarra.download import VERIFIABLE, apply_metadata, file_sum
from sarra.errors import ChecksumMismatch, HookError, MessageError, TransferError
from sarra.partition import Parts
from sarra.placement import inflight_path
from sarra.progress import Progress
from sarra.transfer import remote_path

log = logging.getLogger(__name__)

MAGIC = "sarra-parts 1"
#: Recorded sum of a block copied from a complete local file (value not known).
LOCAL = "-"

_F_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", 37)


class BlockBusy(TransferError):
    """Another instance is writing this block right now (retry later)."""


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
    return target.parent / f".{target.name}.parts"


class PartsState:
    """The state file, opened and ``flock``-ed for the duration of a ``with`` block.

    ``shape`` is None for a new (empty) file; ``blocks`` maps block number to the sum
    recorded for it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1
        self.shape: Optional[Shape] = None
        self.blocks: Dict[int, str] = {}

    def __enter__(self) -> PartsState:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            # The file may have been deleted (completion) while we waited for the lock.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
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
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class _PositionedWriter:
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


def _range_lock(fd: int, offset: int, length: int, path: Path) -> None:
    """Exclusive OFD lock on ``length`` bytes at ``offset``, without waiting.

    Raises:
        BlockBusy: another open file description holds a lock on those bytes.
    """
    arg = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, offset, max(length, 1), 0)
    try:
        fcntl.fcntl(fd, _F_OFD_SETLK, arg)
    except (BlockingIOError, PermissionError):
        raise BlockBusy(f"{path}: block at {offset} is being written elsewhere") from None


def _split(sum_header: str) -> Tuple[str, str]:
    method, _, value = sum_header.partition(",")
    return method, value


def _sum_flag(sum_header: str) -> str:
    method, value = _split(sum_header)
    return f"z,{value}" if method == "z" else method


class Assembler:
    """Places the blocks of partitioned files; see the module docstring.

    ``transfers`` is a ``sarra.transfer.TransferPool``; ``progress`` (a
    ``sarra.progress.Progress``) is told of each block fetched and of its bytes;
    ``after_part``/``after_file`` run the ``on_part``/``on_file`` hooks.
    """

    def __init__(
        self,
        options: Any,
        *,
        transfers: Any,
        progress: Optional[Progress] = None,
        after_part: Callable[[Delivery], None] = lambda d: None,
        after_file: Callable[[Delivery], None] = lambda d: None,
    ) -> None:
        self.o = options
        self.transfers = transfers
        self.progress = progress if progress is not None else Progress()
        self.after_part = after_part
        self.after_file = after_file
        self.inplace = bool(getattr(options, "inplace", True))
        inflight = getattr(options, "inflight", ".tmp")
        self.inflight = inflight if isinstance(inflight, str) and inflight != "NONE" else ".tmp"

    def block(self, d: Delivery, parts: Parts) -> None:
        """Fetch and place the block announced by ``d``; sets ``d``'s outcome.

        Raises:
            ChecksumMismatch: the block's bytes do not match the announced sum (nothing
                is recorded; the block is fetched again on retry).
            BlockBusy: another instance is writing the same block.
            TransferError: the fetch failed, or the assembly was restarted meanwhile.
            MessageError: a ``p`` post whose name is not a part file name.
        """
        assert d.local_path is not None
        if not self.inplace:
            self._part_file(d, parts)
            return
        target = d.local_path
        if parts.method == "p":
            split = partition.parse_part_name(target.name)
            if split is None:
                raise MessageError(f"p post without a part file name: {d.notice.relpath}")
            target = target.parent / split[0]
            d.local_path = target
        target.parent.mkdir(parents=True, exist_ok=True)
        self._inplace(d, parts, target)

    # ---------------------------------------------------------------- inplace on
    def _inplace(self, d: Delivery, parts: Parts, target: Path) -> None:
        tmp = inflight_path(target, self.inflight)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        shape = Shape(parts.size, parts.bsz, parts.count, d.notice.pubtime)
        fd = -1
        with PartsState(state_path(target)) as st:
            action = self._decide(d, parts, target, tmp, shape, st)
            if action == "fetch":
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, self._mode())
                try:
                    _range_lock(fd, parts.offset, parts.length, tmp)
                except BlockBusy:
                    os.close(fd)
                    raise
        if action == "finished":
            d.ok(201, "Downloaded")
            self._run(self.after_file, d)
            return
        if action != "fetch":
            return
        try:
            completed = self._write_block(d, parts, target, tmp, fd)
        finally:
            os.close(fd)  # releases the range lock
        d.ok(201, "Downloaded")
        self._run(self.after_part, d)
        if completed:
            log.info("assembled %s (%d blocks)", target, parts.count)
            self._run(self.after_file, d)

    def _decide(
        self, d: Delivery, parts: Parts, target: Path, tmp: Path, shape: Shape, st: PartsState
    ) -> str:
        """Under the state lock: ``fetch`` the block, or settle ``d`` now."""
        if st.shape is None:
            return self._start(d, parts, target, tmp, shape, st)
        if not st.shape.same_file(shape):
            if shape.pubtime < st.shape.pubtime:
                d.reject(f"block of an older version of {target} (superseded)")
                return "done"
            log.info("%s changed size or block size: assembly starts over", target)
            _unlink(tmp)
            st.reset(shape)
            return "fetch"
        if not tmp.exists():
            if st.complete and target.exists():
                st.remove()  # a crash came between the rename and the state removal
                return "finished"
            st.reset(shape)
            return "fetch"
        have = st.blocks.get(parts.n)
        if have is None:
            return "fetch"
        if have == d.notice.headers.get("sum", "") or (
            have == LOCAL and self._matches(d, parts, tmp)
        ):
            return self._duplicate(d)
        return "fetch"  # a changed block: fetch and record it again

    def _start(
        self, d: Delivery, parts: Parts, target: Path, tmp: Path, shape: Shape, st: PartsState
    ) -> str:
        """No assembly in progress: new file, or one block of a complete file."""
        if target.is_file() and target.stat().st_size == parts.size:
            if self._matches(d, parts, target):
                st.remove()
                d.ok(304, "Not modified: block already present")
                return "done"
            log.info("block %d of complete %s changed: re-placing it", parts.n, target)
            shutil.copyfile(target, tmp)
            st.reset(shape, tuple(n for n in range(parts.count) if n != parts.n))
            return "fetch"
        _unlink(tmp)
        st.reset(shape)
        return "fetch"

    def _duplicate(self, d: Delivery) -> str:
        d.ok(304, "Not modified: block already present")
        return "done"

    def _write_block(self, d: Delivery, parts: Parts, target: Path, tmp: Path, fd: int) -> bool:
        """Fetch into ``fd`` at the block's offset, verify, fsync, record.  True: completed."""
        value = self._fetch(d, parts, _PositionedWriter(fd, parts.offset))
        os.fsync(fd)
        with PartsState(state_path(target)) as st:
            try:
                current = os.stat(tmp).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if not current or st.shape is None or st.shape.size != parts.size:
                raise TransferError(f"assembly of {target} was restarted; block {parts.n} again")
            st.record(parts.n, value)
            if not st.complete:
                return False
            self._complete(d, target, tmp, fd, st)
        return True

    def _complete(self, d: Delivery, target: Path, tmp: Path, fd: int, st: PartsState) -> None:
        assert st.shape is not None
        size = os.fstat(fd).st_size
        if size < st.shape.size:
            st.reset(st.shape)
            raise TransferError(f"{tmp}: {size} bytes, expected {st.shape.size}; starting over")
        if size > st.shape.size:
            os.ftruncate(fd, st.shape.size)
        os.fsync(fd)
        apply_metadata(
            tmp,
            d.notice,
            preserve_time=getattr(self.o, "preserve_time", True),
            preserve_mode=getattr(self.o, "preserve_mode", True),
        )
        os.replace(tmp, target)
        st.remove()

    # ---------------------------------------------------------------- inplace off
    def _part_file(self, d: Delivery, parts: Parts) -> None:
        assert d.local_path is not None
        sum_header = d.notice.headers.get("sum", "")
        relpath = d.notice.relpath
        if parts.method == "p":
            part = d.local_path
        else:
            suffix = partition.part_suffix(parts, _sum_flag(sum_header))
            part = d.local_path.parent / (d.local_path.name + suffix)
            relpath += suffix
        part.parent.mkdir(parents=True, exist_ok=True)
        d.local_path = part
        d.post_notice = d.notice.replace(relpath=relpath).with_headers(
            parts=parts.with_method("p").header()
        )
        if part.is_file() and part.stat().st_size == parts.length:
            if self._matches(d, parts, part, whole=True):
                d.ok(304, "Not modified: part already present")
                return
        tmp = part.parent / (part.name + ".tmp")
        with open(tmp, "wb") as f:
            try:
                self._fetch(d, parts, f)
                f.flush()
                os.fsync(f.fileno())
            except BaseException:
                _unlink(tmp)
                raise
        os.chmod(tmp, self._mode())
        os.replace(tmp, part)
        d.ok(201, "Downloaded")
        self._run(self.after_part, d)

    # ---------------------------------------------------------------- shared
    def _fetch(self, d: Delivery, parts: Parts, dest: Any) -> str:
        """Copy the block into ``dest``, checking its sum; returns the sum to record.

        Raises:
            ChecksumMismatch: the bytes differ from the announced block sum.
        """
        n = d.notice
        sum_header = n.headers.get("sum", "")
        method, value = _split(sum_header)
        algo = value if method == "z" else method
        sums = [checksum.new(algo)] if algo in VERIFIABLE else []
        offset = parts.offset if parts.method == "i" else 0
        assert d.local_path is not None
        self.progress.start(f"{d.local_path.name} [{parts.n + 1}/{parts.count}]", parts.length)
        try:
            got = self.transfers.get(n.baseurl).get(
                remote_path(n.baseurl, n.relpath),
                dest,
                offset=offset,
                length=parts.length,
                sums=sums,
                progress=self.progress.add,
            )
        finally:
            self.progress.done()
        d.size = got
        if method in VERIFIABLE and sums[0].value() != value:
            raise ChecksumMismatch(
                f"checksum mismatch for block {parts.n} of {n.relpath}: announced "
                f"{method},{value[:16]}..., received {sums[0].value()[:16]}...",
                expected=value,
                actual=sums[0].value(),
            )
        return sum_header or "?"

    def _matches(self, d: Delivery, parts: Parts, path: Path, whole: bool = False) -> bool:
        """Do the local bytes of this block equal the announced (verifiable) sum?"""
        method, value = _split(d.notice.headers.get("sum", ""))
        if method not in VERIFIABLE or not value:
            return False
        offset = 0 if whole else parts.offset
        return file_sum(path, method, offset, parts.length) == value

    def _mode(self) -> int:
        return int(getattr(self.o, "chmod", 0o644) or 0o644)

    def _run(self, hook: Callable[[Delivery], None], d: Delivery) -> None:
        try:
            hook(d)
        except HookError as e:
            log.error("%s (block %s of %s is in place)", e, d.notice.headers.get("parts"), d)


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def part_hooks(hooks: Any) -> Callable[[Delivery], None]:
    """``on_part`` runner for a ``HookSet``: a failing hook is logged, the block stays."""

    def run(d: Delivery) -> None:
        try:
            hooks.emit("on_part", d)
        except HookError as e:
            log.error("%s (block of %s is in place)", e, d.local_path)

    return run


__all__ = ["Assembler", "BlockBusy", "PartsState", "Shape", "part_hooks", "state_path"]
