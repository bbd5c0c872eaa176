"""The v02 codec: AMQP (topic, headers, body) <-> :class:`~sarra.core.notice.Notice`.

Owns the wire format of spec sections 2-5, 8, 9.2-9.5 and the producer rules of 15.1 /
17.5-17.7: post and report bodies, header text conversion and the 253-byte header limit.
It knows ``sum`` and ``parts`` only as strings (checksums: ``sarra.core.checksum``; block
arithmetic: ``sarra.core.partition``).  Pure: no I/O, no pika.

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

import json
from collections.abc import Mapping
from typing import Any, Union

from sarra.core.errors import MessageError, PathError
from sarra.core.notice import (
    FORBIDDEN_HEADERS,
    MAX_FIELD_BYTES,
    MAX_HEADER_BYTES,
    Encoded,
    IgnoredMessage,
    Notice,
    Report,
    _escape_topic,
    _excerpt,
    check_name,
    cut_topic,
    decode_path,
    encode_path,
    post_topic,
    report_topic,
)
from sarra.core.timestamps import TimeFormatError, parse_time

_TOPIC_TYPES = {"post": "post", "report": "report", "log": "report"}


class NotV02(MessageError):
    """The body is v03 JSON (``{``) or the 2018 transitional tuple (``[``), or the topic
    is not ``v02``: hand it to another decoder or drop it."""


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
    forbidden = sorted(FORBIDDEN_HEADERS.intersection(headers)) if strict else []
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
    splits the body at spaces only, which ``encode_path`` escapes, and keeps its first
    line only)."""
    try:
        relpath.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return bool(relpath) and "\n" not in relpath


def encode(notice: Notice, *, strict: bool = True) -> Encoded:
    """Encode a notice for publishing, byte-exact per spec 4.1 / 9.2 (no newline).

    ``strict=False`` is for local storage (the retry queue), never for the wire: it
    keeps what ``decode`` took from another program (a header of 253 bytes or more, a
    v03 or legacy header, a control character in the relpath), so that a message
    received can always be kept for its retry and decoded back the same.

    Raises:
        MessageError: a header is a v03/legacy field or is >= 253 UTF-8 bytes (strict);
            the notice has ``extra`` v03 values; pubtime is not a v02 timestamp;
            baseurl/report fields empty or containing white space; relpath cannot be
            carried (17.7); topic type does not match the kind.
    """
    if notice.extra:
        raise MessageError(
            f"cannot encode: v03 field {next(iter(notice.extra))!r} has no v02 form "
            "(use Notice.relayable())"
        )
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
