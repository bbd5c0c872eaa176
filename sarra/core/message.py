"""The v02 message codec: AMQP (topic, headers, body) <-> :class:`Notice`.

Owns the wire format of spec sections 2-5, 8, 9.2-9.5 and the producer rules of 15.1 /
17.5-17.7: topic derivation and cut, relpath encoding (``%20``/``%23`` only), post and
report bodies, header text conversion and the 253-byte header limit. It knows ``sum`` and
``parts`` only as strings (checksums: ``sarra.core.checksum``; block arithmetic:
``sarra.core.partition``). Pure: no I/O, no pika.

Decisions recorded here:

* ``decode`` is liberal (15.2): it keeps every header it receives, legacy and v03 included.
* ``encode`` is strict (15.1): it **refuses** (:class:`MessageError` naming the header) a
  notice carrying a v03 field or a legacy header, rather than silently dropping data.
  Relays call :meth:`Notice.relayable` first, which removes them (and logs at debug).
* ``encode`` normalises the topic: raw spaces/``#`` (sent by v2 reports and by sr3) are
  escaped, a report whose topic type is ``post`` gets ``report``, and the topic is cut to
  253 bytes on a character boundary. So a decoded v2-defect report re-encodes in dd form.
* A message on a ``v02.post`` topic that has a ``message`` header and a report-shaped
  body (7+ fields, 3-digit code 4th from the end) is decoded as a report: that is the
  v2 defect of 3.9 for top-level files.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Union

from sarra.core.errors import MessageError, PathError
from sarra.core.timestamps import TimeFormatError

# re-exported: the time helpers are part of this codec's public API
from sarra.core.timestamps import format_time as format_time
from sarra.core.timestamps import format_time_ns as format_time_ns
from sarra.core.timestamps import parse_time as parse_time

log = logging.getLogger(__name__)

MAX_TOPIC_BYTES = 253
#: header values of this many UTF-8 bytes or more are never published (5.15, 17.6)
MAX_HEADER_BYTES = 253
#: longest relpath or baseurl decoded (UTF-8 bytes): PATH_MAX, longer names no file.
#: Everything downstream (accept/reject masks, which are the user's own regexes, log
#: redaction, placement) then works on bounded text whatever a hostile poster sends.
MAX_FIELD_BYTES = 4096
V03_HEADERS = frozenset(
    "identity integrity size blocks content fileOp pubTime baseUrl relPath contentType "
    "report".split()
)
LEGACY_HEADERS = frozenset({"flow", "filename", "event"})
FORBIDDEN_HEADERS = V03_HEADERS | LEGACY_HEADERS
_TOPIC_TYPES = {"post": "post", "report": "report", "log": "report"}
_EXCERPT = 80


class NotV02(MessageError):
    """The body is v03 JSON (``{``) or the 2018 transitional tuple (``[``), or the topic
    is not ``v02``: hand it to another decoder or drop it."""


class IgnoredMessage(MessageError):
    """A v02 topic type this codec does not handle (``v02.pulse`` ...): drop quietly."""


@dataclass(frozen=True)
class Report:
    """The four report fields after relpath (9.2). ``elapsed`` is kept as on the wire."""

    code: int
    host: str
    user: str
    elapsed: str


def _freeze(headers: Mapping[str, str] | None) -> Mapping[str, str]:
    items = dict(headers or {})
    for key, value in items.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"header {key!r}: names and values must be str, got {value!r}")
    return MappingProxyType(items)


@dataclass(frozen=True)
class Notice:
    """One decoded v02 message (a post or a report), immutable.

    ``relpath`` is decoded (``%20`` -> space, ``%23`` -> ``#``), leading ``/`` as received.
    ``topic`` is the routing key as received (decode) or as it will be sent (new_post).
    """

    kind: str
    pubtime: str
    baseurl: str
    relpath: str
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    topic: str = ""
    report: Report | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("post", "report"):
            raise ValueError(f"kind must be 'post' or 'report', not {self.kind!r}")
        if (self.kind == "report") != (self.report is not None):
            raise ValueError("a report notice needs report fields, a post must have none")
        object.__setattr__(self, "headers", _freeze(self.headers))

    def replace(self, **changes: Any) -> Notice:
        """Return a copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def with_headers(
        self, changes: Mapping[str, str | None] | None = None, /, **more: str | None
    ) -> Notice:
        """Return a copy with headers set; a ``None`` value deletes that header.

        Names that are not Python identifiers go in the ``changes`` mapping.
        """
        headers = dict(self.headers)
        for name, value in {**(changes or {}), **more}.items():
            if value is None:
                headers.pop(name, None)
            else:
                headers[name] = value
        return dataclasses.replace(self, headers=headers)

    def relayable(self) -> Notice:
        """Copy without the v03/legacy headers that :func:`encode` refuses (5.12, 5.14)."""
        dropped = sorted(FORBIDDEN_HEADERS.intersection(self.headers))
        if not dropped:
            return self
        log.debug("dropping headers not allowed in v02 output: %s", ", ".join(dropped))
        return self.with_headers(dict.fromkeys(dropped))

    @property
    def sum_method(self) -> str | None:
        """The ``sum`` method letter (or name), None when there is no ``sum`` header."""
        value = self.headers.get("sum")
        return None if value is None else split_sum(value)[0]

    @property
    def is_removal(self) -> bool:
        return self.sum_method == "R"

    @property
    def is_link(self) -> bool:
        return self.sum_method == "L"

    @property
    def url(self) -> str:
        """baseurl + decoded relpath with exactly one ``/`` at the junction (4.5)."""
        return join_url(self.baseurl, self.relpath)

    @property
    def message(self) -> str | None:
        """The report's ``message`` header text (None when absent)."""
        return self.headers.get("message")


@dataclass(frozen=True)
class Encoded:
    """What to hand to the broker: routing key, header table (all str), body bytes."""

    topic: str
    headers: dict[str, str]
    body: bytes
    content_type: str = "text/plain"
    delivery_mode: int = 2


# --------------------------------------------------------------------------- paths


def encode_path(path: str) -> str:
    """Encode a relpath for the body: space -> ``%20``, ``#`` -> ``%23``, nothing else."""
    return path.replace(" ", "%20").replace("#", "%23")


def decode_path(path: str) -> str:
    """Decode a wire relpath: ``%20`` -> space, ``%23`` -> ``#``, nothing else (lossy)."""
    return path.replace("%20", " ").replace("%23", "#")


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def check_name(relpath: str) -> None:
    """Refuse names v02 cannot carry (4.4, 17.7).

    Raises:
        PathError: empty, contains a literal ``%20``/``%23``, a control character
            (0x00-0x1F, 0x7F) or text that is not valid Unicode (lone surrogates).
    """
    if not relpath:
        raise PathError("empty path cannot be posted")
    for bad in ("%20", "%23"):
        if bad in relpath:
            raise PathError(f"{relpath!r}: contains a literal {bad!r}, which v02 cannot carry")
    control = _CONTROL.search(relpath)
    if control is not None:
        raise PathError(f"{relpath!r}: contains control character {control[0]!r}")
    try:
        relpath.encode("utf-8")
    except UnicodeEncodeError:
        raise PathError(f"{relpath!r}: not valid UTF-8 text (undecodable file name)") from None


def join_url(baseurl: str, relpath: str) -> str:
    """Join baseurl and relpath with exactly one ``/`` between them."""
    if baseurl.endswith("/") and relpath.startswith("/"):
        return baseurl + relpath[1:]
    if baseurl.endswith("/") or relpath.startswith("/"):
        return baseurl + relpath
    return f"{baseurl}/{relpath}"


# --------------------------------------------------------------------------- topics


def _escape_topic(topic: str) -> str:
    return topic.replace(" ", "%20").replace("#", "%23")


def cut_topic(topic: str, limit: int = MAX_TOPIC_BYTES) -> str:
    """Cut a topic to at most ``limit`` UTF-8 bytes on a character boundary (3.6, 17.5).

    Logs a warning when it cuts.
    """
    raw = topic.encode("utf-8")
    if len(raw) <= limit:
        return topic
    cut = raw[:limit].decode("utf-8", errors="ignore")
    log.warning(
        "topic too long (%d bytes), cut to %d bytes to fit the AMQP limit: %s",
        len(raw),
        len(cut.encode("utf-8")),
        cut,
    )
    return cut


def post_topic(relpath: str, prefix: str = "v02.post") -> str:
    """Routing key for a post of un-encoded ``relpath`` (3.2): prefix + directories.

    The file name is never part of it; ' ' and '#' become ``%20``/``%23``; cut to 253 bytes.
    """
    dirs = [part for part in relpath.split("/") if part][:-1]
    return cut_topic(_escape_topic(".".join([prefix, *dirs])))


def report_topic(topic: str) -> str:
    """Report topic for a post topic (3.9): the type word becomes ``report``.

    ``v02.post.data.small`` -> ``v02.report.data.small``; ``v02.post`` -> ``v02.report``.
    Raw spaces/``#`` (v2, sr3) are escaped and the result is cut to 253 bytes.

    Raises:
        MessageError: the topic does not start with ``v02.<type>``.
    """
    words = topic.split(".", 2)
    if len(words) < 2 or words[0] != "v02" or not words[1]:
        raise MessageError(f"cannot derive a report topic from {topic!r}: not a v02 topic")
    return cut_topic(_escape_topic(".".join(["v02", "report", *words[2:]])))


# --------------------------------------------------------------------------- sum


def split_sum(value: str) -> tuple[str, str]:
    """Split a ``sum`` header into (method, value); bare ``n``/``0`` give an empty value.

    Raises:
        MessageError: the header is empty.
    """
    method, _, rest = value.partition(",")
    if not method:
        raise MessageError(f"bad sum header {value!r}: no method")
    return method, rest


# --------------------------------------------------------------------------- decode


def _excerpt(body: Union[str, bytes]) -> str:
    text = repr(body[:_EXCERPT])
    return text + ("..." if len(body) > _EXCERPT else "")


def _header_text(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            excerpt = _excerpt(bytes(value))
            raise MessageError(f"header {name!r} is not valid UTF-8: {excerpt}") from None
    if value is None:  # AMQP void
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)
    return str(value)


def _decode_headers(headers: Mapping[Any, Any] | None) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, value in (headers or {}).items():
        name = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        result[name] = _header_text(name, value)
    return result


def _topic_kind(topic: str) -> str:
    words = topic.split(".")
    if words[0] != "v02":
        raise NotV02(f"topic {topic!r} is not a v02 topic")
    kind = _TOPIC_TYPES.get(words[1] if len(words) > 1 else "")
    if kind is None:
        raise IgnoredMessage(f"topic {topic!r}: v02 message type not handled")
    return kind


def _body_line(body: Union[bytes, str]) -> str:
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError as e:
            excerpt = _excerpt(bytes(body))
            raise MessageError(f"body is not UTF-8 ({e.reason}): {excerpt}") from None
    else:
        text = body
    if text.lstrip()[:1] in ("{", "["):
        raise NotV02(f"body is v03/JSON, not v02: {_excerpt(text)}")
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    return text.split("\n", 1)[0]


def _looks_like_report(fields: list[str], headers: Mapping[str, str]) -> bool:
    code = fields[-4] if len(fields) >= 7 else ""
    return "message" in headers and len(code) == 3 and code.isdigit()


def _parse_report(fields: list[str], text: str) -> tuple[str, Report]:
    if len(fields) < 7:
        raise MessageError(f"report body has {len(fields)} fields, needs 7: {_excerpt(text)}")
    code, host, user, elapsed = fields[-4:]
    if not (len(code) == 3 and code.isascii() and code.isdigit()):
        raise MessageError(f"report code {code!r} is not 3 digits: {_excerpt(text)}")
    if not (host and user and elapsed):
        raise MessageError(f"report body has empty host/user/elapsed: {_excerpt(text)}")
    return " ".join(fields[2:-4]), Report(int(code), host, user, elapsed)


def decode(
    routing_key: Union[str, bytes], headers: Mapping[Any, Any] | None, body: Union[bytes, str]
) -> Notice:
    """Decode one AMQP message into a :class:`Notice` (spec 15.2).

    Raises:
        NotV02: v03 JSON / tuple body, or a topic not starting with ``v02``.
        IgnoredMessage: a v02 topic type other than post/report/log (e.g. ``v02.pulse``).
        MessageError: body not UTF-8, fewer than 3 fields (7 for reports), bad pubtime,
            empty baseurl/relpath or one over ``MAX_FIELD_BYTES``, bad report code,
            header not UTF-8.
    """
    topic = (
        routing_key.decode("utf-8", "replace") if isinstance(routing_key, bytes) else routing_key
    )
    kind = _topic_kind(topic)
    text = _body_line(body)
    fields = text.split(" ")
    if len(fields) < 3:
        raise MessageError(f"body has {len(fields)} fields, needs at least 3: {_excerpt(text)}")
    table = _decode_headers(headers)
    if kind == "post" and _looks_like_report(fields, table):
        kind = "report"
    report = None
    if kind == "report":
        wire_relpath, report = _parse_report(fields, text)
    else:
        wire_relpath = fields[2]
    pubtime, baseurl = fields[0], fields[1]
    try:
        parse_time(pubtime)
    except TimeFormatError as e:
        raise MessageError(f"bad pubtime in body ({e}): {_excerpt(text)}") from None
    if not baseurl or not wire_relpath:
        raise MessageError(f"empty baseurl or relpath in body: {_excerpt(text)}")
    for name, value in (("baseurl", baseurl), ("relpath", wire_relpath)):
        if len(value) > MAX_FIELD_BYTES and len(value.encode("utf-8")) > MAX_FIELD_BYTES:
            raise MessageError(
                f"{name} of {len(value.encode('utf-8'))} bytes, over {MAX_FIELD_BYTES}: "
                f"{_excerpt(text)}"
            )
    return Notice(kind, pubtime, baseurl, decode_path(wire_relpath), table, topic, report)


# --------------------------------------------------------------------------- encode


def _check_field(name: str, value: str) -> None:
    # str.split() cuts at exactly the characters str.isspace() accepts
    if not value or value.split() != [value]:
        raise MessageError(f"cannot encode: {name} {value!r} is empty or contains white space")


def _wire_topic(notice: Notice) -> str:
    topic = notice.topic or post_topic(notice.relpath)
    words = topic.split(".", 2)
    if words[0] != "v02" or len(words) < 2:
        raise MessageError(f"cannot encode: topic {topic!r} does not start with 'v02.'")
    expected = ("report", "log") if notice.kind == "report" else ("post",)
    if words[1] not in expected:
        if notice.kind != "report" or words[1] != "post":
            raise MessageError(f"cannot encode a {notice.kind} on topic {topic!r}")
        return report_topic(topic)
    return cut_topic(_escape_topic(topic))


def _wire_headers(headers: Mapping[str, str], strict: bool = True) -> dict[str, str]:
    forbidden = sorted(FORBIDDEN_HEADERS.intersection(headers))
    if forbidden:
        raise MessageError(
            f"cannot encode: header {forbidden[0]!r} is a v03 or legacy field that v02 "
            "output must not carry (use Notice.relayable())"
        )
    for name, value in headers.items() if strict else ():
        size = len(value.encode("utf-8"))
        if size >= MAX_HEADER_BYTES:
            raise MessageError(
                f"cannot encode: header {name!r} is {size} bytes, the v02 limit is "
                f"{MAX_HEADER_BYTES - 1} (message not published)"
            )
    return dict(headers)


def _round_trips(relpath: str) -> bool:
    """True when ``decode`` gives ``relpath`` back from the body ``encode`` writes (it
    splits the body at spaces only, which ``encode_path`` escapes, and drops one final
    newline)."""
    try:
        relpath.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return bool(relpath) and not relpath.endswith("\n")


def encode(notice: Notice, *, strict: bool = True) -> Encoded:
    """Encode a notice for publishing, byte-exact per spec 4.1 / 9.2 (no newline).

    ``strict=False`` is for local storage (the retry queue), never for the wire: it
    keeps what ``decode`` took from another program (a header of 253 bytes or more, a
    control character in the relpath), so that a message received can always be kept
    for its retry and decoded back the same.

    Raises:
        MessageError: a header is a v03/legacy field or is >= 253 UTF-8 bytes; pubtime is
            not a v02 timestamp; baseurl/report fields empty or containing white space;
            relpath cannot be carried (17.7); topic type does not match the kind.
    """
    try:
        check_name(notice.relpath)
    except PathError as e:
        if strict or not _round_trips(notice.relpath):
            raise MessageError(f"cannot encode relpath: {e}") from None
    _check_field("baseurl", notice.baseurl)
    _check_field("pubtime", notice.pubtime)
    try:
        parse_time(notice.pubtime)
    except TimeFormatError as e:
        raise MessageError(f"cannot encode: {e}") from None
    fields = [notice.pubtime, notice.baseurl, encode_path(notice.relpath)]
    if notice.report is not None:
        rep = notice.report
        if not 0 <= rep.code <= 999:
            raise MessageError(f"cannot encode: report code {rep.code} is not 3 digits")
        for name in ("host", "user", "elapsed"):
            _check_field(f"report {name}", getattr(rep, name))
        fields += [f"{rep.code:03d}", rep.host, rep.user, rep.elapsed]
    headers = _wire_headers(notice.headers, strict)
    return Encoded(_wire_topic(notice), headers, " ".join(fields).encode("utf-8"))


# --------------------------------------------------------------------------- producers


def new_post(
    baseurl: str,
    relpath: str,
    headers: Mapping[str, str],
    pubtime: str | None = None,
    topic_prefix: str = "v02.post",
) -> Notice:
    """Build a post for un-encoded ``relpath``; the topic is derived per 3.2.

    ``pubtime`` defaults to now (``YYYYMMDDHHMMSS.fff``).

    Raises:
        PathError: the name cannot be carried (17.7).
    """
    check_name(relpath)
    stamp = pubtime if pubtime is not None else format_time(time.time())
    return Notice("post", stamp, baseurl, relpath, headers, post_topic(relpath, topic_prefix))


def cut_header(value: str, limit: int = MAX_HEADER_BYTES - 1) -> str:
    """``value`` cut to at most ``limit`` UTF-8 bytes on a character boundary, ending ``...``.

    For report texts: a reason naming a long path, or a server's error page, must
    shorten the report, never stop it from being published.
    """
    raw = value.encode("utf-8")
    if len(raw) <= limit:
        return value
    return raw[: limit - 3].decode("utf-8", errors="ignore") + "..."


def make_report(
    post: Notice, code: int, message: str, host: str, user: str, elapsed: float
) -> Notice:
    """Build the report answering ``post`` (9.2, 9.3, 3.9).

    Copies every post header except the v03/legacy ones encode refuses, adds
    ``message``; topic ``v02.report.<same dirs>``; elapsed formatted ``%.6f``.  Every
    header value past the v02 limit (the reason, or a long header of a v03 post) is
    cut with :func:`cut_header`: a report is never dropped for its length.

    Raises:
        MessageError: ``post`` is not a post, or ``code`` is not in 100-999.
    """
    if post.kind != "post":
        raise MessageError("make_report needs a post, got a report")
    if not 100 <= int(code) <= 999:
        raise MessageError(f"report code {code!r} is not a 3-digit status")
    headers = {k: cut_header(v) for k, v in post.relayable().headers.items()}
    headers["message"] = cut_header(message)
    topic = report_topic(post.topic or post_topic(post.relpath))
    report = Report(int(code), host, user, f"{elapsed:.6f}")
    return Notice("report", post.pubtime, post.baseurl, post.relpath, headers, topic, report)
