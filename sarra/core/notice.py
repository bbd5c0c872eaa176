"""What a notice is, whatever its wire format: :class:`Notice`, its report fields and
what goes to the broker (:class:`Encoded`), plus the rules both codecs share.

Owns the parts of spec sections 3-5, 9 and 17.5-17.7 that do not depend on how a notice
is written on the wire: relpath checks and encoding (``%20``/``%23`` only), topic
derivation and the 253-byte cut, the ``sum`` split, and the builders of posts and
reports.  The codecs (``sarra.core.v02``, ...) turn a Notice into bytes and back;
``sarra.core.message`` is the facade everything else imports.  Pure: no I/O, no pika.

A Notice is written in v02 terms (``sum``, ``parts``, ``link``, ``oldname`` ... headers)
whichever format it came in, so that nothing downstream needs to know the format.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Union

from sarra.core.errors import MessageError, PathError
from sarra.core.timestamps import format_time

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
_EXCERPT = 80


class IgnoredMessage(MessageError):
    """A message type no codec handles (``v02.pulse`` ...): drop quietly."""


@dataclass(frozen=True)
class Report:
    """The four report fields after relpath (9.2). ``elapsed`` is kept as on the wire.

    ``completed`` is v03's ``timeCompleted`` (a timestamp, written without the ``T``);
    v02 has no place for it.  sr3's reports name neither host, user nor elapsed time:
    those are then empty.
    """

    code: int
    host: str
    user: str
    elapsed: str
    completed: str = field(default="", compare=False)


@functools.lru_cache(maxsize=1024)
def _say_left_out(name: str) -> None:
    """Log, once per field name and process, that v02 output leaves a field out."""
    log.info("v02 cannot carry %r: left out of v02 notices (said once)", name[:80])


def _without(headers: Mapping[str, str], names: Any) -> dict[str, str]:
    gone = set(names)
    return {k: v for k, v in headers.items() if k not in gone}


def _freeze(headers: Mapping[str, str] | None) -> Mapping[str, str]:
    items = dict(headers or {})
    for key, value in items.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"header {key!r}: names and values must be str, got {value!r}")
    return MappingProxyType(items)


@dataclass(frozen=True)
class Notice:
    """One decoded message (a post or a report), in v02 terms whatever format it came in.

    ``relpath`` is decoded (``%20`` -> space, ``%23`` -> ``#``), leading ``/`` as received.
    ``topic`` is the routing key as received (decode) or as it will be sent (new_post).
    ``headers`` are text: the v02 headers, and v03 fields whose value is text.
    ``extra`` holds the v03 fields whose value is not text (``content``, ``geometry``,
    numbers, lists ...): name -> the value as JSON text, kept verbatim for v03 output.
    """

    kind: str
    pubtime: str
    baseurl: str
    relpath: str
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    topic: str = ""
    report: Report | None = None
    extra: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.kind not in ("post", "report"):
            raise ValueError(f"kind must be 'post' or 'report', not {self.kind!r}")
        if (self.kind == "report") != (self.report is not None):
            raise ValueError("a report notice needs report fields, a post must have none")
        object.__setattr__(self, "headers", _freeze(self.headers))
        object.__setattr__(self, "extra", _freeze(self.extra))

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
        """Copy without what v02 output refuses (5.12, 5.14): v03 and legacy headers, and
        the ``extra`` v03 values.  Each name left out is said once in the log."""
        dropped = sorted(FORBIDDEN_HEADERS.intersection(self.headers))
        if not dropped and not self.extra:
            return self
        for name in [*dropped, *self.extra]:
            _say_left_out(name)
        return dataclasses.replace(self, headers=_without(self.headers, dropped), extra={})

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


def check_name(relpath: str, *, v02: bool = True) -> None:
    """Refuse names that cannot be posted (4.4, 17.7).

    ``v02=False`` (a name posted in v03 only) allows the literal ``%20``/``%23`` that
    v02 cannot carry: JSON carries every character.

    Raises:
        PathError: empty, contains a literal ``%20``/``%23`` (v02), a control character
            (0x00-0x1F, 0x7F) or text that is not valid Unicode (lone surrogates).
    """
    if not relpath:
        raise PathError("empty path cannot be posted")
    for bad in ("%20", "%23") if v02 else ():
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
    """v02 topics escape ' ' and '#'; v03 ones only '#', as sr3 writes them (a space is
    legal in a routing key; '#' would be a wildcard in a binding key made from it)."""
    if topic.startswith("v03"):
        return topic.replace("#", "%23")
    return topic.replace(" ", "%20").replace("#", "%23")


def cut_topic(topic: str, limit: int = MAX_TOPIC_BYTES) -> str:
    """Cut a topic to at most ``limit`` UTF-8 bytes on a character boundary (3.6, 17.5).

    Logs a warning when it cuts.
    """
    if len(topic) * 4 <= limit:
        return topic
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

    The file name is never part of it; '#' becomes ``%23`` and, in v02 topics, ' '
    becomes ``%20``; cut to 253 bytes.
    """
    dirs = [part for part in relpath.split("/") if part][:-1]
    return cut_topic(_escape_topic(".".join([prefix, *dirs])))


def report_topic(topic: str) -> str:
    """Report topic for a post topic (3.9): the type word becomes ``report``.

    ``v02.post.data.small`` -> ``v02.report.data.small``; ``v02.post`` -> ``v02.report``.
    v03 topics have no type word by default (sr3 posts on ``v03.<dirs>``): ``report`` is
    put after ``v03`` (``v03.data`` and ``v03.post.data`` -> ``v03.report.data``), as
    sr_post(7) names them.  The result is escaped as its version wants and cut to 253
    bytes.

    Raises:
        MessageError: the topic starts with neither ``v02.<type>`` nor ``v03``.
    """
    words = topic.split(".", 2)
    if words[0] == "v03":
        rest = words[2:] if len(words) > 1 and words[1] in ("post", "report") else words[1:]
        return cut_topic(_escape_topic(".".join(["v03", "report", *rest])))
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


def _excerpt(body: Union[str, bytes]) -> str:
    text = repr(body[:_EXCERPT])
    return text + ("..." if len(body) > _EXCERPT else "")


# --------------------------------------------------------------------------- producers


def new_post(
    baseurl: str,
    relpath: str,
    headers: Mapping[str, str],
    pubtime: str | None = None,
    topic_prefix: str = "v02.post",
    *,
    v02: bool = True,
) -> Notice:
    """Build a post for un-encoded ``relpath``; the topic is derived per 3.2.

    ``pubtime`` defaults to now (``YYYYMMDDHHMMSS.fff``); ``v02=False`` for a post
    made for v03 only (see :func:`check_name`).

    Raises:
        PathError: the name cannot be carried (17.7).
    """
    check_name(relpath, v02=v02)
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
    ``message``; topic ``v02.report.<same dirs>`` (``v03.report...`` for a v03 post);
    elapsed formatted ``%.6f``; completed now (v03's ``timeCompleted``).  Every
    header value past the v02 limit (the reason, or a long header of a v03 post) is
    cut with :func:`cut_header`: a report is never dropped for its length.

    Raises:
        MessageError: ``post`` is not a post, or ``code`` is not in 100-999.
    """
    if post.kind != "post":
        raise MessageError("make_report needs a post, got a report")
    if not 100 <= int(code) <= 999:
        raise MessageError(f"report code {code!r} is not a 3-digit status")
    headers = {k: cut_header(v) for k, v in post.headers.items() if k not in FORBIDDEN_HEADERS}
    headers["message"] = cut_header(message)
    topic = report_topic(post.topic or post_topic(post.relpath))
    report = Report(int(code), host, user, f"{elapsed:.6f}", format_time(time.time()))
    return Notice("report", post.pubtime, post.baseurl, post.relpath, headers, topic, report)
