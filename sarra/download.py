"""The work step of dd_subscribe and dd_sara: bring a notice's file (or block) home.

A whole file is written to its inflight name while its checksum is computed, checked
(size and sum), given its announced times and mode, and only then renamed to its final
name.  A wrong checksum is never placed.  Removals (``R``), symbolic links (``L``) and
renames (``newname``/``oldname``) are applied locally.  Blocks of partitioned files are
handed to ``sarra.assembly``.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from pathlib import Path
from typing import Any, Callable, Optional

from sarra import checksum, partition
from sarra.delivery import Delivery
from sarra.errors import ChecksumMismatch, MessageError, TransferError
from sarra.message import Notice, parse_time, split_sum
from sarra.placement import inflight_path
from sarra.progress import Progress
from sarra.transfer import read_chunks, remote_base

log = logging.getLogger(__name__)

VERIFIABLE = ("d", "s")


def file_sum(path: Path, method: str, offset: int = 0, length: Optional[int] = None) -> str:
    """Checksum of local bytes, streamed."""
    c = checksum.new(method)
    with open(path, "rb") as f:
        f.seek(offset)
        for chunk in read_chunks(f, length, 1 << 20):
            c.update(chunk)
    return c.value()


def apply_metadata(path: Path, notice: Notice, *, preserve_time: bool, preserve_mode: bool) -> None:
    h = notice.headers
    if preserve_mode and h.get("mode"):
        try:
            os.chmod(path, int(h["mode"], 8) & 0o777)
        except ValueError:
            log.debug("ignoring bad mode header %r", h["mode"])
    if preserve_time and h.get("mtime"):
        try:
            mtime = parse_time(h["mtime"])
            atime_text = h.get("atime")
            atime = parse_time(atime_text) if atime_text and atime_text != h["mtime"] else mtime
            os.utime(path, (atime, mtime))
        except MessageError:
            log.debug("ignoring bad time header %r", h["mtime"])


class Downloader:
    """Callable work step.  ``locate(delivery)`` sets ``delivery.local_path``.

    ``transfers`` is a ``sarra.transfer.TransferPool``; ``progress`` (a
    ``sarra.progress.Progress``) is told of each fetch and of its bytes as they stream
    (it keeps broker heartbeats alive and draws a progress line on a terminal);
    ``after_file(delivery)`` runs the on_file hooks.
    """

    def __init__(
        self,
        options: Any,
        *,
        locate: Callable[[Delivery], None],
        transfers: Any,
        progress: Optional[Progress] = None,
        after_file: Callable[[Delivery], None] = lambda d: None,
        assembler: Any = None,
    ) -> None:
        self.o = options
        self.locate = locate
        self.transfers = transfers
        self.progress = progress if progress is not None else Progress()
        self.after_file = after_file
        self.assembler = assembler
        self._bases: dict[str, str] = {}  # baseurl -> server directory (remote_base)
        self.events = set(
            getattr(options, "events", None) or ("create", "delete", "link", "modify")
        )

    def __call__(self, d: Delivery) -> None:
        self.locate(d)
        method, _ = split_sum(d.notice.headers.get("sum", ""))
        if method == "R":
            self._remove(d)
        elif method == "L":
            self._link(d)
        elif method in ("m", "r"):
            d.reject(f"directory event {method} ignored")
        else:
            self._file(d)
        if d.outcome == "ok" and d.post_notice is None:
            d.post_notice = d.notice

    # ---------------------------------------------------------------- files
    def _file(self, d: Delivery) -> None:
        parts_hdr = d.notice.headers.get("parts")
        parts = partition.parse(parts_hdr) if parts_hdr else None
        if parts is not None and not parts.is_whole:
            if self.assembler is None:
                raise TransferError("partitioned files are not handled here", permanent=True)
            self.assembler.block(d, parts)
            return
        target = d.local_path
        assert target is not None
        if d.notice.headers.get("oldname") and self._moved_from(d, target, parts):
            return
        if self._already_current(d, target, parts):
            return
        size = self._fetch(d, target, parts)
        d.size = size
        d.ok(201, "Downloaded")
        self.after_file(d)

    def _already_current(self, d: Delivery, target: Path, parts: Any) -> bool:
        """``overwrite False``: skip when the local file already has the announced sum."""
        if getattr(self.o, "overwrite", True):
            return False
        if self._has_announced_sum(d, target, parts):
            d.ok(304, "not modified3")
            d.reason = "local copy is current"
            return True
        return False

    def _fetch(self, d: Delivery, target: Path, parts: Any) -> int:
        n = d.notice
        method, value = split_sum(n.headers.get("sum", ""))
        algo = method if method in VERIFIABLE else (value if method == "z" else None)
        sums = [checksum.new(algo)] if algo in VERIFIABLE else []
        tmp = inflight_path(target, getattr(self.o, "inflight", ".tmp"))
        if not os.path.isdir(tmp.parent):  # one stat; mkdir of an existing dir raises
            tmp.parent.mkdir(parents=True, exist_ok=True)
        transfer = self.transfers.get(n.baseurl)
        expected = parts.size if parts is not None else None
        with _open_inflight(tmp) as f:
            self.progress.start(target.name, expected)
            try:
                # length=None: a whole file needs no Range request; the size is checked below
                got = transfer.get(
                    self._remote_path(n.baseurl, n.relpath),
                    f,
                    offset=0,
                    length=None,
                    limit=expected,  # never more than announced; no size: download_max_size
                    sums=sums,
                    progress=self.progress.add,
                    throttle=int(getattr(self.o, "throttle", 0) or 0),
                )
                f.flush()
            except BaseException:
                _unlink(tmp)
                raise
            finally:
                self.progress.done()
        if expected is not None and got != expected:
            _unlink(tmp)
            raise TransferError(f"{n.relpath}: got {got} bytes, {expected} announced")
        if sums and method in VERIFIABLE and sums[0].value() != value:
            _unlink(tmp)
            raise ChecksumMismatch(
                f"checksum mismatch for {n.relpath}: announced {method},{value[:16]}..., "
                f"received {sums[0].value()[:16]}...",
                expected=value,
                actual=sums[0].value(),
            )
        if method == "z" and sums:
            d.notice = n.with_headers(sum=f"{algo},{sums[0].value()}")
        apply_metadata(
            tmp,
            d.notice,
            preserve_time=getattr(self.o, "preserve_time", True),
            preserve_mode=getattr(self.o, "preserve_mode", True),
        )
        if tmp != target:
            os.replace(tmp, target)
        return got

    def _remote_path(self, baseurl: str, relpath: str) -> str:
        """``sarra.transfer.remote_path``, with the baseurl part parsed once."""
        base = self._bases.get(baseurl)
        if base is None:
            if len(self._bases) >= 1000:
                self._bases.clear()
            base = self._bases[baseurl] = remote_base(baseurl)
        return base + relpath.lstrip("/")

    def _moved_from(self, d: Delivery, target: Path, parts: Any) -> bool:
        """Post with ``oldname`` (spec 8.4): the new file may already be in place (the
        ``R``+``newname`` half linked it: 304), or the old local file can be moved."""
        if self._has_announced_sum(d, target, parts):
            d.ok(304, "not modified3")
            d.reason = "already moved into place"
            log.info("%s is already in place (moved)", target)
            return True
        old = self._sibling(d, d.notice.headers["oldname"])
        if old is None or not old.is_file() or target.exists():
            return False
        if not self._has_announced_sum(d, old, parts):
            return False
        os.replace(old, target)
        d.ok(201, "moved")
        self.after_file(d)
        return True

    def _has_announced_sum(self, d: Delivery, path: Path, parts: Any) -> bool:
        method, value = split_sum(d.notice.headers.get("sum", ""))
        if method not in VERIFIABLE or not value or not path.is_file() or path.is_symlink():
            return False
        if parts is not None and path.stat().st_size != parts.size:
            return False
        return file_sum(path, method) == value

    # ---------------------------------------------------------------- R, L
    def _remove(self, d: Delivery) -> None:
        target = d.local_path
        assert target is not None
        newname = d.notice.headers.get("newname")
        if newname:
            new = self._sibling(d, newname)
            if new is not None and os.path.lexists(target) and not os.path.lexists(new):
                new.parent.mkdir(parents=True, exist_ok=True)
                if target.is_dir() and not target.is_symlink():
                    os.rename(target, new)
                else:
                    os.link(target, new, follow_symlinks=False)
                log.info("moved %s to %s", target, new)
        elif "delete" not in self.events:
            d.reject("removal ignored (events exclude delete)")
            return
        try:
            if target.is_dir() and not target.is_symlink():
                _rmdir_empty_tree(target)
            else:
                target.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            d.fail(f"remove failed: {e}", code=500, permanent=e.errno != errno.EBUSY)
            return
        log.info("removed %s", target)
        d.ok(201, "removed")

    def _link(self, d: Delivery) -> None:
        if "link" not in self.events:
            d.reject("link ignored (events exclude link)")
            return
        link = d.notice.headers.get("link")
        if not link:
            raise MessageError("L post without link header")
        target = d.local_path
        assert target is not None
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.lnk.tmp"
        _unlink(tmp)
        os.symlink(link, tmp)
        os.replace(tmp, target)
        log.info("linked %s -> %s", target, link)
        d.ok(201, "linked")

    def _sibling(self, d: Delivery, relpath: str) -> Optional[Path]:
        """Local path of another relpath placed with the same rules (renames)."""
        probe = Delivery(d.notice.replace(relpath=relpath))
        try:
            self.locate(probe)
        except Exception as e:  # noqa: BLE001 - a bad other name only disables the shortcut
            log.debug("cannot place %r: %s", relpath, e)
            return None
        return probe.local_path


def _open_inflight(path: Path) -> Any:
    """``path`` opened for writing, empty and locked (see :func:`_lock`).

    The usual inflight file is new (``O_EXCL``) and needs no truncate; one left over by
    an interrupted download is truncated once this instance holds its lock.

    Raises:
        OSError: cannot create/open it.  TransferError: another instance writes it.
    """
    try:
        fd, fresh = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), True
    except FileExistsError:
        fd, fresh = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644), False
    f = os.fdopen(fd, "wb")
    try:
        _lock(f, path)
        if not fresh:
            f.truncate(0)
    except BaseException:
        f.close()
        raise
    return f


def _lock(f: Any, path: Path) -> None:
    """One writer per inflight file, across the instances of a config."""
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise TransferError(f"{path} is being written by another instance") from None


def _rmdir_empty_tree(top: Path) -> None:
    """Remove ``top`` and the empty directories below it (a moved directory leaves its
    emptied sub-directories behind).

    Raises:
        OSError: a file is still there (ENOTEMPTY), or another error.
    """
    for dirpath, dirs, _files in os.walk(top, topdown=False):
        for name in dirs:
            sub = os.path.join(dirpath, name)
            if not os.path.islink(sub):
                os.rmdir(sub)
    os.rmdir(top)


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
