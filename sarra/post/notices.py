"""Turning local files into notices (dd_post, dd_watch), for v02 and v03 alike.

Each file is read once: the checksum of every block is computed in a single pass.
Symbolic links become ``L`` posts, removals ``R`` posts, renames the ``R``+``newname``
then post+``oldname`` pair of spec 8.4.  Paths outside ``post_base_dir`` and names that
the formats posted in cannot carry are refused with ``PathError``.  With ``inline`` and
v03 among the formats, a file smaller than ``inline_max`` travels in its notice
(``content``, doc/v03.rst): it is read once, and its checksum is that of the bytes sent.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from sarra.config.loader import Options
from sarra.core import checksum, message, partition
from sarra.core.errors import ConfigError, PathError
from sarra.core.message import Notice
from sarra.core.redaction import public_url
from sarra.transfer.pipeline import read_views

log = logging.getLogger(__name__)

CHUNK = 1 << 20


class NoticeMaker:
    """Builds the notices for local paths according to the post options."""

    def __init__(self, options: Options, *, broker_user: str = "", broker_host: str = "") -> None:
        self.o = options
        if not options.post_base_url:
            raise ConfigError("post_base_url (-u) is required to post")
        self.base_url = public_url(options.post_base_url, "post_base_url (-u)")
        base_dir = options.post_base_dir
        self.base_dir = os.path.abspath(base_dir) if base_dir else None
        self.sum = options.sum
        self.blocksize = options.blocksize
        self.prefix = options.post_topic_prefix
        self.subtopic = options.post_subtopic
        to = options.to
        self.common: Dict[str, str] = {}
        self.common["to_clusters"] = ",".join(to) if to is not None else broker_host or "localhost"
        self.common["from_cluster"] = options.cluster or broker_host or "localhost"
        if broker_user:
            self.common["source"] = broker_user
        self.common.update(options.header)  # (name, value) pairs, checked by the converter
        self.slash = options.post_relpath_slash
        formats = [
            f for f, _ in message.post_formats(options.post_format, options.post_topic_prefix)
        ]
        self.v02 = "v02" in formats
        self.inline = options.inline and "v03" in formats
        self.inline_max = options.inline_max
        self.inline_only = options.inline_only and self.inline
        self.inline_encoding = options.inline_encoding
        self.rename = options.rename
        self._absolute = self.base_dir is None and self.base_url.lower().startswith("file:")

    # ---------------------------------------------------------------- paths
    def relpath(self, path: str) -> str:
        """The relpath of a local path: below post_base_dir, or absolute for ``file:``.

        With no post_base_dir, the relpath is the absolute path; for a ``file:`` baseurl
        it keeps its leading ``/`` (v2's ``file: /abs/path``, spec 4.3).

        Raises:
            PathError: the path is outside post_base_dir, or cannot be carried by v02.
        """
        ap = os.path.abspath(path)
        if self.base_dir:
            if ap != self.base_dir and not ap.startswith(self.base_dir.rstrip("/") + "/"):
                raise PathError(f"{path}: outside post_base_dir {self.base_dir}")
            rel = ap[len(self.base_dir) :].lstrip("/")
        else:
            rel = ap.lstrip("/")
        message.check_name(rel, v02=self.v02)
        return ("/" + rel) if self.slash or self._absolute else rel

    def _notice(self, path: str, headers: Dict[str, str], pubtime: Optional[str]) -> Notice:
        h = dict(self.common)
        h.update(headers)
        if self.rename:
            name = os.path.basename(path)
            h["rename"] = self.rename + name if self.rename.endswith("/") else self.rename
        notice = message.new_post(
            self.base_url,
            self.relpath(path),
            h,
            pubtime=pubtime,
            topic_prefix=self.prefix,
            v02=self.v02,
        )
        if self.subtopic:  # -sub: the user's topic instead of the directories (spec 3.7)
            topic = f"{self.prefix}.{self.subtopic}".replace(" ", "%20").replace("#", "%23")
            notice = notice.replace(topic=message.cut_topic(topic))
        return notice

    # ---------------------------------------------------------------- notices
    def for_path(self, path: str, extra: Optional[Dict[str, str]] = None) -> List[Notice]:
        """Notices for one existing path: ``L`` for a symlink, else the file's blocks.

        Raises:
            PathError: missing, not a regular file, or outside post_base_dir.
            OSError: the file could not be read.
        """
        extra = extra or {}
        st = os.lstat(path)  # one stat call decides (per-file cost counts at 2,000 files)
        if stat.S_ISLNK(st.st_mode):
            if not self.o.follow_symlinks:
                return [self.link(path, extra)]
            try:
                st = os.stat(path)
            except FileNotFoundError:
                raise PathError(f"{path}: not a regular file") from None  # dangling link
        if not stat.S_ISREG(st.st_mode):
            raise PathError(f"{path}: not a regular file")
        return self.file(path, extra, st)

    def link(self, path: str, extra: Dict[str, str]) -> Notice:
        target = os.readlink(path)
        value = hashlib.sha512(target.encode("utf-8", "surrogateescape")).hexdigest()
        return self._notice(path, {**extra, "link": target, "sum": f"L,{value}"}, None)

    def removal(self, path: str, extra: Optional[Dict[str, str]] = None) -> Notice:
        name = os.path.basename(path.rstrip("/"))
        value = hashlib.sha512(name.encode("utf-8", "surrogateescape")).hexdigest()
        return self._notice(path, {**(extra or {}), "sum": f"R,{value}"}, None)

    def rename_pair(self, old: str, new: str) -> List[Notice]:
        """Spec 8.4: ``R`` of the old path with ``newname``, then the new path with ``oldname``."""
        first = self.removal(old, {"newname": self.relpath(new)})
        return [first, *self.for_path(new, {"oldname": self.relpath(old)})]

    def file(self, path: str, extra: Dict[str, str], st: os.stat_result) -> List[Notice]:
        meta = dict(extra)
        if self.o.preserve_time:
            meta["mtime"] = message.format_time_ns(st.st_mtime_ns)
            meta["atime"] = message.format_time_ns(st.st_atime_ns)
        if self.o.preserve_mode:
            meta["mode"] = format(st.st_mode & 0o7777, "o")
        if self.inline and st.st_size < self.inline_max:
            return [self._inline(path, meta, st.st_size)]
        if self.inline_only:
            raise PathError(
                f"{path}: {st.st_size} bytes, not under inline_max {self.inline_max}: "
                "not posted (inline_only)"
            )
        blocks = partition.plan(st.st_size, self.blocksize)
        sums = list(self._block_sums(path, blocks))
        pubtime = message.format_time(time.time())
        return [
            self._notice(path, {**meta, "parts": b.header(), "sum": s}, pubtime)
            for b, s in zip(blocks, sums)
        ]

    def _inline(self, path: str, meta: Dict[str, str], size: int) -> Notice:
        """The post of a small file with its bytes inline; its sum and size are those
        of the bytes read (the file may change meanwhile: the notice stays true).

        Raises:
            OSError: the file could not be read.
        """
        with open(path, "rb") as f:
            data = f.read(self.inline_max)
        by_name = self.sum in ("n", "0") or self.sum.startswith("z")
        c = (
            checksum.new(self.sum, name=os.path.basename(path))
            if by_name
            else checksum.new(self.sum)
        )
        c.update(data)
        headers = {**meta, "parts": f"1,{len(data)},1,0,0", "sum": c.header()}
        notice = self._notice(path, headers, message.format_time(time.time()))
        content = message.inline_content_of(data, self.inline_encoding, path)
        return notice.replace(extra={"content": content})

    def _block_sums(self, path: str, blocks: List[partition.Parts]) -> Iterator[str]:
        """One pass over the file, yielding each block's ``sum`` header."""
        name = os.path.basename(path)
        method = self.sum
        if method in ("n", "0") or method.startswith("z"):
            for _ in blocks:
                yield checksum.new(method, name=name).header()
            return
        total = sum(b.length for b in blocks)
        with open(path, "rb", buffering=0) as f:
            if total <= 2 * CHUNK:
                for b in blocks:
                    yield _small_block_sum(f, method, b.length, path)
                return
            # Big file: a reader thread fills recycled buffers while this one hashes.
            views = read_views(f, _chunk_sizes(blocks), CHUNK)
            for b in blocks:
                c = checksum.new(method)
                left = b.length
                while left > 0:
                    view = next(views, None)
                    if not view:
                        raise PathError(f"{path}: file shrank while being read")
                    c.update(view)
                    left -= len(view)
                yield c.header()


def _chunk_sizes(blocks: List[partition.Parts]) -> Iterator[int]:
    for b in blocks:
        left = b.length
        while left > 0:
            n = min(CHUNK, left)
            yield n
            left -= n


def _small_block_sum(f: Any, method: str, length: int, path: str) -> str:
    c = checksum.new(method)
    if length:
        data = f.read(length)
        while len(data) < length:
            more = f.read(length - len(data))
            if not more:
                raise PathError(f"{path}: file shrank while being read")
            data += more
        c.update(data)
    return c.header()


def walk(path: str, follow_symlinks: bool = False) -> Iterator[str]:
    """Files and symlinks below ``path`` (or ``path`` itself), lazily, sorted per dir."""
    if not os.path.isdir(path) or (os.path.islink(path) and not follow_symlinks):
        yield path
        return
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as e:
        raise PathError(f"{path}: cannot list directory: {e.strerror}") from e
    for entry in entries:
        if entry.is_dir(follow_symlinks=follow_symlinks):
            yield from walk(entry.path, follow_symlinks)
        else:
            yield entry.path


def common_base(paths: List[str]) -> str:
    return str(Path(os.path.commonpath([os.path.abspath(p) for p in paths])))
