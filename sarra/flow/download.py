"""The work step of dd_subscribe and dd_sara: bring a notice's file (or block) home.

A whole file is written to its inflight name while its checksum is computed, checked
(size and sum), given its announced times and mode, and only then renamed to its final
name.  A wrong checksum is never placed.  Removals (``R``), symbolic links (``L``) and
renames (``newname``/``oldname``) are applied locally.  Blocks of partitioned files are
handed to ``sarra.flow.assembly``.

Every name is reached through ``sarra.fs.safefs`` (directory fds walked without following
links out of the tree, files created ``O_EXCL|O_NOFOLLOW``, mode and times set through
the fd, existing names replaced only by rename), so no link a notice planted can
redirect a write.  An ``L`` notice makes a link only if its target stays in the tree
(``link_absolute_targets`` lets a trusted upstream make absolute ones).  ``file:`` URLs
are read only below ``file_sources``.  Inline bytes (v03 ``content``) that match the
notice are written without a fetch (``sarra.flow.inline``).  A filesystem error becomes a
``PathError`` or a ``TransferError`` (permanent or not by errno), never a raw ``OSError``.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
from typing import Any, Callable, List, Optional, Tuple

from sarra.config.loader import Options
from sarra.core import checksum, partition
from sarra.core.delivery import Delivery
from sarra.core.errors import ChecksumMismatch, MessageError, PathError, TransferError
from sarra.core.message import Notice, parse_time, split_sum
from sarra.flow.inline import inline_transfer
from sarra.fs.safefs import (
    NEW_FILE,
    PATH_MAX,
    Dirs,
    Place,
    inflight_place,
    is_regular,
    lstat,
    open_regular,
    remove_name,
    resolves_inside,
    typed_error,
)
from sarra.fs.safefs import check_file_source as check_file_source
from sarra.logs.progress import Progress
from sarra.transfer import read_chunks, remote_base

log = logging.getLogger(__name__)

VERIFIABLE = ("d", "s")


def file_sum(path: Any, method: str, offset: int = 0, length: Optional[int] = None) -> str:
    """Checksum of local bytes, streamed; ``path`` a path or an fd (not closed)."""
    c = checksum.new(method)
    with open(path, "rb", closefd=not isinstance(path, int)) as f:
        f.seek(offset)
        for chunk in read_chunks(f, length, 1 << 20):
            c.update(chunk)
    return c.value()


def sum_at(place_fd: int, name: str, method: str, offset: int = 0, length: Any = None) -> str:
    """``file_sum`` of regular file ``name`` in directory ``place_fd`` (links not read).

    Raises:
        PathError: not a regular file.  FileNotFoundError: missing.
    """
    fd = open_regular(place_fd, name, os.O_RDONLY, single_link=False)
    try:
        return file_sum(fd, method, offset, length)
    finally:
        os.close(fd)


def apply_metadata(fd: int, notice: Notice, *, preserve_time: bool, preserve_mode: bool) -> None:
    """Announced mode and times, set through the open file ``fd`` (never by path)."""
    h = notice.headers
    if preserve_mode and h.get("mode"):
        try:
            os.fchmod(fd, int(h["mode"], 8) & 0o777)
        except ValueError:
            log.debug("ignoring bad mode header %r", h["mode"])
    if preserve_time and h.get("mtime"):
        try:
            mtime = parse_time(h["mtime"])
            atime_text = h.get("atime")
            atime = parse_time(atime_text) if atime_text and atime_text != h["mtime"] else mtime
            os.utime(fd, (atime, mtime))
        except MessageError:
            log.debug("ignoring bad time header %r", h["mtime"])


def place_of(d: Delivery) -> Place:
    """Where ``d`` goes: the Locator's ``place``, else (trusted callers) ``local_path``."""
    if d.place is not None:
        return d.place
    assert d.local_path is not None
    return Place.of(d.local_path)


def verify(d: Delivery, got: int, expected: Optional[int], sums: list) -> None:
    """Size and checksum of what arrived for ``d``; a ``z`` sum is filled in on
    ``d.notice``.  ``sums`` holds the checksum computed while receiving (or nothing).

    Raises:
        TransferError: wrong size.  ChecksumMismatch: wrong sum.
    """
    n = d.notice
    method, value = split_sum(n.headers.get("sum", ""))
    if expected is not None and got != expected:
        raise TransferError(f"{n.relpath}: got {got} bytes, {expected} announced")
    if sums and method in VERIFIABLE and sums[0].value() != value:
        raise ChecksumMismatch(
            f"checksum mismatch for {n.relpath}: announced {method},{value[:16]}..., "
            f"received {sums[0].value()[:16]}...",
            expected=value,
            actual=sums[0].value(),
        )
    if method == "z" and sums:
        d.notice = n.with_headers(sum=f"{value},{sums[0].value()}")


class Downloader:
    """Callable work step.  ``locate(delivery)`` sets ``delivery.local_path`` (and
    ``delivery.place``).

    ``transfers`` is a ``sarra.transfer.TransferPool``; ``progress`` (a
    ``sarra.logs.progress.Progress``) is told of each fetch and of its bytes as they stream
    (it keeps broker heartbeats alive and draws a progress line on a terminal);
    ``after_file(delivery)`` runs the on_file hooks.
    """

    def __init__(
        self,
        options: Options,
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
        self.dirs = Dirs()
        self._bases: dict[str, str] = {}  # baseurl -> server directory (remote_base)
        self.events = set(options.events)

    def __call__(self, d: Delivery) -> None:
        if d.place is None:  # else an on_message plugin placed it (sarra.hooks.placing)
            self.locate(d)
        method, _ = split_sum(d.notice.headers.get("sum", ""))
        try:
            if method == "R":
                self._remove(d)
            elif method == "L":
                self._link(d)
            elif method in ("m", "r"):
                d.reject(f"directory event {method} ignored")
            else:
                self._file(d)
        except OSError as e:
            self.dirs.close()  # a kept directory may be the cause: walk again next time
            raise typed_error(e, d.notice.relpath) from e
        if d.outcome == "ok" and d.post_notice is None:
            d.post_notice = d.notice

    # ---------------------------------------------------------------- files
    def _file(self, d: Delivery) -> None:
        parts_hdr = d.notice.headers.get("parts")
        parts = partition.parse(parts_hdr) if parts_hdr else None
        check_file_source(self.o, d.notice.baseurl, d.notice.relpath)
        if parts is not None and not parts.is_whole:
            if self.assembler is None:
                raise TransferError("partitioned files are not handled here", permanent=True)
            self.assembler.block(d, parts)
            return
        target = place_of(d)
        if d.notice.headers.get("oldname") and self._moved_from(d, target, parts):
            return
        if self._already_current(d, target, parts):
            return
        size = self._fetch(d, target, parts)
        d.size = size
        d.ok(201, "Downloaded")
        if self.o.delete:
            self._delete_source(d)
        self.after_file(d)

    def _delete_source(self, d: Delivery) -> None:
        """``delete``: the source's file goes once this copy is in place and verified (v2,
        sr3); one the server keeps (http has no delete) is a warning: the copy is good."""
        n = d.notice
        try:
            self.transfers.get(n.baseurl).delete(self._remote_path(n.baseurl, n.relpath))
        except (TransferError, OSError) as e:
            log.warning("%s: source file not deleted: %s", d.describe(), e)

    def _already_current(self, d: Delivery, target: Place, parts: Any) -> bool:
        """``overwrite False``: skip when the local file already has the announced sum."""
        if self.o.overwrite:
            return False
        if self._has_announced_sum(d, target, parts):
            d.ok(304, "not modified3")
            d.reason = "local copy is current"
            return True
        return False

    def _fetch(self, d: Delivery, target: Place, parts: Any) -> int:
        n = d.notice
        method, value = split_sum(n.headers.get("sum", ""))
        algo = method if method in VERIFIABLE else (value if method == "z" else None)
        sums = [checksum.new(algo)] if algo in VERIFIABLE else []
        tmp = inflight_place(target, self.o.inflight)
        dir_fd = self.dirs.open(target.root, target.dir)
        tmp_fd = dir_fd if tmp.dir == target.dir else self.dirs.open(tmp.root, tmp.dir)
        transfer = inline_transfer(n) or self.transfers.get(n.baseurl)
        expected = parts.size if parts is not None else None
        with open_inflight(tmp_fd, tmp.name) as f:
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
                    throttle=self.o.throttle,
                )
                f.flush()
                verify(d, got, expected, sums)
                apply_metadata(
                    f.fileno(),
                    d.notice,
                    preserve_time=self.o.preserve_time,
                    preserve_mode=self.o.preserve_mode,
                )
            except BaseException:
                remove_name(tmp_fd, tmp.name)
                raise
            finally:
                self.progress.done()
        if tmp != target:
            os.replace(tmp.name, target.name, src_dir_fd=tmp_fd, dst_dir_fd=dir_fd)
        return got

    def _remote_path(self, baseurl: str, relpath: str) -> str:
        """``sarra.transfer.remote_path``, with the baseurl part parsed once."""
        base = self._bases.get(baseurl)
        if base is None:
            if len(self._bases) >= 1000:
                self._bases.clear()
            base = self._bases[baseurl] = remote_base(baseurl)
        return base + relpath.lstrip("/")

    def _moved_from(self, d: Delivery, target: Place, parts: Any) -> bool:
        """Post with ``oldname`` (spec 8.4): the new file may already be in place (the
        ``R``+``newname`` half linked it: 304), or the old local file can be moved."""
        if self._has_announced_sum(d, target, parts):
            d.ok(304, "not modified3")
            d.reason = "already moved into place"
            log.info("%s is already in place (moved)", target.path)
            return True
        old = self._sibling(d, d.notice.headers["oldname"])
        if old is None:
            return False
        try:
            old_fd = self.dirs.open(old.root, old.dir, create=False)
        except (FileNotFoundError, NotADirectoryError, PathError):
            return False
        dir_fd = self.dirs.open(target.root, target.dir)
        if not is_regular(old_fd, old.name) or lstat(dir_fd, target.name) is not None:
            return False
        if not self._has_announced_sum(d, old, parts):
            return False
        os.replace(old.name, target.name, src_dir_fd=old_fd, dst_dir_fd=dir_fd)
        d.ok(201, "moved")
        self.after_file(d)
        return True

    def _has_announced_sum(self, d: Delivery, place: Place, parts: Any) -> bool:
        method, value = split_sum(d.notice.headers.get("sum", ""))
        if method not in VERIFIABLE or not value:
            return False
        try:
            dir_fd = self.dirs.open(place.root, place.dir, create=False)
            st = lstat(dir_fd, place.name)
            if st is None or not stat.S_ISREG(st.st_mode):
                return False
            if parts is not None and st.st_size != parts.size:
                return False
            return sum_at(dir_fd, place.name, method) == value
        except (FileNotFoundError, NotADirectoryError, PathError):
            return False

    # ---------------------------------------------------------------- R, L
    def _remove(self, d: Delivery) -> None:
        target = place_of(d)
        newname = d.notice.headers.get("newname")
        if not newname and "delete" not in self.events:
            d.reject("removal ignored (events exclude delete)")
            return
        try:
            dir_fd = self.dirs.open(target.root, target.dir, create=False)
        except FileNotFoundError:
            d.ok(201, "removed")  # nothing there to remove
            return
        st = lstat(dir_fd, target.name)
        if newname and st is not None:
            self._move(d, target, dir_fd, st, newname)
        try:
            if st is not None and stat.S_ISDIR(st.st_mode):
                _rmdir_empty_tree(dir_fd, target.name)
            else:
                os.unlink(target.name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except OSError as e:
            d.fail(f"remove failed: {e}", code=500, permanent=e.errno != errno.EBUSY)
            return
        log.info("removed %s", target.path)
        d.ok(201, "removed")

    def _move(self, d: Delivery, target: Place, dir_fd: int, st: Any, newname: str) -> None:
        """The ``R``+``newname`` half of a rename: link (or move a directory) to the new
        name, when it is free.  A link or directory is moved only if the links it holds
        still resolve inside the tree from the new place.

        Raises:
            PathError: it would not.
        """
        new = self._sibling(d, newname)
        if new is None:
            return
        new_fd = self.dirs.open(new.root, new.dir)
        if lstat(new_fd, new.name) is not None:
            return
        if stat.S_ISDIR(st.st_mode):
            climbing = _climbing_links(dir_fd, target.name)
            if climbing and len(new.dir_parts) < len(target.dir_parts):
                raise PathError(f"moving {d.notice.relpath!r} up would let its links climb out")
            os.rename(target.name, new.name, src_dir_fd=dir_fd, dst_dir_fd=new_fd)
            where = [*new.dir_parts, new.name]
            if any(not resolves_inside(new.root, where + sub, t) for sub, t in climbing):
                os.rename(new.name, target.name, src_dir_fd=new_fd, dst_dir_fd=dir_fd)
                raise PathError(f"moving {d.notice.relpath!r} would let its links climb out")
        else:
            if stat.S_ISLNK(st.st_mode):
                self._check_link(new, os.readlink(target.name, dir_fd=dir_fd))
            os.link(target.name, new.name, src_dir_fd=dir_fd, dst_dir_fd=new_fd,
                    follow_symlinks=False)  # fmt: skip
        log.info("moved %s to %s", target.path, new.path)

    def _link(self, d: Delivery) -> None:
        if "link" not in self.events:
            d.reject("link ignored (events exclude link)")
            return
        link = d.notice.headers.get("link")
        if not link:
            raise MessageError("L post without link header")
        target = place_of(d)
        dir_fd = self.dirs.open(target.root, target.dir)  # first: checked physically below
        self._check_link(target, link)
        tmp = f".{target.name[:200]}.{os.getpid()}.lnk"
        remove_name(dir_fd, tmp)
        os.symlink(link, tmp, dir_fd=dir_fd)
        try:
            os.replace(tmp, target.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            remove_name(dir_fd, tmp)
            raise
        log.info("linked %s -> %s", target.path, link)
        d.ok(201, "linked")

    def _check_link(self, place: Place, link: str) -> None:
        """A link at ``place`` to ``link`` must resolve inside the tree.

        Raises:
            PathError: absolute (unless ``link_absolute_targets``), climbing out
                lexically or through the links there now, NUL or too long.
        """
        if "\0" in link or len(link.encode("utf-8", "surrogateescape")) >= PATH_MAX:
            raise PathError(f"unusable link target {link[:80]!r}")
        if link.startswith("/"):
            if self.o.link_absolute_targets:
                return
            raise PathError(f"absolute link target refused: {link[:200]!r}")
        if not resolves_inside(place.root, place.dir_parts, link):
            raise PathError(f"link target leads out of the tree: {link[:200]!r}")

    def _sibling(self, d: Delivery, relpath: str) -> Optional[Place]:
        """Place of another relpath placed with the same rules (renames)."""
        probe = Delivery(d.notice.replace(relpath=relpath))
        try:
            self.locate(probe)
        except Exception as e:  # noqa: BLE001 - a bad other name only disables the shortcut
            log.debug("cannot place %r: %s", relpath, e)
            return None
        return place_of(probe)


def open_inflight(dir_fd: int, name: str) -> Any:
    """``name`` in ``dir_fd``, opened for writing, empty and locked (see :func:`_lock`).

    The usual inflight file is new (``O_EXCL|O_NOFOLLOW``).  One left over by an
    interrupted download is reused (truncated once this instance holds its lock) only if
    it is a regular file with no other link; anything else there (a planted link, a
    FIFO, a hard link to another file) is unlinked and the file created anew.

    Raises:
        OSError: cannot create/open it.  TransferError: another instance writes it.
    """
    try:
        fd, fresh = os.open(name, NEW_FILE, 0o644, dir_fd=dir_fd), True
    except FileExistsError:
        try:
            fd, fresh = open_regular(dir_fd, name, os.O_WRONLY), False
        except (PathError, FileNotFoundError):
            remove_name(dir_fd, name)
            try:
                fd, fresh = os.open(name, NEW_FILE, 0o644, dir_fd=dir_fd), True
            except FileExistsError:
                raise TransferError(f"{name} is being written by another instance") from None
    f = os.fdopen(fd, "wb")
    try:
        _lock(f, name)
        if not fresh:
            f.truncate(0)
    except BaseException:
        f.close()
        raise
    return f


def _lock(f: Any, name: str) -> None:
    """One writer per inflight file, across the instances of a config."""
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise TransferError(f"{name} is being written by another instance") from None


def _climbing_links(dir_fd: int, name: str) -> List[Tuple[List[str], str]]:
    """The links below directory ``name`` whose relative target climbs (has a ``..``
    component anywhere: ``y/../../x`` climbs as ``../x`` does): (their directory's
    components below ``name``, target).  Absolute targets resolve the same wherever the
    link is moved, so moving cannot make them lead out."""
    found = []
    for path, dirs, files, sub_fd in os.fwalk(name, dir_fd=dir_fd):
        for entry in dirs + files:
            try:
                text = os.readlink(entry, dir_fd=sub_fd)
            except OSError:
                continue  # not a link
            if not text.startswith("/") and ".." in text.split("/"):
                found.append((path.split("/")[1:], text))
    return found


def _rmdir_empty_tree(dir_fd: int, name: str) -> None:
    """Remove directory ``name`` and the empty directories below it (a moved directory
    leaves its emptied sub-directories behind); links are never followed.

    Raises:
        OSError: a file is still there (ENOTEMPTY), or another error.
    """
    for _path, dirs, _files, sub_fd in os.fwalk(name, topdown=False, dir_fd=dir_fd):
        for sub in dirs:
            try:
                os.rmdir(sub, dir_fd=sub_fd)
            except NotADirectoryError:
                pass  # a link to a directory: left, so the rmdir below reports it
    os.rmdir(name, dir_fd=dir_fd)
