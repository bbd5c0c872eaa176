"""The notice codecs' one entry point: everything else imports ``sarra.core.message``.

The format-independent model (``Notice``, ``Report``, ``Encoded``, path, topic and ``sum``
helpers, the post and report builders) lives in ``sarra.core.notice``; the wire formats
in ``sarra.core.v02`` and ``sarra.core.v03``.  This module re-exports the model and
chooses the codec: :func:`decode` by the body (a JSON object is v03, whatever the topic
says: sr3 may send v03 bodies on ``v02`` topics, spec 14), :func:`encode` by the format
asked for, :func:`encode_local` (the retry queue) by what can carry the notice whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Union

from sarra.core import v02, v03
from sarra.core.errors import MessageError
from sarra.core.notice import (
    FORBIDDEN_HEADERS,
    LEGACY_HEADERS,
    MAX_FIELD_BYTES,
    MAX_HEADER_BYTES,
    MAX_TOPIC_BYTES,
    V03_HEADERS,
    Encoded,
    IgnoredMessage,
    Notice,
    Report,
    check_name,
    cut_header,
    cut_topic,
    decode_path,
    encode_path,
    join_url,
    make_report,
    new_post,
    post_topic,
    report_topic,
    split_sum,
)
from sarra.core.timestamps import format_time, format_time_ns, parse_time
from sarra.core.v02 import NotV02
from sarra.core.v03 import inline_content_of, inline_data

#: the wire formats, and the topic prefix each posts on by default (sr3 posts v03 on
#: ``v03.<dirs>``, without a type word)
FORMATS = ("v02", "v03")
DEFAULT_PREFIX = {"v02": "v02.post", "v03": v03.DEFAULT_PREFIX}


def format_of(body: Union[bytes, str]) -> str:
    """``v03`` for a body whose first non-blank character is ``{``, else ``v02``."""
    head = body[:64].lstrip()[:1]
    return "v03" if head in (b"{", "{") else "v02"


def decode(
    routing_key: Union[str, bytes], headers: Mapping[Any, Any] | None, body: Union[bytes, str]
) -> Notice:
    """Decode one AMQP message, v02 or v03, into a :class:`Notice`.

    Raises:
        MessageError: see ``v02.decode`` and ``v03.decode`` (``NotV02`` for a 2018
            tuple body ``[`` or a non-v02 topic with a text body; ``IgnoredMessage``
            for ``v02.pulse``...).
    """
    if format_of(body) == "v03":
        return v03.decode(routing_key, headers, body)
    return v02.decode(routing_key, headers, body)


def prefix_for(fmt: str, configured: str | None = None) -> str:
    """The topic prefix ``fmt`` posts on: ``configured`` when it is a topic of that
    version (``v03``, ``v03.post``...), else the format's default."""
    if configured and configured.split(".", 1)[0] == fmt:
        return configured
    return DEFAULT_PREFIX[fmt]


def post_formats(
    formats: Sequence[str] | None, topic_prefix: str | None = None
) -> list[tuple[str, str]]:
    """(format, topic prefix) of each format a producer posts in.

    ``formats`` is the ``post_format`` option; unset, it is the version of
    ``topic_prefix`` when that is ``v03``-something (as sr3 decides), else ``v02``.  Each
    format posts on ``topic_prefix`` when it is of its version, else on its default.
    """
    chosen = list(formats or ())
    if not chosen:
        version = (topic_prefix or "").split(".", 1)[0]
        chosen = [version if version in FORMATS else "v02"]
    return [(fmt, prefix_for(fmt, topic_prefix)) for fmt in dict.fromkeys(chosen)]


def _in_format(notice: Notice, fmt: str, prefix: str | None) -> Notice:
    """``notice`` with a topic of ``fmt``'s version: its own if it has one, else the one
    derived from its relpath with ``prefix`` (``post_topic``, ``report_topic``)."""
    if notice.topic.split(".", 1)[0] == fmt:
        return notice
    topic = post_topic(notice.relpath, prefix_for(fmt, prefix))
    return notice.replace(topic=report_topic(topic) if notice.kind == "report" else topic)


def encode(
    notice: Notice, fmt: str = "v02", *, strict: bool = True, topic_prefix: str | None = None
) -> Encoded:
    """Encode ``notice`` in ``fmt`` (``v02`` or ``v03``) for publishing.

    A notice whose topic is of another version (a v02 post relayed as v03...) is given
    the topic derived from its relpath with ``topic_prefix`` (see :func:`prefix_for`).
    v02 output refuses what v02 cannot carry: relays call ``Notice.relayable()`` first.

    Raises:
        MessageError: see ``v02.encode``/``v03.encode``; ValueError: unknown ``fmt``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown notice format {fmt!r} (use one of {', '.join(FORMATS)})")
    notice = _in_format(notice, fmt, topic_prefix)
    if fmt == "v03":
        return v03.encode(notice, strict=strict)
    return v02.encode(notice, strict=strict)


def encode_local(notice: Notice) -> Encoded:
    """Encode ``notice`` for local storage (the retry queue) so that :func:`decode`
    gives it back the same: v02 when v02 can carry it as received, else v03 (a v03
    notice with ``extra`` values, a relpath with a newline, a v03 topic...).

    Raises:
        MessageError: neither format can hold it (a pubtime that is no timestamp...).
    """
    try:
        return v02.encode(notice, strict=False)
    except MessageError:
        return v03.encode(notice, strict=False)


__all__ = [
    "DEFAULT_PREFIX",
    "FORBIDDEN_HEADERS",
    "FORMATS",
    "LEGACY_HEADERS",
    "MessageError",
    "MAX_FIELD_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_TOPIC_BYTES",
    "V03_HEADERS",
    "Encoded",
    "IgnoredMessage",
    "NotV02",
    "Notice",
    "Report",
    "check_name",
    "cut_header",
    "cut_topic",
    "decode",
    "decode_path",
    "encode",
    "encode_local",
    "encode_path",
    "format_of",
    "format_time",
    "format_time_ns",
    "inline_content_of",
    "inline_data",
    "join_url",
    "make_report",
    "new_post",
    "parse_time",
    "post_formats",
    "post_topic",
    "prefix_for",
    "report_topic",
    "split_sum",
]
