"""Directory watching for dd_watch: watchdog events in, complete-file events out.

Owns the adapter between watchdog (inotify, or polling) and the poster: low-level events
become :class:`FileEvent` objects ("file" complete, "remove", "link", "rename"), each once.

When a file counts as complete:
* inotify: on close-after-write, or when renamed into the tree or from an in-flight name
  to a proper one. Writes alone never count (``IN_MODIFY`` is not even subscribed to).
* polling: when its (mtime, size) did not change over one poll interval, or, with
  ``min_age`` > 0, when its mtime is at least ``min_age`` seconds old.
* ``min_age`` > 0 also holds every inotify "file" event until the mtime is that old.
* New directories (inotify) are watched by watchdog before we see them, then scanned;
  files found are held ``SCAN_SETTLE`` s and reported if unchanged (one still being
  written changes, and is reported at its close instead).

Coalescing, while events wait for ``get_events``: a later event for a path replaces an
earlier one (write then remove gives "remove"; remove then write gives "file"); "rename"
a→b absorbs a pending event for a (x→a→b gives x→b); a "file" for b keeps a pending
rename to b (the poster reads b's final content); "remove" of b after a pending a→b
gives "remove" b and "remove" a. Before delivery every "file", "link" and "rename" is
checked with ``lstat``: gone means dropped, and a "file" whose (path, mtime_ns, size) was
delivered within ``DEDUPE_WINDOW`` s is a repeat, dropped. Directories are not reported,
except a removed or renamed one (``is_dir=True``); a directory renamed within the tree
gives its own "rename", then one "rename" per file below it.

Memory: the start-up scan is a lazy walk that keeps nothing per file (see ``scan``);
inotify costs one watch per directory (watchdog's, ~600 bytes, plus the kernel's);
polling keeps watchdog's snapshot of every entry between polls, with a ``CompactStat``
per entry (~420 bytes per file or directory; about twice that while a poll compares).

Limits: an inotify queue overflow triggers a rescan of the tree (files may be reported
again), with a watchdog that reports it (7.1.1 on: see ``watchdog_seam``); with an older
one it goes unnoticed.  A writer idle for more than ``SCAN_SETTLE`` s on a file in a
just-made directory may get an early report before the final one.  ``O_TMPFILE``/
``linkat`` files get no close event.  watchdog silently skips subdirectories it cannot
watch.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import stat
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterator, Sequence

from sarra.watch import watchdog_seam
from sarra.watch.scan import (
    RecentFiles,
    Sig,
    WatchError,
    WatchLimitError,
    check_dir,
    compact_stat,
    inflight_matcher,
    walk_tree,
)
from sarra.watch.scan import sig as _sig

log = logging.getLogger(__name__)

__all__ = ["FileEvent", "Watcher", "WatchError", "WatchLimitError", "inflight_matcher"]

KINDS = ("file", "remove", "link", "rename")
SCAN_SETTLE = 0.5
DEDUPE_WINDOW = 10.0
OPEN_AT_START = 0.5
_LIMITS = {
    errno.ENOSPC: ("watch", "max_user_watches", 524288),
    errno.EMFILE: ("instance", "max_user_instances", 512),
}


@dataclass(frozen=True)
class FileEvent:
    """One thing to post: ``kind`` is "file", "remove", "link" or "rename".

    ``path`` is absolute; ``old_path`` is the previous name for "rename", else None;
    ``is_dir`` is True only for a removed or renamed directory.
    """

    kind: str
    path: str
    old_path: str | None = None
    is_dir: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown FileEvent kind {self.kind!r}")


@dataclass
class _Held:
    """A "file" event waiting for a condition (settle, stable, age) at ``due``."""

    reason: str
    due: float
    sig: Sig | None = None


class _EventQueue(queue.Queue):
    """Raw watchdog events; watchdog's dispatcher thread calls ``dispatch`` as a handler."""

    dispatch = queue.Queue.put


class Watcher:
    """Watch directory trees and report complete files, removals, links and renames.

    See the module docstring for the rules. ``start()`` and ``get_events()``/``scan()``
    may be called from one thread only; watchdog's threads only feed an internal queue.
    """

    def __init__(
        self,
        paths: Sequence[str],
        *,
        recursive: bool = True,
        force_polling: bool = False,
        poll_interval: float = 5.0,
        follow_symlinks: bool = False,
        inflight: str = ".tmp",
        min_age: float = 0.0,
        ignore: Callable[[str], bool] | None = None,
    ) -> None:
        paths = [paths] if isinstance(paths, str) else paths
        self.roots = [os.path.abspath(p) for p in paths]
        self.recursive = recursive
        self.force_polling = force_polling
        self.poll_interval = float(poll_interval)
        self.follow_symlinks = follow_symlinks
        self.min_age = float(min_age)
        self._inflight = inflight_matcher(inflight)
        self._ignore = ignore
        self._queue = _EventQueue()
        self._ready: dict[str, FileEvent] = {}
        self._held: dict[str, _Held] = {}
        self._sent = RecentFiles(DEDUPE_WINDOW)
        self._observer: object | None = None
        self._started: float | None = None
        self.polling = force_polling

    def start(self) -> None:
        """Check the directories and start watching them.

        Raises:
            WatchError: a directory is missing, not a directory or unreadable.
            WatchLimitError: an inotify limit is reached (the message names the sysctl).
        """
        for root in self.roots:
            check_dir(root)
        self._started = time.time()
        observer = self._make_observer()
        try:
            for root in self.roots:
                observer.schedule(
                    self._queue,
                    root,
                    recursive=self.recursive,
                    event_filter=watchdog_seam.event_filter(self.polling),
                    follow_symlink=self.follow_symlinks,
                )
            observer.start()
        except OSError as e:
            _stop_observer(observer)
            raise _os_error(e, self.roots) from e
        self._observer = observer
        if not self.polling:
            log.debug("%s", watchdog_seam.describe())
        mode = f"polling every {self.poll_interval:g} s" if self.polling else "inotify"
        log.info("watching %s (%s)", ", ".join(self.roots), mode)

    def stop(self) -> None:
        """Stop watching; events not yet handed out are dropped. Safe to call twice."""
        if self._observer is not None:
            _stop_observer(self._observer)
            self._observer = None

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _make_observer(self):  # -> watchdog BaseObserver
        if not self.force_polling:
            try:
                from watchdog.observers.inotify import InotifyObserver

                return InotifyObserver(generate_full_events=True)
            except (OSError, ImportError) as e:
                if getattr(e, "errno", None) in _LIMITS:
                    raise _os_error(e, self.roots) from e  # type: ignore[arg-type]
                log.warning("inotify unusable (%s); polling every %g s", e, self.poll_interval)
            self.polling = True
        from watchdog.observers.polling import PollingObserverVFS

        # watchdog keeps a stat per entry of the tree between polls: a compact one
        return PollingObserverVFS(
            stat=compact_stat(os.stat if self.follow_symlinks else os.lstat),
            listdir=os.scandir,
            polling_interval=self.poll_interval,
        )

    def scan(self) -> Iterator[FileEvent]:
        """Yield a "file" or "link" event for everything already in the trees.

        Walks with ``os.scandir`` (symlinked directories only with ``follow_symlinks``),
        skips in-flight and ignored names, never opens a file. The walk is lazy and keeps
        nothing per file: memory stays flat whatever the size of the tree (the caller
        posts in batches as it consumes the generator).

        A file whose inode changed (ctime) since the watch started, or less than
        ``OPEN_AT_START`` s before, is remembered for ``DEDUPE_WINDOW`` s, so that the
        close event of its writer, if it is the same unchanged file, is not reported
        again.  Other files cannot have such an event coming, unless a writer kept one
        open without writing for longer than that (it may then be posted twice, as may
        the files of a directory moved into the tree while the walk runs).  Remembering
        every file instead would make memory grow with the tree.
        """
        since = (self._started or time.time()) - OPEN_AT_START
        for root in self.roots:
            for path, kind, st in self._walk(root):
                if kind == "file" and st.st_ctime >= since:
                    self._sent.remember(path, _sig(st), time.monotonic())
                yield FileEvent(kind, path)

    def get_events(self, timeout: float, max_count: int = 1000) -> list[FileEvent]:
        """Wait up to ``timeout`` seconds for events, then return those ready (at most
        ``max_count``; the rest stay for the next call). Returns [] on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            self._drain()
            self._release_due()
            out = self._deliver(max_count)
            if out:
                return out
            now = time.monotonic()
            if now >= deadline:
                return []
            wait = deadline - now
            if self._held:
                wait = min(wait, max(0.0, min(h.due for h in self._held.values()) - now))
            try:
                self._on_raw(self._queue.get(timeout=wait))
            except queue.Empty:
                pass

    def _drain(self) -> None:
        while not self._queue.empty():  # we are the only consumer
            self._on_raw(self._queue.get_nowait())

    def _on_raw(self, ev: object) -> None:
        etype = getattr(ev, "event_type", "")
        src = os.fsdecode(getattr(ev, "src_path", ""))
        if etype == watchdog_seam.LOST:
            roots = [src] if src in self.roots else self.roots
            log.warning("inotify dropped events (queue overflow); rescanning %s", roots)
            for root in roots:
                self._hold_tree(root)
            return
        is_dir = bool(getattr(ev, "is_directory", False))
        if etype == "moved":
            self._on_moved(src, os.fsdecode(ev.dest_path), is_dir)  # type: ignore[attr-defined]
        elif etype == "deleted":
            if src in self.roots:
                log.warning("watched directory %s was removed", src)
            if not self._skip(src):
                self._put(FileEvent("remove", src, is_dir=is_dir))
        elif is_dir:
            if etype == "created" and not self.polling and self.recursive:
                self._hold_tree(src)
        elif etype == "closed":
            self._offer_file(src)
        elif etype in ("created", "modified"):
            self._on_created(src, etype)

    def _on_created(self, path: str, etype: str) -> None:
        if self._skip(path):
            return
        try:
            st = os.lstat(path)
        except OSError:
            return
        if stat.S_ISLNK(st.st_mode):
            self._put(FileEvent("file", path))
        elif not stat.S_ISREG(st.st_mode):
            return
        elif self.polling:
            self._offer_file(path)
        elif etype == "created" and st.st_nlink > 1:
            # A hard link: complete at once, but no close event will come.
            self._hold(path, "settle", SCAN_SETTLE, _sig(st))
        # Otherwise inotify will send IN_CLOSE_WRITE, or the file was found by a scan.

    def _on_moved(self, src: str, dest: str, is_dir: bool) -> None:
        src_skip = not src or self._skip(src)
        dest_skip = not dest or self._skip(dest)
        if not src_skip and not dest_skip:
            self._put(FileEvent("rename", dest, old_path=src, is_dir=is_dir))
        elif not src_skip:
            self._put(FileEvent("remove", src, is_dir=is_dir))
        elif not dest_skip and is_dir:
            if self.recursive and not self.polling:
                self._hold_tree(dest)
        elif not dest_skip:
            self._held.pop(dest, None)
            self._put(FileEvent("file", dest))

    def _offer_file(self, path: str) -> None:
        """A file looks complete (closed, or changed in polling mode)."""
        if self._skip(path):
            return
        self._held.pop(path, None)
        if self.min_age > 0:
            self._hold(path, "age", 0.0)
        elif self.polling:
            try:
                sig = _sig(os.lstat(path))
            except OSError:
                return
            self._hold(path, "stable", self.poll_interval, sig)
        else:
            self._put(FileEvent("file", path))

    def _hold(self, path: str, reason: str, delay: float, sig=None) -> None:
        self._held[path] = _Held(reason, time.monotonic() + delay, sig)

    def _hold_tree(self, top: str) -> None:
        """Hold every file below a new directory for SCAN_SETTLE; report links now."""
        for path, kind, st in self._walk(top):
            if kind == "link":
                self._put(FileEvent("file", path))
            elif path not in self._held:
                self._hold(path, "settle", SCAN_SETTLE, _sig(st))

    def _put(self, ev: FileEvent) -> None:
        prev = self._ready.pop(ev.path, None)
        self._held.pop(ev.path, None)
        if ev.kind == "remove":
            if prev is not None and prev.kind == "rename" and prev.old_path:
                if prev.old_path not in self._ready:
                    self._ready[prev.old_path] = FileEvent(
                        "remove", prev.old_path, is_dir=prev.is_dir
                    )
        elif ev.kind == "rename":
            assert ev.old_path is not None
            before = self._ready.pop(ev.old_path, None)
            self._held.pop(ev.old_path, None)
            if before is not None and before.kind == "rename":
                ev = replace(ev, old_path=before.old_path)
        elif prev is not None and prev.kind == "rename":
            ev = prev
        self._ready[ev.path] = ev

    def _release_due(self) -> None:
        now = time.monotonic()
        for path, h in list(self._held.items()):
            if h.due > now:
                continue
            try:
                st = os.lstat(path)
            except OSError:
                del self._held[path]
                continue
            if h.reason == "age":
                age = time.time() - st.st_mtime
                if age < self.min_age:
                    h.due = now + (self.min_age - age)
                    continue
            elif _sig(st) != h.sig:
                if h.reason == "settle":
                    # Being written with the watch in place: its close event will come.
                    del self._held[path]
                else:
                    h.sig, h.due = _sig(st), now + self.poll_interval
                continue
            del self._held[path]
            self._put(FileEvent("file", path))

    def _deliver(self, max_count: int) -> list[FileEvent]:
        now = time.monotonic()
        out: list[FileEvent] = []
        while self._ready and len(out) < max_count:
            path = next(iter(self._ready))
            ev = self._ready.pop(path)
            if ev.kind == "remove":
                self._sent.forget(path)
                out.append(ev)
                continue
            checked = self._verify(ev, now)
            if checked is not None:
                out.append(checked)
        return out

    def _verify(self, ev: FileEvent, now: float) -> FileEvent | None:
        """Check an event against the disk just before handing it out."""
        try:
            lst = os.lstat(ev.path)
        except OSError:
            return None
        if stat.S_ISDIR(lst.st_mode):
            return ev if ev.is_dir else None
        if ev.kind != "rename":
            kind = self._link_kind(ev.path) if stat.S_ISLNK(lst.st_mode) else "file"
            ev = replace(ev, kind=kind)
        sig = _sig(lst)
        if ev.kind == "file":
            if self._sent.seen(ev.path, sig, now):
                return None
        self._sent.remember(ev.path, sig, now)
        return ev

    def _skip(self, path: str) -> bool:
        """In flight or ignored (the root itself never is)."""
        rel = self._relative(path)
        if not rel:
            return False
        return self._inflight(rel) or bool(self._ignore is not None and self._ignore(path))

    def _relative(self, path: str) -> str:
        if path in self.roots:
            return ""
        best = ""
        for root in self.roots:
            if path.startswith(root.rstrip(os.sep) + os.sep) and len(root) > len(best):
                best = root
        return path[len(best.rstrip(os.sep)) + 1 :] if best else os.path.basename(path)

    def _link_kind(self, path: str) -> str:
        """A symlink is a "link", or a "file" when following links to regular files."""
        if self.follow_symlinks:
            try:
                if stat.S_ISREG(os.stat(path).st_mode):
                    return "file"
            except OSError:
                pass
        return "link"

    def _walk(self, top: str) -> Iterator[tuple[str, str, os.stat_result]]:
        return walk_tree(
            top, recursive=self.recursive, follow_symlinks=self.follow_symlinks, skip=self._skip
        )


def _os_error(e: OSError, roots: Sequence[str]) -> WatchError:
    where = ", ".join(roots)
    if e.errno in _LIMITS:
        what, name, value = _LIMITS[e.errno]
        return WatchLimitError(
            f"inotify {what} limit reached while watching {where}: raise fs.inotify.{name}, "
            f"e.g. sysctl -w fs.inotify.{name}={value}"
        )
    return WatchError(f"cannot watch {where}: {e.strerror or e}")


def _stop_observer(observer) -> None:
    observer.stop()
    if observer.is_alive():
        observer.join(timeout=5)
