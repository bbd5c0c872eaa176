"""The notice codecs' one entry point: everything else imports ``sarra.core.message``.

The format-independent model (``Notice``, ``Report``, ``Encoded``, path, topic and ``sum``
helpers, the post and report builders) lives in ``sarra.core.notice``; the v02 wire
format in ``sarra.core.v02``.  This module re-exports both, so importers need not know
how the core is split.
"""

from __future__ import annotations

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
from sarra.core.v02 import NotV02, decode, encode

__all__ = [
    "FORBIDDEN_HEADERS",
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
    "encode_path",
    "format_time",
    "format_time_ns",
    "join_url",
    "make_report",
    "new_post",
    "parse_time",
    "post_topic",
    "report_topic",
    "split_sum",
]
