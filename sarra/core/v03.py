"""The v03 codec: sr3's JSON notices <-> :class:`~sarra.core.notice.Notice`.

Owns the v03 wire format of sr_post(7) as metpx-sr3 3.3.1 writes it: one JSON object
per message (``content_type`` ``application/json``), no AMQP headers, topics
``v03.<dirs>``.  A decoded notice is written in v02 terms (``sum``, ``parts``, ``link``,
``oldname``...), so nothing downstream knows which format came in; the field-by-field
mapping and every decision where v03 differs from v02 are in ``doc/v03.rst``, the
decoding handler of each field in ``sarra.core.v03fields``.

Decisions recorded here:

* Fields with a v02 form become headers: ``identity`` <-> ``sum`` (base64 <-> hex),
  ``size``/``blocks`` <-> ``parts``, ``fileOp`` <-> ``R``/``L``/``l``/``m``/``r`` sums,
  ``link`` and ``oldname``, ``mtime``/``atime`` without their ``T``.  A post with neither
  identity nor fileOp gets ``sum n,<md5 of the basename>``, as sr3 gives it in v02.
* Any other field whose value is text is a header under its own name; any other value
  (``content``, ``geometry``, numbers...) is kept as JSON text in ``Notice.extra``.
  What a mapping leaves over (unknown ``fileOp`` keys, an identity of an unknown method)
  is kept the same way, so a v03 notice re-encodes without loss.
* ``encode`` writes ``pubTime``, ``relPath``, ``baseUrl`` first, then the fields in
  header order, then ``extra``, with ``json.dumps`` defaults: sr3's own messages come
  back byte for byte.
* Hostile input (doc/security.rst): bodies over ``MAX_BODY_BYTES``, non-UTF-8, not a JSON
  object, nested too deep, ``NaN``, lone surrogates, field names over 255 bytes, missing
  or malformed mandatory fields and known fields of the wrong type raise
  :class:`MessageError`, never anything else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import mimetypes
from collections.abc import Mapping
from typing import Any, Union

from sarra.core.errors import MessageError, PathError
from sarra.core.notice import (
    MAX_FIELD_BYTES,
    Encoded,
    Notice,
    _excerpt,
    check_name,
    cut_topic,
    post_topic,
    report_topic,
    split_sum,
)
from sarra.core.timestamps import TimeFormatError, parse_time
from sarra.core.v03fields import (
    BLOCK_KEYS,
    FIELDS,
    MANDATORY,
    bad,
    report_of,
    v02_time,
)

CONTENT_TYPE = "application/json"
DEFAULT_PREFIX = "v03"
#: largest body decoded: inline content of sr3's default ``inlineByteMax`` (4 KiB) needs
#: ~6 KiB; a hostile body is refused before JSON parsing spends time or memory on it
MAX_BODY_BYTES = 1 << 20
#: a field name longer than an AMQP short string could never be a v02 header
MAX_NAME_BYTES = 255
_HASH_LETTERS = {"d": ("md5", 16), "s": ("sha512", 64)}
_COD_NAMES = {"d": "md5", "s": "sha512"}
_TEXT_LETTERS = {"0": "random", "a": "arbitrary"}
_BLOCK_NAMES = {"i": "inplace", "p": "partitioned"}
#: v03 fields a header may not fill in: a v02 header named so (crafted, or v2's
#: leftovers) would overwrite what the notice says
_RESERVED = frozenset(MANDATORY) | {"identity", "integrity", "fileOp", "size", "blocks", "report"}


# --------------------------------------------------------------------------- decode


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


#: one decoder for every body (``json.loads`` with an option builds one per call)
_JSON = json.JSONDecoder(parse_constant=_no_constant)


def _check_unicode(value: Any) -> None:
    """Every string is valid Unicode (a JSON ``\\ud800`` escape gives a lone surrogate,
    which no later ``.encode('utf-8')`` survives)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise bad("text with a lone surrogate", item) from None
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def load(body: Union[bytes, str]) -> dict[str, Any]:
    """The JSON object of a v03 body.

    Raises:
        MessageError: over ``MAX_BODY_BYTES``, not UTF-8, not JSON, not an object,
            nested too deep, ``NaN``/``Infinity``, a lone surrogate.
    """
    if isinstance(body, str):
        text = body
        size = (
            len(text) if len(text) <= MAX_BODY_BYTES // 4 else len(text.encode("utf-8", "replace"))
        )
        if size > MAX_BODY_BYTES:
            raise MessageError(f"v03 body over {MAX_BODY_BYTES} bytes")
    else:
        raw = bytes(body)
        if len(raw) > MAX_BODY_BYTES:
            raise MessageError(f"v03 body of {len(raw)} bytes, over {MAX_BODY_BYTES}")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MessageError(f"v03 body is not UTF-8 ({e.reason}): {_excerpt(raw)}") from None
    try:
        obj = _JSON.decode(text)
    except (ValueError, RecursionError) as e:
        raise MessageError(f"v03 body is not JSON ({str(e)[:80]}): {_excerpt(text)}") from None
    if not isinstance(obj, dict):
        raise MessageError(f"v03 body is not a JSON object: {_excerpt(text)}")
    if "\\ud" in text or "\\uD" in text or not isinstance(body, bytes):
        _check_unicode(obj)
    return obj


def _text(obj: Mapping[str, Any], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise bad(f"{name} missing, empty or not text", value)
    if len(value) * 4 > MAX_FIELD_BYTES and len(value.encode("utf-8")) > MAX_FIELD_BYTES:
        raise bad(f"{name} over {MAX_FIELD_BYTES} bytes", value)
    return value


def decode(
    routing_key: Union[str, bytes], headers: Mapping[Any, Any] | None, body: Union[bytes, str]
) -> Notice:
    """Decode one v03 message into a :class:`Notice` (AMQP headers are not used by v03).

    A body with a ``report`` object is a report, whatever the topic says.

    Raises:
        MessageError: see :func:`load`; a mandatory field missing, empty or malformed
            (``pubTime`` not a timestamp; ``baseUrl``/``relPath`` over
            ``MAX_FIELD_BYTES``), a field name over 255 bytes, a known field of the
            wrong type, an md5/sha512 identity whose value is not that hash in base64.
    """
    topic = (
        routing_key.decode("utf-8", "replace") if isinstance(routing_key, bytes) else routing_key
    )
    obj = load(body)
    pubtime, relpath, baseurl = (_text(obj, name) for name in MANDATORY)
    try:
        parse_time(pubtime)
    except TimeFormatError as e:
        raise MessageError(f"v03 pubTime: {e}") from None
    report = report_of(obj["report"]) if "report" in obj else None
    table: dict[str, str] = {}
    extra: dict[str, str] = {}
    for name, value in obj.items():
        if len(name) * 4 > MAX_NAME_BYTES and len(name.encode("utf-8")) > MAX_NAME_BYTES:
            raise bad(f"field name over {MAX_NAME_BYTES} bytes", name)
        if name not in FIELDS:  # most fields: text is a header, anything else an extra
            if type(value) is str:
                table[name] = value
            else:
                extra[name] = json.dumps(value)
            continue
        for kind, key, text in FIELDS[name](name, value, obj, relpath):
            (table if kind == "h" else extra)[key] = text
    if "sum" not in table:
        base = [p for p in relpath.split("/") if p][-1:] or [relpath]
        table["sum"] = "n," + hashlib.md5(base[0].encode("utf-8")).hexdigest()
    kind = "post" if report is None else "report"
    return Notice(kind, v02_time(pubtime), baseurl, relpath, table, topic, report, extra)


# --------------------------------------------------------------------------- encode


def _v03_time(value: str) -> str:
    """A v02 timestamp with v03's ``T``; anything else as it is."""
    if len(value) >= 14 and value[8] != "T" and value[:14].isascii() and value[:14].isdigit():
        return f"{value[:8]}T{value[8:]}"
    return value


class _Body:
    """The JSON object being built, in field order; ``fileOp`` is one object however
    many headers feed it."""

    def __init__(self, notice: Notice, strict: bool) -> None:
        self.n, self.strict = notice, strict
        self.obj: dict[str, Any] = {
            "pubTime": _v03_time(notice.pubtime),
            "relPath": notice.relpath,
            "baseUrl": notice.baseurl,
        }

    def refuse(self, name: str, why: str) -> None:
        """A header v03 cannot say: an error on the wire, kept as it is locally."""
        if self.strict:
            raise MessageError(f"cannot encode {name} {self.n.headers[name][:80]!r} in v03: {why}")
        self.obj[name] = self.n.headers[name]

    def op(self, key: str, value: str) -> None:
        self.obj.setdefault("fileOp", {})[key] = value

    def sum(self) -> None:
        if not self.n.headers["sum"]:
            return self.refuse("sum", "empty")
        method, value = split_sum(self.n.headers["sum"])
        if method in _HASH_LETTERS:
            name, size = _HASH_LETTERS[method]
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                raw = b""
            if len(raw) != size:
                return self.refuse("sum", f"not an {name} in hex")
            self.obj["identity"] = {"method": name, "value": base64.b64encode(raw).decode()}
        elif method in _TEXT_LETTERS:
            self.obj["identity"] = {"method": _TEXT_LETTERS[method], "value": value}
        elif method == "z" and value in _COD_NAMES:
            self.obj["identity"] = {"method": "cod", "value": _COD_NAMES[value]}
        elif method in ("R", "r", "m"):
            self.op("remove" if method != "m" else "directory", "")
            if method == "r":
                self.op("directory", "")
        elif method in ("L", "l"):
            if "link" not in self.n.headers:
                return self.refuse("sum", "a link without its link header")
            self.op("link" if method == "L" else "hlink", self.n.headers["link"])
        elif method != "n":  # md5 of the name: sr3 leaves the identity out
            return self.refuse("sum", f"no v03 identity for method {method!r}")
        return None

    def parts(self) -> None:
        words = self.n.headers["parts"].split(",")
        if len(words) != 5 or not all(w.isascii() and w.isdigit() for w in words[1:]):
            return self.refuse("parts", "not 5 fields")
        if words[0] == "1":
            self.obj["size"] = int(words[1])
        elif words[0] in _BLOCK_NAMES:
            numbers = map(int, words[1:])
            self.obj["blocks"] = dict(zip(BLOCK_KEYS, [_BLOCK_NAMES[words[0]], *numbers]))
        else:
            return self.refuse("parts", f"method {words[0]!r}")
        return None

    def build(self) -> dict[str, Any]:
        n = self.n
        for name, value in n.headers.items():
            if name in _RESERVED:
                raise MessageError(f"cannot encode header {name!r} in v03: that field is v03's own")
            if name == "sum":
                self.sum()
            elif name == "parts":
                self.parts()
            elif name == "oldname":
                self.op("rename", value)
            elif name == "link" and n.headers.get("sum", "")[:1] in ("L", "l"):
                continue
            elif name in ("mtime", "atime"):
                self.obj[name] = _v03_time(value)
            elif name == "message" and n.report is not None:
                self.obj["report"] = self.report()
            else:
                self.obj[name] = value
        if n.report is not None and "report" not in self.obj:
            self.obj["report"] = self.report()
        for name, text in n.extra.items():
            value = json.loads(text)
            if name in ("fileOp", "report") and isinstance(value, dict):
                self.obj[name] = {**self.obj.get(name, {}), **value}
            else:
                self.obj[name] = value
        return self.obj

    def report(self) -> dict[str, Any]:
        rep = self.n.report
        assert rep is not None
        out: dict[str, Any] = {"code": rep.code}
        if rep.completed:
            out["timeCompleted"] = _v03_time(rep.completed)
        if self.n.message is not None:
            out["message"] = self.n.message
        for key, value in (("host", rep.host), ("user", rep.user), ("elapsedTime", rep.elapsed)):
            if value:
                out[key] = value
        return out


# --------------------------------------------------------------------------- content


def inline_content_of(data: bytes, encoding: str = "guess", name: str = "") -> str:
    """The ``content`` field for a file's bytes, as JSON text (``Notice.extra``).

    ``encoding``: ``text`` writes UTF-8 when the bytes are UTF-8, ``binary`` always
    base64, ``guess`` UTF-8 when the bytes are UTF-8 and ``name`` looks like text to
    ``mimetypes`` (sr3's ``inlineEncoding``; sr3 3.3.1 swaps text and binary, which
    receivers cannot tell: both are valid content).
    """
    text = None
    if encoding != "binary":
        guessed = mimetypes.guess_type(name)[0] or ""
        if encoding == "text" or guessed.startswith("text"):
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = None
    if text is None:
        return json.dumps({"encoding": "base64", "value": base64.b64encode(data).decode()})
    return json.dumps({"encoding": "utf-8", "value": text})


def inline_data(notice: Notice) -> bytes | None:
    """The file's bytes carried inline by ``notice`` (v03 ``content``), None if none.

    Raises:
        MessageError: a ``content`` that is not ``{"encoding": "utf-8"|"base64",
            "value": <text>}`` with a value of that encoding.
    """
    text = notice.extra.get("content")
    if text is None:
        return None
    content = json.loads(text)
    value = content.get("value") if isinstance(content, dict) else None
    encoding = content.get("encoding") if isinstance(content, dict) else None
    if not isinstance(value, str) or encoding not in ("utf-8", "base64"):
        raise bad("content is not {encoding: utf-8|base64, value: text}", content)
    if encoding == "utf-8":
        return value.encode("utf-8")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise bad("content value is not base64", value[:80]) from None


# --------------------------------------------------------------------------- encode rules


def _check_relpath(relpath: str, strict: bool) -> None:
    try:
        relpath.encode("utf-8")
    except UnicodeEncodeError:
        raise MessageError(f"cannot encode relpath {relpath[:80]!r}: not valid Unicode") from None
    if not relpath:
        raise MessageError("cannot encode: empty relpath")
    if strict:
        try:
            check_name(relpath, v02=False)
        except PathError as e:
            raise MessageError(f"cannot encode relpath: {e}") from None


def topic_of(notice: Notice, prefix: str = DEFAULT_PREFIX) -> str:
    """The routing key of ``notice`` in v03: its own when it is a v03 topic, else
    ``prefix`` + directories (``v03.report...`` for a report); ``#`` escaped, cut."""
    topic = notice.topic
    if not (topic == "v03" or topic.startswith("v03.")):
        topic = post_topic(notice.relpath, prefix)
        return report_topic(topic) if notice.kind == "report" else topic
    return cut_topic(topic.replace("#", "%23"))


def encode(notice: Notice, *, strict: bool = True, topic_prefix: str = DEFAULT_PREFIX) -> Encoded:
    """Encode a notice as a v03 message (a JSON body, no headers).

    ``strict=False`` is for local storage: a header v03 has no field for (``sum`` of an
    unknown method, malformed ``parts``) is then kept as a plain field, which
    :func:`decode` gives back as the same header.

    Raises:
        MessageError: pubtime is not a timestamp; relpath empty, with a control
            character (strict) or not valid Unicode; a header v03 cannot say (strict);
            the body would be over ``MAX_BODY_BYTES``.
    """
    _check_relpath(notice.relpath, strict)
    try:
        parse_time(notice.pubtime)
    except TimeFormatError as e:
        raise MessageError(f"cannot encode: {e}") from None
    if not notice.baseurl:
        raise MessageError("cannot encode: empty baseurl")
    try:
        body = json.dumps(_Body(notice, strict).build()).encode("ascii")
    except (ValueError, UnicodeError) as e:
        raise MessageError(f"cannot encode in v03: {e}") from None
    if len(body) > MAX_BODY_BYTES:
        raise MessageError(f"cannot encode: v03 body of {len(body)} bytes, over {MAX_BODY_BYTES}")
    return Encoded(topic_of(notice, topic_prefix), {}, body, CONTENT_TYPE)
