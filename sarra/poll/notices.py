"""The post of a file found by dd_poll.

The URL is ``post_base_url`` (default: ``destination``, never with its password) and the
relpath the file's server path below ``post_base_dir`` when that is set, else below the
destination's directory.  The file is not read, so its checksum is computed by whoever
downloads it: ``sum`` ``z,d`` (the default, v2's) or ``z,s``; ``n`` (the name's MD5) and
``0`` are posted as they are, and ``d``/``s`` are posted as ``z,d``/``z,s``.  The size
(``parts``) and time (``mtime``, with ``preserve_time``) are the listing's, when it gives
them.  The other headers (``to_clusters``, ``from_cluster``, ``source``, ``header``
lines) are dd_post's.
"""

from __future__ import annotations

from typing import Any

from sarra.core import checksum, message, partition
from sarra.core.message import Notice
from sarra.poll.walker import Found
from sarra.post.notices import NoticeMaker
from sarra.transfer import remote_base

__all__ = ["PollNotices"]


class PollNotices:
    """Callable: ``Found`` -> ``Notice``.

    Raises (when called):
        PathError: a relpath v02 cannot carry.
    """

    def __init__(self, options: Any, *, broker_user: str = "", broker_host: str = "") -> None:
        o = options
        base_url = o.post_base_url or o.destination
        maker = NoticeMaker(
            o.replace(post_base_url=base_url), broker_user=broker_user, broker_host=broker_host
        )
        self.base_url = maker.base_url  # public_url: no password
        self.headers = dict(maker.common)
        if o.source:
            self.headers["source"] = o.source
        self.prefix = maker.prefix
        self.root = remote_base(o.destination)
        base_dir = o.post_base_dir
        self.base_dir = "/" + base_dir.strip("/") + "/" if base_dir else None
        self.slash = bool(o.post_relpath_slash)
        self.preserve_time = bool(o.preserve_time)
        flag = o.sum or "z,d"
        self.sum = {"d": "z,d", "s": "z,s"}.get(flag, flag)

    def __call__(self, found: Found) -> Notice:
        e = found.entry
        h = dict(self.headers)
        if self.sum == "n":
            h["sum"] = checksum.new("n", name=e.name).header()
        elif self.sum == "0":
            h["sum"] = checksum.new("0").header()
        else:
            h["sum"] = self.sum
        if e.size is not None:
            h["parts"] = partition.plan(e.size, 1)[0].header()
        if e.mtime is not None and self.preserve_time:
            h["mtime"] = message.format_time(e.mtime)
        return message.new_post(
            self.base_url, self.relpath(found.path), h, topic_prefix=self.prefix
        )

    def relpath(self, path: str) -> str:
        if self.base_dir and path.startswith(self.base_dir):
            rel = path[len(self.base_dir) :]
        elif path.startswith(self.root):
            rel = path[len(self.root) :]
        else:
            rel = path.lstrip("/")
        return "/" + rel if self.slash else rel
