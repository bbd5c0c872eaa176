"""Reading watched trees from the disk, for ``sarra.watch``: walks, checks, name rules.

Owns what the watcher learns by looking at the file system rather than from events:
the recursive walk (``os.scandir``, never opening a file), the start-up check of a watched
directory, the in-flight name rule and the (mtime, size) signature used to tell whether a
file changed.
"""

from __future__ import annotations

import logging
import os
import stat
from typing import Callable, Iterator, Optional, Tuple

from sarra.errors import ConfigError, SarraError

log = logging.getLogger(__name__)

Sig = Tuple[int, int]


class WatchError(SarraError):
    """A watched directory is missing or unreadable, or watching cannot start."""


class WatchLimitError(WatchError):
    """An inotify limit (watches or instances) was reached; the message says which sysctl."""


def sig(st: os.stat_result) -> Sig:
    """The (mtime_ns, size) pair that says whether a file changed."""
    return (st.st_mtime_ns, st.st_size)


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
) -> Iterator[Tuple[str, str, Sig]]:
    """Yield (path, "file"|"link", sig) below ``top``; never opens a file.

    Symbolic links to directories are descended only with ``follow_symlinks`` (each
    directory once, so link loops end); ``skip(path)`` prunes names and subtrees.
    Unreadable subdirectories are logged and passed over.
    """
    stack, seen = [top], set()
    while stack:
        d = stack.pop()
        try:
            dst = os.stat(d)
            if (dst.st_dev, dst.st_ino) in seen:
                continue
            seen.add((dst.st_dev, dst.st_ino))
            with os.scandir(d) as it:
                entries = list(it)
        except OSError as e:
            if d == top or not isinstance(e, FileNotFoundError):
                log.warning("cannot scan %s: %s", d, e.strerror or e)
            continue
        for entry in entries:
            item = _entry_kind(entry, follow_symlinks)
            if item is None or skip(entry.path):
                continue
            if item[0] == "dir":
                if recursive:
                    stack.append(entry.path)
            else:
                yield entry.path, item[0], item[1]


def _entry_kind(entry: os.DirEntry, follow_symlinks: bool) -> Optional[Tuple[str, Sig]]:
    try:
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode) and follow_symlinks and os.path.exists(entry.path):
            st = entry.stat()
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return "link", sig(st)
    if stat.S_ISDIR(st.st_mode):
        return "dir", sig(st)
    return ("file", sig(st)) if stat.S_ISREG(st.st_mode) else None
