"""Logging configuration for commands and daemons.

Owns :func:`setup_logging` (stderr in the foreground, a time-rotated file for daemons),
:class:`RedactingFilter` (no password ever reaches a log line, whatever the caller
forgot) and :class:`SafeTextFilter` (no control character, no unbounded line).  Not
called ``logging.py``: that would shadow the standard library.

Rotation is the stdlib's ``TimedRotatingFileHandler``; there is no homemade rotator.
A daemon also points its fds 1 and 2 at the log file, so that tracebacks and anything a
library prints land in the log rather than in ``/dev/null`` (sr3 ``instance.py``), and
points them at the new file after each rollover.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from sarra.core.errors import ConfigError
from sarra.core.redaction import redact as redact
from sarra.core.redaction import safe_block, safe_line

DAEMON_FORMAT = "%(asctime)s [%(levelname)s] %(name)s: %(message)s"
FOREGROUND_FORMAT = "%(asctime)s %(levelname)s %(message)s"
FOREGROUND_DATEFMT = "%H:%M:%S"

_HANDLER_NAME = "sarra"
_UNITS = ((86400, "D"), (3600, "H"), (60, "M"), (1, "S"))


class _RewritingFilter(logging.Filter):
    """Rewrites a record's message with ``line`` and its traceback text with ``block``."""

    @staticmethod
    def line(text: str) -> str:
        return text

    @staticmethod
    def block(text: str) -> str:
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.line(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.block(record.exc_text)
        if record.stack_info:
            record.stack_info = self.block(record.stack_info)
        return True


class RedactingFilter(_RewritingFilter):
    """Redact URL passwords in the message, its arguments and any traceback text.

    Attach it to *handlers*: a filter on a logger does not see records propagated from
    its children.
    """

    line = block = staticmethod(redact)


class SafeTextFilter(_RewritingFilter):
    """Make every log line plain, bounded text, whatever a hostile notice put in it.

    Control characters (C0, DEL, C1), bidi controls and Unicode line separators in the
    message are escaped (``\\x1b``, ``\\n``): a relpath cannot drive the terminal
    reading the log nor forge a log line; the message is cut at
    :data:`sarra.core.redaction.MAX_LINE` characters.  Tracebacks keep their newlines, each
    line cut alike.  Passwords are redacted again before any cut (cheap: linear), so a
    cut can never leave half of one.  Attach it to handlers, after
    :class:`RedactingFilter`.
    """

    line = staticmethod(safe_line)
    block = staticmethod(safe_block)


class _TerminalHandler(logging.StreamHandler):
    """stderr; a log line first blanks the progress line of a transfer, if drawn."""

    def emit(self, record: logging.LogRecord) -> None:
        from sarra.logs.progress import clear_line

        clear_line()
        super().emit(record)


def parse_level(level: str) -> int:
    """Map a level name (``debug``, ``info``, ``warning``, ``error``, ``critical``).

    Raises:
        ConfigError: unknown level name.
    """
    value = logging.getLevelName(level.strip().upper())
    if not isinstance(value, int):
        raise ConfigError(f"unknown log level {level!r}")
    return value


def _rotation(rotate_s: float) -> tuple[str, int]:
    seconds = int(rotate_s)
    if seconds < 1:
        raise ConfigError(f"log rotation interval must be at least 1s, not {rotate_s!r}")
    for unit, when in _UNITS:
        if seconds % unit == 0:
            return when, seconds // unit
    raise AssertionError("unreachable: every int is a multiple of 1")


def setup_logging(
    *,
    level: str,
    log_file: Path | None,
    backups: int,
    rotate_s: float,
    program: str,
    instance: int,
    redirect_fds: bool = True,
) -> logging.Handler:
    """Configure the root logger for one process; return the handler installed.

    ``log_file`` None means foreground: a short format on stderr.  Otherwise a daemon
    log rotated every ``rotate_s`` seconds keeping ``backups`` old files, with fds 1
    and 2 redirected into it unless ``redirect_fds`` is False (tests).  Calling it again
    replaces the handler installed by the previous call.
    Raises:
        ConfigError: bad level or rotation interval.
    """
    numeric = parse_level(level)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    handler: logging.Handler
    if log_file is None:
        handler = _TerminalHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FOREGROUND_FORMAT, FOREGROUND_DATEFMT))
    else:
        when, interval = _rotation(rotate_s)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        from sarra.logs.handler import DaemonFileHandler  # daemons only: one-shot commands skip it

        handler = DaemonFileHandler(log_file, when, interval, backups, redirect_fds)
        handler.setFormatter(logging.Formatter(DAEMON_FORMAT))
    handler.addFilter(RedactingFilter())
    handler.addFilter(SafeTextFilter())
    handler.set_name(_HANDLER_NAME)
    root.addHandler(handler)
    root.setLevel(numeric)
    # pika narrates every connection step at INFO and logs each failed reconnect attempt
    # at ERROR with a traceback; sarra.broker.connection says what matters in one line of its own,
    # so pika speaks only when debugging
    logging.getLogger("pika").setLevel(
        logging.WARNING if numeric <= logging.DEBUG else logging.CRITICAL
    )
    # paramiko narrates each SSH connection (connected, authenticated, channel opened and
    # closed) at INFO: four lines per dd_poll pass; its warnings and errors still show
    logging.getLogger("paramiko").setLevel(max(numeric, logging.WARNING))
    logging.getLogger(__name__).debug(
        "logging for %s instance %d at %s", program, instance, logging.getLevelName(numeric)
    )
    return handler
