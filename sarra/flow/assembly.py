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

Every file here is reached through ``sarra.fs.safefs``: directory fds walked without
following links out of the tree; the shared temporary and state files opened with
``O_NOFOLLOW`` relative to them (a planted link, FIFO or hard link there is removed,
never opened through); mode and times set through the fd.

Linux only (OFD locks).
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from typing import Any, Callable, Optional, Tuple

from sarra.config.loader import Options
from sarra.core import checksum, partition
from sarra.core.delivery import Delivery
from sarra.core.errors import (
    ChecksumMismatch,
    HookError,
    MessageError,
    SarraError,
    TransferError,
)
from sarra.core.partition import Parts
from sarra.flow.download import VERIFIABLE, apply_metadata, open_inflight, place_of, sum_at
from sarra.fs.partstate import (
    LOCAL,
    BlockBusy,
    PartsState,
    PositionedWriter,
    Shape,
    Spot,
    range_lock,
    state_path,
)
from sarra.fs.safefs import (
    NEW_FILE,
    Dirs,
    Place,
    inflight_place,
    open_regular,
    open_shared,
    remove_name,
)
from sarra.logs.progress import Progress
from sarra.transfer import remote_path

log = logging.getLogger(__name__)


def _split(sum_header: str) -> Tuple[str, str]:
    method, _, value = sum_header.partition(",")
    return method, value


def _sum_flag(sum_header: str) -> str:
    method, value = _split(sum_header)
    return f"z,{value}" if method == "z" else method


class Assembler:
    """Places the blocks of partitioned files; see the module docstring.

    ``transfers`` is a ``sarra.transfer.TransferPool``; ``progress`` (a
    ``sarra.logs.progress.Progress``) is told of each block fetched and of its bytes;
    ``after_part``/``after_file`` run the ``on_part``/``on_file`` hooks.
    """

    def __init__(
        self,
        options: Options,
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
        self.dirs = Dirs()
        self.inplace = options.inplace
        inflight = options.inflight
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
        place = place_of(d)
        if parts.method == "p":
            split = partition.parse_part_name(place.name)
            if split is None:
                raise MessageError(f"p post without a part file name: {d.notice.relpath}")
            place = place.with_name(split[0])
            d.place, d.local_path = place, place.path
        self._inplace(d, parts, self._spot(place))

    def _spot(self, place: Place) -> Spot:
        return Spot(place, self.dirs.open(place.root, place.dir))

    # ---------------------------------------------------------------- inplace on
    def _inplace(self, d: Delivery, parts: Parts, target: Spot) -> None:
        tmp_place = inflight_place(target.place, self.inflight)
        tmp = Spot(tmp_place, target.fd) if tmp_place.dir == target.dir else self._spot(tmp_place)
        shape = Shape(parts.size, parts.bsz, parts.count, d.notice.pubtime)
        fd = -1
        with PartsState(target.state_path, target.fd) as st:
            action = self._decide(d, parts, target, tmp, shape, st)
            if action == "fetch":
                fd = open_shared(tmp.fd, tmp.name, os.O_WRONLY, self._mode())
                try:
                    range_lock(fd, parts.offset, parts.length, tmp.path)
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
            log.info("assembled %s (%d blocks)", target.path, parts.count)
            self._run(self.after_file, d)

    def _decide(
        self, d: Delivery, parts: Parts, target: Spot, tmp: Spot, shape: Shape, st: PartsState
    ) -> str:
        """Under the state lock: ``fetch`` the block, or settle ``d`` now."""
        if st.shape is None:
            return self._start(d, parts, target, tmp, shape, st)
        if not st.shape.same_file(shape):
            if shape.pubtime < st.shape.pubtime:
                d.reject(f"block of an older version of {target.path} (superseded)")
                return "done"
            log.info("%s changed size or block size: assembly starts over", target.path)
            tmp.unlink()
            st.reset(shape)
            return "fetch"
        if tmp.stat() is None:
            if st.complete and target.stat() is not None:
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
        self, d: Delivery, parts: Parts, target: Spot, tmp: Spot, shape: Shape, st: PartsState
    ) -> str:
        """No assembly in progress: new file, or one block of a complete file."""
        have = target.stat()
        if have is not None and stat.S_ISREG(have.st_mode) and have.st_size == parts.size:
            if self._matches(d, parts, target):
                st.remove()
                d.ok(304, "Not modified: block already present")
                return "done"
            log.info("block %d of complete %s changed: re-placing it", parts.n, target.path)
            _copy(target, tmp)
            st.reset(shape, tuple(n for n in range(parts.count) if n != parts.n))
            return "fetch"
        tmp.unlink()
        st.reset(shape)
        return "fetch"

    def _duplicate(self, d: Delivery) -> str:
        d.ok(304, "Not modified: block already present")
        return "done"

    def _write_block(self, d: Delivery, parts: Parts, target: Spot, tmp: Spot, fd: int) -> bool:
        """Fetch into ``fd`` at the block's offset, verify, fsync, record.  True: completed."""
        value = self._fetch(d, parts, PositionedWriter(fd, parts.offset))
        os.fsync(fd)
        with PartsState(target.state_path, target.fd) as st:
            now = tmp.stat()
            current = now is not None and now.st_ino == os.fstat(fd).st_ino
            if not current or st.shape is None or st.shape.size != parts.size:
                raise TransferError(
                    f"assembly of {target.path} was restarted; block {parts.n} again"
                )
            st.record(parts.n, value)
            if not st.complete:
                return False
            self._complete(d, target, tmp, fd, st)
        return True

    def _complete(self, d: Delivery, target: Spot, tmp: Spot, fd: int, st: PartsState) -> None:
        assert st.shape is not None
        size = os.fstat(fd).st_size
        if size < st.shape.size:
            st.reset(st.shape)
            raise TransferError(
                f"{tmp.path}: {size} bytes, expected {st.shape.size}; starting over"
            )
        if size > st.shape.size:
            os.ftruncate(fd, st.shape.size)
        apply_metadata(
            fd,
            d.notice,
            preserve_time=self.o.preserve_time,
            preserve_mode=self.o.preserve_mode,
        )
        os.fsync(fd)
        os.replace(tmp.name, target.name, src_dir_fd=tmp.fd, dst_dir_fd=target.fd)
        st.remove()

    # ---------------------------------------------------------------- inplace off
    def _part_file(self, d: Delivery, parts: Parts) -> None:
        place = place_of(d)
        sum_header = d.notice.headers.get("sum", "")
        relpath = d.notice.relpath
        if parts.method != "p":
            suffix = partition.part_suffix(parts, _sum_flag(sum_header))
            place = place.with_name(place.name + suffix)
            relpath += suffix
        part = self._spot(place)
        d.place, d.local_path = place, place.path
        d.post_notice = d.notice.replace(relpath=relpath).with_headers(
            parts=parts.with_method("p").header()
        )
        have = part.stat()
        if have is not None and stat.S_ISREG(have.st_mode) and have.st_size == parts.length:
            if self._matches(d, parts, part, whole=True):
                d.ok(304, "Not modified: part already present")
                return
        tmp = part.name + ".tmp"
        with open_inflight(part.fd, tmp) as f:
            try:
                self._fetch(d, parts, f)
                f.flush()
                os.fchmod(f.fileno(), self._mode())
                os.fsync(f.fileno())
            except BaseException:
                remove_name(part.fd, tmp)
                raise
        os.replace(tmp, part.name, src_dir_fd=part.fd, dst_dir_fd=part.fd)
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

    def _matches(self, d: Delivery, parts: Parts, spot: Spot, whole: bool = False) -> bool:
        """Do the local bytes of this block equal the announced (verifiable) sum?"""
        method, value = _split(d.notice.headers.get("sum", ""))
        if method not in VERIFIABLE or not value:
            return False
        offset = 0 if whole else parts.offset
        return sum_at(spot.fd, spot.name, method, offset, parts.length) == value

    def _mode(self) -> int:
        return self.o.chmod or 0o644

    def _run(self, hook: Callable[[Delivery], None], d: Delivery) -> None:
        try:
            hook(d)
        except HookError as e:
            log.error("%s (block %s of %s is in place)", e, d.notice.headers.get("parts"), d)


def _copy(src: Spot, dst: Spot) -> None:
    """A new ``dst`` (``O_EXCL|O_NOFOLLOW``, whatever was there removed) with the bytes of
    the regular file ``src``."""
    dst.unlink()
    fin = open_regular(src.fd, src.name, os.O_RDONLY, single_link=False)
    try:
        out = os.open(dst.name, NEW_FILE, 0o644, dir_fd=dst.fd)
        with open(fin, "rb", closefd=False) as a, open(out, "wb") as b:
            shutil.copyfileobj(a, b, 1 << 20)
    finally:
        os.close(fin)


def part_hooks(hooks: Any) -> Callable[[Delivery], None]:
    """``on_part`` runner for a ``HookSet``: a failing hook is logged, the block stays."""

    def run(d: Delivery) -> None:
        try:
            hooks.emit("on_part", d)
        except SarraError as e:  # a HookError, or a path a plugin's view refused
            log.error("%s (block of %s is in place)", e, d.local_path)

    return run


__all__ = ["Assembler", "BlockBusy", "PartsState", "Shape", "part_hooks", "state_path"]
