"""Text that is safe to log: URL passwords hidden, control characters escaped, lines cut.

Everything here runs on text a hostile source chose (relpaths, URLs, reasons), so
every function is linear in the length of its input: no backtracking regex, no nested
scan.  :func:`redact` used to be one regex (``scheme://user:password@``) whose scheme
part backtracked from every start position: 100 KB of ``a`` took ~27 s to redact and
one long relpath stalled a switch, SIGTERM unanswered meanwhile.  Standard library
only: ``logs.setup``, ``config.options`` and ``config.credentials`` import it.  It is the one
place that hides a password: :func:`redact` for free text, :func:`redact_url` for one URL
in a log line, :func:`public_url` for a URL to publish.
"""

from __future__ import annotations

import logging
import re
import string
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

#: a log message longer than this (in characters) is cut, marked with the count dropped
MAX_LINE = 4096
#: a traceback longer than this many lines keeps its head and its end
MAX_BLOCK_LINES = 200

_SCHEME_CHARS = frozenset(string.ascii_letters + string.digits + "+.-")
_LETTERS = frozenset(string.ascii_letters)
_USER_END = re.compile(r"[:/@\s]")  # a single character class: one linear scan
_PASSWORD_END = re.compile(r"[/\s]")


def _password_span(text: str, sep: int, done: int) -> tuple[int, int] | None:
    """For the ``://`` at ``sep``: (index of the user's ``:``, index of the last ``@``).

    None when no ``scheme://user:password@`` starts there.  The scheme is the run of
    scheme characters just before ``sep`` (not before ``done``, the end of the last
    match) and must hold a letter; the user runs to the first ``:/@`` or blank, which
    must be ``:``; the password runs to the last ``@`` before the next ``/`` or blank.
    Each scan stops at a ``:`` or a ``/``, so the scans of successive ``://`` never
    overlap and a whole text costs one pass.
    """
    i, letter = sep, False
    while i > done and text[i - 1] in _SCHEME_CHARS:
        i -= 1
        letter = letter or text[i] in _LETTERS
    if not letter:
        return None
    user_end = _USER_END.search(text, sep + 3)
    if user_end is None or text[user_end.start()] != ":":
        return None
    colon = user_end.start()
    end = _PASSWORD_END.search(text, colon + 1)
    at = text.rfind("@", colon + 1, end.start() if end else len(text))
    return None if at < 0 else (colon, at)


def redact(text: str) -> str:
    """Replace the password of every ``scheme://user:password@`` in ``text`` by ``***``.

    The password is greedy up to the last ``@`` before a ``/`` or blank, so an
    unencoded ``@`` in a password is still hidden.  Same result as the regex
    ``([A-Za-z][A-Za-z0-9+.-]*://[^:/@\\s]*:)[^\\s/]*@`` -> ``\\1***@``, in linear time.
    """
    if "://" not in text:
        return text
    out: list[str] = []
    done = pos = 0
    while (sep := text.find("://", pos)) >= 0:
        span = _password_span(text, sep, done)
        if span is None:
            pos = sep + 3
            continue
        colon, at = span
        out.append(text[done : colon + 1])
        out.append("***@")
        done = pos = at + 1
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (``amqp://u:***@h/``).

    The password runs to the last ``@`` of the netloc, so ``u:a@b@h`` hides ``a@b``.
    A URL ``urlsplit`` refuses (a bad IPv6 bracket) goes through :func:`redact`.
    """
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:
        return redact(url)
    if not has_password:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


def public_url(url: str, what: str = "") -> str:
    """``url`` without its password (``sftp://u:pw@h/`` -> ``sftp://u@h/``): a URL
    to publish or to show as an address.

    A password written into ``post_base_url`` (``-u``) would otherwise be in every
    notice, read by every subscriber and every downstream switch; the user name stays,
    so a subscriber finds its own password for ``u@h`` in its credentials file (v2 and
    sr3 keep passwords out of posts the same way).  With ``what`` (the option's name),
    stripping one is logged as a warning, once per call: call it at start-up.
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # not parseable (a bad IPv6 bracket): drop any userinfo at all
        scheme, sep, rest = url.partition("://")
        netloc, slash, path = rest.partition("/")
        return scheme + sep + netloc.rpartition("@")[2] + slash + path
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    if what:
        log.warning(
            "%s %s has a password: it is not published (notices carry %s); subscribers "
            "need it in their own credentials file",
            what,
            redact_url(url),
            f"{user}@{hostport}",
        )
    return urlunsplit(parts._replace(netloc=f"{user}@{hostport}"))


def _escape_table() -> dict[int, str]:
    codes = [*range(0x20), 0x7F, *range(0x80, 0xA0)]
    table = {c: f"\\x{c:02x}" for c in codes}
    table.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})
    # bidi embeddings/overrides/isolates and the Unicode line/paragraph separators:
    # they reorder or break what a person reads in a terminal or a log viewer
    for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029):
        table[c] = f"\\u{c:04x}"
    return table


_ESCAPES = _escape_table()
_ESCAPES_KEEP_NEWLINE = {k: v for k, v in _ESCAPES.items() if k != ord("\n")}


def escape_controls(text: str, keep_newlines: bool = False) -> str:
    """Control characters (C0, DEL, C1), bidi controls and U+2028/9 as ``\\xNN``/``\\uNNNN``.

    A NUL, an ESC sequence or a forged newline in a relpath then shows as text and can
    neither drive the terminal showing the log nor fake a log line.  ``keep_newlines``
    is for tracebacks, whose lines are real.
    """
    return text.translate(_ESCAPES_KEEP_NEWLINE if keep_newlines else _ESCAPES)


def cut(text: str, limit: int = MAX_LINE) -> str:
    """``text`` cut to ``limit`` characters, saying how many were dropped."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"


def safe_line(text: str, limit: int = MAX_LINE) -> str:
    """One log line from hostile text: passwords hidden, controls escaped, then cut.

    Redaction comes before the cut, so a cut never leaves half a password visible.
    """
    return cut(escape_controls(redact(text)), limit)


def safe_block(text: str, limit: int = MAX_LINE, max_lines: int = MAX_BLOCK_LINES) -> str:
    """A traceback: like :func:`safe_line`, keeping newlines, each line cut on its own.

    Past ``max_lines`` lines, the first tenth and the end are kept (the end of a
    traceback says what went wrong).
    """
    lines = escape_controls(redact(text), keep_newlines=True).split("\n")
    if len(lines) > max_lines:
        head = max_lines // 10
        tail = max_lines - head
        dropped = len(lines) - head - tail
        lines = [*lines[:head], f"... [{dropped} more lines]", *lines[-tail:]]
    return "\n".join(cut(line, limit) for line in lines)
