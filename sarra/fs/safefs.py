"""Writing below a tree root so that no name planted in the tree can redirect a write.

A notice can plant symbolic links (``L`` posts), rename files and directories and name
any path, and another instance may act on the same tree at the same moment.  So no
path below the root is ever handed to the kernel whole: directories are opened one
component at a time relative to the directory fd above (``O_NOFOLLOW|O_DIRECTORY``), a
link met on the way is read and resolved here, confined to the root (``..`` at the root
and absolute targets are refused, as Linux ``openat2(RESOLVE_IN_ROOT)`` would), and
files are created with ``O_EXCL|O_NOFOLLOW`` relative to that fd.  An existing name is
replaced only by ``rename``; modes and times are set through the open fd.

The root itself (``directory``, ``post_base_dir``) comes from the configuration and is
trusted, links included.  ``Dirs`` keeps the last directory fds it walked, checked by
one ``stat`` of their path: a burst of files into one directory costs one syscall more
than writing by path, not one per component.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, List, Optional, Tuple

from sarra.config.loader import Options
from sarra.core.errors import PathError, TransferError

NAME_MAX = 255
PATH_MAX = 4096
MAX_LINKS = 40
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
#: errors the filesystem gives for a path that cannot work whatever the retry
PERMANENT_ERRNOS = frozenset(
    {
        errno.ENAMETOOLONG,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ELOOP,
        errno.EINVAL,
        errno.ENOTEMPTY,
        errno.EXDEV,
    }
)


@dataclass(frozen=True)
class Place:
    """A file below a tree root: ``root`` (configured, trusted), ``dir`` (``/``-separated
    below it, from the notice, ``""`` for the root itself) and ``name``."""

    root: str
    dir: str
    name: str

    @property
    def path(self) -> Path:
        return Path(self.root, self.dir, self.name) if self.dir else Path(self.root, self.name)

    @property
    def dir_parts(self) -> List[str]:
        return self.dir.split("/") if self.dir else []

    def with_name(self, name: str) -> Place:
        return replace(self, name=name)

    @classmethod
    def of(cls, path: Any) -> Place:
        """A path given by trusted code (no tree known): its parent is the root."""
        p = Path(path)
        return cls(str(p.parent), "", p.name)


def inflight_place(target: Place, inflight: Any) -> Place:
    """Temporary name a download is written to before its rename into ``target``.

    ``.tmp`` (any string starting with ``.`` and longer than 1): suffix; ``.``: prefix;
    ``tmp/`` (ends with ``/``): sub-directory; ``NONE``: the target itself; anything
    else (``inflight`` in seconds is for posting): ``.tmp``.
    """
    if inflight == "NONE":
        return target
    if not isinstance(inflight, str) or not inflight:
        inflight = ".tmp"
    if inflight.endswith("/"):
        sub = inflight.strip("/")
        return replace(target, dir=f"{target.dir}/{sub}" if target.dir else sub)
    if inflight == ".":
        return target.with_name("." + target.name)
    return target.with_name(target.name + inflight)


def check_name(name: str, what: str = "name", controls: bool = False) -> None:
    """One path component a notice may give: not empty, no ``/``, not ``.``/``..``, no
    NUL (nor any control character unless ``controls``), at most NAME_MAX bytes.

    Raises:
        PathError: it is not.
    """
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise PathError(f"unusable {what} {name[:80]!r}")
    if not controls and any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise PathError(f"control character in {what} {name[:80]!r}")
    if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise PathError(f"{what} longer than {NAME_MAX} bytes: {name[:40]!r}...")


def check_relative(rel: str) -> List[str]:
    """The components of a ``/``-separated relative path, each checked by ``check_name``,
    the whole shorter than PATH_MAX bytes.

    Raises:
        PathError: a bad component, or too long.
    """
    if len(rel.encode("utf-8", "surrogateescape")) >= PATH_MAX:
        raise PathError(f"path longer than {PATH_MAX} bytes: {rel[:40]!r}...")
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    for p in parts:
        if p == "..":
            raise PathError(f"path escapes the target directory: {rel[:200]!r}")
        check_name(p, "path component", controls=True)
    return parts


def _close_all(fds: Iterable[int]) -> None:
    for fd in fds:
        os.close(fd)


def walk(root: str, parts: Iterable[str], *, create: bool) -> int:
    """A new fd of the directory ``root/parts``, every component opened without following
    links; a link met is resolved here and must stay below ``root``.

    Raises:
        PathError: a link climbing out, an absolute link, or a loop.
        NotADirectoryError: a component is a file.  FileNotFoundError: missing and not
            ``create``.
        OSError: anything else the filesystem says (EACCES, EROFS, ENOSPC...).
    """
    try:
        top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        if not create:
            raise
        os.makedirs(root, exist_ok=True)
        top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    stack = [top]
    todo = deque(parts)
    hops = 0
    try:
        while todo:
            name = todo.popleft()
            if name in ("", "."):
                continue
            if name == "..":
                if len(stack) == 1:
                    raise PathError("a link leads out of the target directory")
                os.close(stack.pop())
                continue
            fd, link = _open_dir(stack[-1], name, create)
            if link is None:
                stack.append(fd)
                continue
            hops += 1
            rest = _below_root(root, link) if link.startswith("/") else link
            if rest is None or hops > MAX_LINKS:
                raise PathError(f"link {name!r} -> {link[:80]!r} leads out of the tree")
            if link.startswith("/"):
                _close_all(stack[1:])
                del stack[1:]
            todo.extendleft(reversed(rest.split("/")))
        return stack.pop()
    finally:
        _close_all(stack)


def _below_root(root: str, link: str) -> Optional[str]:
    """An absolute link target naming a place below ``root`` (as written or resolved):
    the rest, walked from the root like any other path; else None."""
    for top in (os.path.abspath(root), os.path.realpath(root)):
        top = top.rstrip("/")
        if link == top or link.startswith(top + "/"):
            return link[len(top) :].lstrip("/") or "."
    return None


def _open_dir(parent: int, name: str, create: bool) -> Tuple[int, str | None]:
    """``(fd, None)`` for a directory, ``(-1, target)`` for a link."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=parent), None
    except FileNotFoundError:
        if not create:
            raise
        try:
            os.mkdir(name, 0o777, dir_fd=parent)
        except FileExistsError:
            pass  # made meanwhile: open it (or find the link) below
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
    try:
        return os.open(name, DIR_FLAGS, dir_fd=parent), None
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
    try:
        return -1, os.readlink(name, dir_fd=parent)
    except OSError:
        raise NotADirectoryError(errno.ENOTDIR, "a file is in the way", name) from None


def resolves_inside(root: str, link_dir: List[str], target: str) -> bool:
    """Would a link in ``root/link_dir`` with ``target`` stay below ``root``, read
    lexically and through the links that exist now?  Only leading ``..`` are allowed
    (``a/../..`` reads differently once ``a`` becomes a link)."""
    parts = target.split("/")
    climbs = 0
    for p in parts:
        if p == "..":
            climbs += 1
        elif p not in ("", "."):
            break
    if ".." in parts[climbs:] or climbs > len(link_dir):
        return False
    rest = list(link_dir) + [p for p in parts if p not in ("", ".")]
    while rest:  # the longest existing prefix must resolve inside; the rest is lexical
        try:
            _close_all([walk(root, rest, create=False)])
            return True
        except PathError:
            return False
        except (FileNotFoundError, NotADirectoryError):
            rest.pop()
    return True


class Dirs:
    """Directory fds below tree roots (``walk``), the last ``size`` of them kept open.

    A kept fd is given back while ``stat`` of its path still finds the same directory;
    else it is walked again.  Fds returned are borrowed: never close them.
    """

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._fds: OrderedDict[Tuple[str, str], Tuple[int, int, int]] = OrderedDict()

    def open(self, root: str, rel: str, *, create: bool = True) -> int:
        """The fd of directory ``root/rel`` (``rel`` ``/``-separated, checked already).

        Raises:
            PathError, OSError: see ``walk``.
        """
        key = (root, rel)
        kept = self._fds.get(key)
        if kept is not None:
            fd, dev, ino = kept
            try:
                st = os.stat(os.path.join(root, rel), follow_symlinks=False)
                if (st.st_dev, st.st_ino) == (dev, ino):
                    self._fds.move_to_end(key)
                    return fd
            except OSError:
                pass
            self.forget(root, rel)
        fd = walk(root, rel.split("/") if rel else (), create=create)
        st = os.fstat(fd)
        self._fds[key] = (fd, st.st_dev, st.st_ino)
        while len(self._fds) > self.size:
            _key, (old, _d, _i) = self._fds.popitem(last=False)
            os.close(old)
        return fd

    def forget(self, root: str, rel: str) -> None:
        kept = self._fds.pop((root, rel), None)
        if kept is not None:
            os.close(kept[0])

    def close(self) -> None:
        _close_all(fd for fd, _d, _i in self._fds.values())
        self._fds.clear()

    def __del__(self) -> None:
        try:
            self.close()
        except OSError:
            pass


def open_regular(dir_fd: int, name: str, flags: int, single_link: bool = True) -> int:
    """An existing regular file (with one link when ``single_link``), opened without
    following a link and without blocking on a FIFO.

    Raises:
        PathError: not a regular file (a link, a FIFO, a device, a directory) or it has
            other hard links.  FileNotFoundError: it is gone.
    """
    try:
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            raise PathError(f"{name[:80]!r} is not a regular file") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (single_link and st.st_nlink != 1):
        os.close(fd)
        raise PathError(f"{name[:80]!r} is not a plain regular file")
    os.set_blocking(fd, True)
    return fd


def open_shared(dir_fd: int, name: str, flags: int, mode: int) -> int:
    """A regular file several instances open at once (no ``O_EXCL``), created if missing;
    anything else found under ``name`` (a link, a FIFO, a hard link) is removed first,
    never opened through.

    Raises:
        PathError: a directory is in the way, or the name keeps changing.
    """
    for _ in range(3):
        try:
            return open_regular(dir_fd, name, flags)
        except FileNotFoundError:
            pass
        except PathError:
            st = lstat(dir_fd, name)
            if st is not None and stat.S_ISDIR(st.st_mode):
                raise PathError(f"a directory is in the way: {name[:80]!r}") from None
            remove_name(dir_fd, name)
        try:
            return os.open(name, flags | (NEW_FILE & ~os.O_WRONLY), mode, dir_fd=dir_fd)
        except FileExistsError:
            continue
    raise PathError(f"{name[:80]!r} keeps changing")


def remove_name(dir_fd: int, name: str) -> None:
    """Unlink ``name`` (a link itself, never what it points to); gone already is fine."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def is_regular(dir_fd: int, name: str) -> bool:
    st = lstat(dir_fd, name)
    return st is not None and stat.S_ISREG(st.st_mode)


#: local write errors that no retry fixes and that are this host's own problem
_LOCAL_REFUSALS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def typed_error(e: OSError, relpath: str) -> Exception:
    """One line for a local filesystem error: ``PathError`` for a path that cannot work
    (name too long, a file where a directory should be...), a permanent
    ``TransferError`` for a refused write (EACCES, EROFS), else a transient one."""
    what = f"{relpath[:200]!r}: {e.strerror or e}"
    if e.errno in _LOCAL_REFUSALS:
        return TransferError(f"cannot write {what}", permanent=True, code=500)
    if e.errno in PERMANENT_ERRNOS:
        return PathError(f"cannot place {what}")
    return TransferError(f"local write of {what}", permanent=False, code=499)


def check_file_source(options: Options, baseurl: str, relpath: str) -> None:
    """A ``file:`` notice from a broker reads this host's disk: only below one of the
    configured ``file_sources`` directories.

    Raises:
        PathError: not below any of them (none configured: never).
    """
    if baseurl[:5].lower() != "file:":
        return
    from sarra.transfer import remote_path

    path = os.path.normpath(remote_path(baseurl, relpath))
    for top in options.file_sources:
        top = os.path.normpath(os.path.expanduser(top))
        inside = path == top or path.startswith(top.rstrip("/") + "/")
        if not inside:
            continue
        real, real_top = os.path.realpath(path), os.path.realpath(top)
        if real == real_top or real.startswith(real_top.rstrip("/") + "/"):
            return
    raise PathError(f"file: URL outside file_sources refused: {path[:200]!r}")
