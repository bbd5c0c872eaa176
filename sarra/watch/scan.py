"""Reading watched trees from the disk, for ``sarra.watch.watcher``: walks, checks, name rules.

Owns what the watcher learns by looking at the file system rather than from events:
the recursive walk (``os.scandir``, never opening a file), the start-up check of a watched
directory, the in-flight name rule and the (mtime, size) signature used to tell whether a
file changed.
"""

from __future__ import annotations

import logging
import operator
import os
import stat
from typing import Callable, Dict, Iterator, Optional, Tuple

from sarra.core.errors import ConfigError, SarraError

log = logging.getLogger(__name__)

Sig = Tuple[int, int]


class WatchError(SarraError):
    """A watched directory is missing or unreadable, or watching cannot start."""


class WatchLimitError(WatchError):
    """An inotify limit (watches or instances) was reached; the message says which sysctl."""


def sig(st: os.stat_result) -> Sig:
    """The (mtime_ns, size) pair that says whether a file changed."""
    return (st.st_mtime_ns, st.st_size)


class RecentFiles:
    """Files handed out in the last ``window`` seconds, with their signature.

    Two generations of ``{path: (mtime_ns, size, when)}``: once the newer one is
    ``window`` s old it becomes the older one and the previous older one is dropped, so an
    entry is kept between one and two windows and every call is O(1).  About 250 bytes
    per file handed out in the last one to two windows (most of it the path).
    """

    def __init__(self, window: float) -> None:
        self.window = window
        self._new: Dict[str, Tuple[int, int, float]] = {}
        self._old: Dict[str, Tuple[int, int, float]] = {}
        self._since = float("-inf")

    def remember(self, path: str, sig: Sig, now: float) -> None:
        if now - self._since >= self.window:
            self._old, self._new, self._since = self._new, {}, now
        self._old.pop(path, None)
        self._new[path] = (*sig, now)

    def seen(self, path: str, sig: Sig, now: float) -> bool:
        """True if ``path`` was handed out with this signature less than ``window`` s ago."""
        got = self._new.get(path) or self._old.get(path)
        return got is not None and got[:2] == sig and now - got[2] < self.window

    def forget(self, path: str) -> None:
        self._new.pop(path, None)
        self._old.pop(path, None)

    def __len__(self) -> int:
        return len(self._new) + len(self._old)


class CompactStat(tuple):
    """The part of a stat result that watchdog's polling snapshot reads, for every entry of
    the tree, kept until the next poll: (st_mode, st_ino, st_dev, st_size, st_mtime).

    A tuple of five with the few distinct modes and devices shared, about 190 bytes with
    its values, where an ``os.stat_result`` is about 650.  Attribute-only changes
    (owner, group) are not seen, and dd_watch does not subscribe to them anyway.
    """

    __slots__ = ()
    st_mode = property(operator.itemgetter(0))
    st_ino = property(operator.itemgetter(1))
    st_dev = property(operator.itemgetter(2))
    st_size = property(operator.itemgetter(3))
    st_mtime = property(operator.itemgetter(4))


def compact_stat(stat_fn: Callable[[str], os.stat_result]) -> Callable[[str], CompactStat]:
    """``stat_fn`` (os.stat or os.lstat) returning a ``CompactStat``.

    Raises:
        OSError: as ``stat_fn`` does.
    """
    shared: Dict[int, int] = {}

    def compact(path: str) -> CompactStat:
        st = stat_fn(path)
        mode = shared.setdefault(st.st_mode, st.st_mode)
        dev = shared.setdefault(st.st_dev, st.st_dev)
        return CompactStat((mode, st.st_ino, dev, st.st_size, st.st_mtime))

    return compact


def inflight_matcher(inflight: str) -> Callable[[str], bool]:
    """Return a predicate on a path relative to its watched root: is it still in flight?

    ``"NONE"`` or ``""``: nothing is; ``"."``: hidden files; ``"name/"``: anything below a
    directory called ``name``; ``".suffix"``: names ending with it.

    Raises:
        ConfigError: for any other value (a number belongs in ``min_age``).
    """
    if inflight in ("", "NONE"):
        return lambda rel: False
    if inflight == ".":
        return lambda rel: os.path.basename(rel).startswith(".")
    if inflight.endswith("/") and inflight.strip("/"):
        name = inflight.strip("/")
        return lambda rel: name in rel.split(os.sep)[:-1]
    if inflight.startswith(".") and len(inflight) > 1:
        return lambda rel: rel.endswith(inflight)
    raise ConfigError(f"inflight {inflight!r} not understood: use .suffix, '.', dir/ or NONE")


def check_dir(path: str) -> None:
    """Raises WatchError unless path is a readable directory."""
    if not os.path.exists(path):
        raise WatchError(f"watched directory {path} does not exist")
    if not os.path.isdir(path):
        raise WatchError(f"watched path {path} is not a directory")
    try:
        with os.scandir(path) as it:
            next(it, None)
    except OSError as e:
        raise WatchError(f"cannot read watched directory {path}: {e.strerror or e}") from e


def walk_tree(
    top: str,
    *,
    recursive: bool,
    follow_symlinks: bool,
    skip: Callable[[str], bool],
) -> Iterator[Tuple[str, str, os.stat_result]]:
    """Yield (path, "file"|"link", stat) below ``top``, lazily; never opens a file.

    Symbolic links to directories are descended only with ``follow_symlinks`` (each
    directory once, so link loops end); ``skip(path)`` prunes names and subtrees.
    Unreadable subdirectories are logged and passed over.

    Memory does not grow with the number of files: entries are read from ``os.scandir``
    one at a time as the caller consumes them (one directory open at a time), and nothing
    is kept per file.  Per directory it keeps the paths of directories found but not yet
    read (the depth-first stack) and, for loop detection, the (st_dev, st_ino) of each
    directory read: about 150 bytes per directory.
    """
    stack, seen = [top], set()
    while stack:
        d = stack.pop()
        try:
            dst = os.stat(d)
            if (dst.st_dev, dst.st_ino) in seen:
                continue
            seen.add((dst.st_dev, dst.st_ino))
            it = os.scandir(d)
        except OSError as e:
            _unreadable(d, top, e)
            continue
        with it:
            while True:
                try:
                    entry = next(it, None)
                except OSError as e:  # the directory went away while being read
                    _unreadable(d, top, e)
                    break
                if entry is None:
                    break
                item = _entry_kind(entry, follow_symlinks)
                if item is None or skip(entry.path):
                    continue
                if item[0] == "dir":
                    if recursive:
                        stack.append(entry.path)
                else:
                    yield entry.path, item[0], item[1]


def _unreadable(d: str, top: str, e: OSError) -> None:
    if d == top or not isinstance(e, FileNotFoundError):
        log.warning("cannot scan %s: %s", d, e.strerror or e)


def _entry_kind(entry: os.DirEntry, follow_symlinks: bool) -> Optional[Tuple[str, os.stat_result]]:
    try:
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode) and follow_symlinks and os.path.exists(entry.path):
            st = entry.stat()
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return "link", st
    if stat.S_ISDIR(st.st_mode):
        return "dir", st
    return ("file", st) if stat.S_ISREG(st.st_mode) else None
