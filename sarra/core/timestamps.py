"""v02 timestamps: the ``pubtime`` body field and the ``mtime``/``atime`` headers.

Owns the wire format of spec section 4.2 and decision 17.3:

* producers write ``YYYYMMDDHHMMSS.fff`` (UTC, milliseconds truncated) for pubtime and
  ``YYYYMMDDHHMMSS.nnnnnnnnn`` (nanoseconds) for ``mtime``/``atime``;
* consumers read every variant seen on the wire: any number of fraction digits, no
  fraction at all, v2's exponent form (``.23977661e-05``) and sr3's ``T`` at position 9.

Also sr3's time variables of config values (``${%Y%m%d}``): :func:`time_variable`.

Pure functions, no I/O.
"""

from __future__ import annotations

import calendar
import re
import time
from decimal import ROUND_FLOOR, Decimal

from sarra.core.errors import MessageError

__all__ = ["TimeFormatError", "format_time", "format_time_ns", "parse_time", "time_variable"]

_SECOND_FORMAT = "%Y%m%d%H%M%S"
_MS = Decimal("0.001")
# "." digits, optionally v2's exponent form (".23977661e-05"); ASCII digits only.
_FRACTION = re.compile(r"\.[0-9]*(?:[eE][-+]?[0-9]+)?")


class TimeFormatError(MessageError, ValueError):
    """A v02 timestamp string cannot be parsed (also a ValueError, for converters)."""


def _seconds_text(seconds: int) -> str:
    return time.strftime(_SECOND_FORMAT, time.gmtime(seconds))


def format_time(t: float) -> str:
    """Format a POSIX time as a pubtime: ``YYYYMMDDHHMMSS.fff``, UTC, ms truncated.

    The float is read through its shortest decimal repr, so ``x.179`` gives ``.179``
    and never ``.178`` because of binary rounding.
    """
    ms_total = Decimal(repr(float(t))).quantize(_MS, rounding=ROUND_FLOOR)
    seconds = int(ms_total.to_integral_value(rounding=ROUND_FLOOR))
    millis = int((ms_total - seconds) * 1000)
    return f"{_seconds_text(seconds)}.{millis:03d}"


def format_time_ns(ns: int) -> str:
    """Format nanoseconds since the epoch (``st_mtime_ns``) with a 9-digit fraction."""
    seconds, frac = divmod(int(ns), 1_000_000_000)
    return f"{_seconds_text(seconds)}.{frac:09d}"


def parse_time(s: str) -> float:
    """Parse any v02 timestamp variant (spec 4.2) into a POSIX time (float seconds).

    Rules: a ``T`` at position 9 is deleted; the first 14 characters must be digits
    forming a valid UTC calendar time; the rest, if any, must be ``.`` plus a decimal
    fraction read as ``float("0" + rest)`` (so ``.23977661e-05`` is 2.3977661e-06).

    Raises:
        TimeFormatError: the text does not follow these rules.
    """
    text = s
    if len(text) > 8 and text[8] == "T":
        text = text[:8] + text[9:]
    head, rest = text[:14], text[14:]
    if len(head) != 14 or not (head.isascii() and head.isdigit()):
        raise TimeFormatError(f"bad timestamp {s!r}: expected 14 digits YYYYMMDDHHMMSS")
    year, month, day = int(head[0:4]), int(head[4:6]), int(head[6:8])
    hour, minute, second = int(head[8:10]), int(head[10:12]), int(head[12:14])
    if (
        not (
            1 <= month <= 12
            and 1 <= day
            and (day <= 28 or day <= calendar.monthrange(year, month)[1])
            and hour <= 23
            and minute <= 59
            and second <= 59
        )
        or year < 1
    ):
        raise TimeFormatError(f"bad timestamp {s!r}: not a valid UTC calendar time")
    fraction = 0.0
    if rest:
        if not _FRACTION.fullmatch(rest):
            raise TimeFormatError(f"bad timestamp {s!r}: bad fraction {rest!r}")
        fraction = float("0" + rest)
        if not 0.0 <= fraction < 1.0:
            raise TimeFormatError(f"bad timestamp {s!r}: fraction out of range")
    return calendar.timegm((year, month, day, hour, minute, second)) + fraction


#: sr3's time variables: strftime codes of the date and time, and separators
_TIME_VARIABLE = re.compile(r"(?:%[YymdHMSjaAbB]|[-_.])+")


def time_variable(name: str, when: float | None = None) -> str | None:
    """The value of sr3's ``${%Y%m%d}``-style variable ``name`` (``%Y%m%d``): the UTC time
    ``when`` (default: now) in that format; None when ``name`` is not one (an offset
    such as ``%o-1d``, or a code that could make a ``/``)."""
    if not name.startswith("%") or not _TIME_VARIABLE.fullmatch(name):
        return None
    return time.strftime(name, time.gmtime(when))
