"""sr3 messages over our notices: the dict an sr3 flow callback reads and changes.

sr3 keeps a message as a dict with the v03 field names (``pubTime``, ``baseUrl``,
``relPath``, ``subtopic``, ``identity``, ``size``, ``fileOp``...), the other headers as keys
of their own (``source``, ``mtime``...), and local fields (``new_dir``, ``new_file``,
``new_relPath``, ``_deleteOnPost``...).  :func:`build` makes one from a notice the way sr3
imports a v02 message (``postformat/v02.py``: ``sum`` -> ``identity`` with the digest in
base64, or ``fileOp`` for removals and links; ``parts`` -> ``size``; times with a ``T``);
:func:`notice_after` reads back the callback's changes: the URL, ``rename``, and any
header key set, changed or deleted.  ``identity``, ``size``, ``fileOp`` and the other v03
fields are read-only here: the checksum and the parts of a notice describe the data, a
callback does not change them.

Every value comes from a notice (hostile): conversions that fail keep the text as is.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Dict, Mapping, Optional

from sarra.core import partition
from sarra.core.errors import MessageError
from sarra.core.message import Notice, format_time, split_sum

#: the fields that are not v02 headers (sr3's v03 names and local fields)
FIELDS = frozenset(
    "pubTime baseUrl relPath subtopic identity size blocks fileOp content contentType "
    "retrievePath report topic exchange new_dir new_file new_relPath new_baseUrl new_subtopic "
    "new_path new_inflight_path post_baseUrl".split()
)
_METHODS = {"d": "md5", "s": "sha512", "n": "md5name", "0": "random", "a": "arbitrary"}
_TIMES = ("mtime", "atime")


def v3timeflt2str(f: float) -> str:
    """POSIX seconds as a v03 timestamp (``YYYYMMDDTHHMMSS.fff``)."""
    text = format_time(f)
    return f"{text[:8]}T{text[8:]}"


def timev2tov3str(s: str) -> str:
    """A v02 timestamp in v03 form (a ``T`` after the date)."""
    return s if len(s) > 8 and s[8] == "T" else f"{s[:8]}T{s[8:]}"


class Message(dict):
    """One sr3 message (a dict), with the methods sr3 callbacks call on it."""

    def getIDStr(self) -> str:
        """The message's URL, for log lines."""
        base = str(self.get("baseUrl", "baseUrl missing "))
        rel = str(self.get("relPath") or self.get("retrievePath") or "badMessage")
        sep = "" if base.endswith("/") or rel.startswith("/") else "/"
        return f"{base}{sep}{rel}"

    def setReport(self, code: int, text: Optional[str] = None) -> None:
        """The disposition to report (a callback rejecting a message may set it)."""
        self["report"] = {"code": int(code), "message": text or "", "timeCompleted": _now()}
        self["_deleteOnPost"].add("report")

    def updatePaths(
        self, options: Any, new_dir: Any = None, new_file: Any = None, _: int = 0
    ) -> None:
        """Set where the file goes (``new_dir``, ``new_file``) and the fields derived."""
        if new_dir:
            self["new_dir"] = str(new_dir)
        if new_file or new_file == "":
            self["new_file"] = str(new_file)
        d, f = str(self.get("new_dir", "")), str(self.get("new_file", ""))
        self["new_relPath"] = f"{d}/{f}".lstrip("/")
        self["new_subtopic"] = self["new_relPath"].split("/")[:-1]

    def dumps(self) -> str:
        """The message as one JSON text (local fields left out)."""
        shown = {k: v for k, v in self.items() if not k.startswith("_")}
        return json.dumps(shown, default=str, sort_keys=True)

    def isRetry(self) -> bool:
        return bool(self.get("_isRetry"))


def _now() -> str:
    import time

    return v3timeflt2str(time.time())


def _identity(value: str) -> Dict[str, Any]:
    """``sum`` -> ``identity`` or ``fileOp`` (sr3's import of v02); nothing for a
    ``sum`` too broken to say anything."""
    try:
        method, digest = split_sum(value)
    except MessageError:
        return {}
    if method == "R":
        return {"fileOp": {"remove": ""}}
    if method in ("m", "r"):
        return {"fileOp": {"directory": ""} if method == "m" else {"remove": "", "directory": ""}}
    if method == "L":
        return {}
    if method == "z":
        return {"identity": {"method": "cod", "value": _METHODS.get(digest, digest)}}
    name = _METHODS.get(method, method)
    if name in ("md5", "sha512"):
        try:
            digest = base64.b64encode(binascii.unhexlify(digest)).decode("ascii")
        except (binascii.Error, ValueError):
            pass  # a hostile digest: shown as written
    return {"identity": {"method": name, "value": digest}}


def build(
    notice: Notice,
    new_dir: str = "",
    new_file: str = "",
    *,
    exchange: str = "",
    retry: bool = False,
    report: Optional[tuple] = None,
) -> Message:
    """The sr3 message for ``notice``, its file going to ``new_dir/new_file``."""
    m = Message()
    h = notice.headers
    for key, value in h.items():
        if _editable(key):
            m[key] = timev2tov3str(value) if key in _TIMES and len(value) > 8 else value
    m.update(
        pubTime=timev2tov3str(notice.pubtime),
        baseUrl=notice.baseurl,
        relPath=notice.relpath,
        subtopic=notice.relpath.lstrip("/").split("/")[:-1],
        topic=notice.topic,
    )
    if exchange:
        m["exchange"] = exchange
    if "sum" in h:
        m.update(_identity(h["sum"]))
    if "link" in h:
        m["fileOp"] = {"link": h["link"]}
    if "oldname" in h:
        m.setdefault("fileOp", {})["rename"] = h["oldname"]
    _sizes(m, h.get("parts"))
    m["_deleteOnPost"] = {"_deleteOnPost", "_isRetry", "subtopic"}
    m["_isRetry"] = retry
    if new_file:
        m.updatePaths(None, new_dir, new_file)
        m["new_baseUrl"] = notice.baseurl
    if report:
        m.setReport(report[0], report[1])
    return m


def _sizes(m: Message, parts: Optional[str]) -> None:
    if not parts:
        return
    try:
        p = partition.parse(parts)
    except MessageError:
        return  # a hostile header: no size shown
    m["size"] = p.size
    if not p.is_whole:
        m["blocks"] = {
            "method": {"i": "inplace", "p": "partitioned"}.get(p.method, p.method),
            "size": p.bsz,
            "count": p.count,
            "remainder": p.rem,
            "number": p.n,
        }


def _editable(key: str) -> bool:
    """True for the headers a callback sees as keys of their own (not ``sum``/``parts``,
    shown as ``identity``/``size``; nor a header named like a field, which only a
    hostile sender writes, kept as it came)."""
    return key not in ("sum", "parts") and key not in FIELDS and not key.startswith("_")


def _as_header(key: str, value: Any, before: Mapping[str, str]) -> Optional[str]:
    """The header text of a message key after the callback, or None: not a header."""
    if not _editable(key):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    text = str(value)
    if key in _TIMES and key in before and timev2tov3str(before[key]) == text:
        return before[key]  # unchanged, shown in v03 form
    return text


def notice_after(m: Mapping[str, Any], notice: Notice) -> Notice:
    """``notice`` with what the callback changed in ``m``: ``baseUrl``, ``relPath`` and
    the header keys (a key set to text is a header; a header key deleted is deleted)."""
    from sarra.hooks.placing import with_headers

    before = dict(notice.headers)
    after: Dict[str, str] = {k: v for k, v in before.items() if not _editable(k)}
    for key, value in m.items():
        text = _as_header(str(key), value, before)
        if text is not None:
            after[str(key)] = text
    base, rel = m.get("baseUrl", notice.baseurl), m.get("relPath", notice.relpath)
    if isinstance(base, str) and isinstance(rel, str):
        if (base, rel) != (notice.baseurl, notice.relpath):
            notice = notice.replace(baseurl=base, relpath=rel)
    return with_headers(notice, before, after)
