"""``parent.msg`` of v2 plugins: the v2 attribute names over one notice, and the way a
plugin's changes go back.

v2 (``sr_message``) gave plugins a mutable object whose attributes they read and set:
``pubtime``, ``baseurl``, ``relpath`` (as on the wire: ``%20``/``%23`` escaped), ``notice``
(``pubtime baseurl relpath``), ``urlstr`` and ``url`` (parsed), ``topic``, ``headers`` (a
dict), ``hdrstr``, ``sumstr``/``sumflg``/``checksum``, ``partstr``/``partflg`` and the
block fields, ``new_dir``/``new_file`` (where the file goes), ``isRetry``, and a few
methods (``get_elapse``, ``set_notice``, ``set_rename``...).  :meth:`V2Message.notice_after`
and :meth:`V2Message.moved` read back what the plugin changed: the headers (each change
made to the notice), the URL (``set_notice``), and ``new_dir``/``new_file``.

Everything here comes from a notice, so from anyone: the values are text as decoded (no
evaluation of any of it), and what goes back is checked where the delivery takes it
(``sarra.hooks.placing``).
"""

from __future__ import annotations

import time
import urllib.parse
from typing import Any, Dict, Optional, Tuple

from sarra.core import partition
from sarra.core.errors import MessageError
from sarra.core.message import Notice, decode_path, encode_path, format_time, join_url
from sarra.core.timestamps import parse_time


class V2Message:
    """What a v2 plugin reads as ``parent.msg`` for one notice."""

    def __init__(
        self,
        notice: Notice,
        new_dir: str = "",
        new_file: str = "",
        *,
        exchange: str = "",
        is_retry: bool = False,
        topic_prefix: str = "v02.post",
    ) -> None:
        self._notice = notice
        self._where: Tuple[str, str] = (new_dir, new_file)
        self.pubtime = notice.pubtime
        self.baseurl = notice.baseurl
        self.relpath = encode_path(notice.relpath)
        #: the URL fields as given: a plugin changed them only if they differ (decoding
        #: the relpath back is not enough: a name may hold a literal ``%20``)
        self._given = (self.pubtime, self.baseurl, self.relpath)
        self.topic = notice.topic
        self.exchange = exchange
        self.topic_prefix = topic_prefix
        self.post_version = "v02"
        self.isRetry = is_retry
        self.headers: Dict[str, Any] = dict(notice.headers)
        self.new_dir = new_dir
        self.new_file = new_file
        self.new_baseurl = "file:"
        self.new_relpath = f"{new_dir}/{new_file}" if new_dir else new_file
        self.local_file = self.new_relpath
        self.tbegin = time.time()
        self._derive()
        if notice.report is not None:
            self.report_code = notice.report.code
            self.report_host = notice.report.host
            self.report_user = notice.report.user
            self.report_elapse = notice.report.elapsed

    def _derive(self) -> None:
        """The fields v2 computed from the notice line and the headers."""
        self.notice = f"{self.pubtime} {self.baseurl} {self.relpath}"
        self.urlstr = join_url(self.baseurl, decode_path(self.relpath))
        try:
            self.url = urllib.parse.urlparse(self.urlstr)
        except ValueError:  # a hostile URL (``http://[::1/``): the plugin sees no parts
            self.url = urllib.parse.urlparse("")
        self.set_hdrstr()
        self.sumstr = self.headers.get("sum", "")
        self.sumflg, _, self.checksum = str(self.sumstr).partition(",")
        self.partstr = self.headers.get("parts", "")
        self.to_clusters = self.headers.get("to_clusters", "")
        self.partflg = self.partstr[:1]
        try:
            parts = partition.parse(self.partstr) if self.partstr else None
        except MessageError:  # a hostile header: the plugin sees it as written
            parts = None
        if parts is not None:
            self.chunksize, self.block_count = parts.bsz, parts.count
            self.remainder, self.current_block = parts.rem, parts.n
            self.offset, self.length, self.filesize = parts.offset, parts.length, parts.size
            self.lastchunk = parts.is_last

    # -- the methods v2 plugins call
    def set_hdrstr(self) -> None:
        """``hdrstr``: the headers as ``name=value`` words, sorted (as v2 logged them)."""
        self.hdrstr = "".join(f"{k}={v} " for k, v in sorted(self.headers.items()))

    def get_elapse(self) -> float:
        """Seconds since the notice was published."""
        return time.time() - parse_time(self.pubtime)

    def set_notice(self, baseurl: str, relpath: Optional[str] = None, time_: Any = None) -> None:
        """Point the notice at another URL (``msg_http_to_https``); ``relpath`` as on the
        wire.  The publication time is kept unless one is given."""
        self.baseurl = baseurl
        if relpath is not None:
            self.relpath = relpath
        if isinstance(time_, str):
            self.pubtime = time_
        elif isinstance(time_, (int, float)):
            self.pubtime = format_time(float(time_))
        self._derive()

    def set_rename(self, rename: Optional[str] = None) -> None:
        if rename is None:
            self.headers.pop("rename", None)
        else:
            self.headers["rename"] = rename

    def set_source(self, source: Optional[str] = None) -> None:
        if source is None:
            self.headers.pop("source", None)
        else:
            self.headers["source"] = source

    # -- what the plugin changed
    def notice_after(self) -> Notice:
        """The notice with the plugin's changes (headers, URL, publication time).

        Raises:
            TypeError: a header name that is not text.
        """
        from sarra.hooks.placing import with_headers

        n = self._notice
        if (self.pubtime, self.baseurl, self.relpath) != self._given:
            relpath = (
                decode_path(str(self.relpath)) if self.relpath != self._given[2] else n.relpath
            )
            n = n.replace(baseurl=str(self.baseurl), relpath=relpath, pubtime=str(self.pubtime))
        return with_headers(n, self._notice.headers, self.headers)

    def moved(self) -> Optional[Tuple[str, str]]:
        """``(new_dir, new_file)`` when the plugin changed either, else None."""
        now = (self.new_dir, self.new_file)
        return now if now != self._where else None
