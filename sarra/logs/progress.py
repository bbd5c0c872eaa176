"""Progress of the transfer in hand: broker heartbeats, and one line on a terminal.

A work step calls ``start(name, size)`` before a transfer, hands ``add`` to the transfer
as its progress callback (called with a byte count after each piece, 1 MiB or less),
and calls ``done()`` afterwards, whether the transfer worked or not.

``add`` runs once per piece of every file, so it does no more than it must: the broker's
``keepalive`` (itself rate-limited), and, only on a terminal, a sum and one clock read.
Text is formatted only when a redraw is due, at most every :data:`INTERVAL` seconds,
and not before the transfer has lasted that long: small files never draw anything.
``done()`` blanks the line, so log lines that follow start on a clean line.
"""

from __future__ import annotations

import math
import os
import time
from typing import Callable, Optional, TextIO

from sarra.logs.units import human_rate, human_size

#: Seconds between redraws of the progress line (and before the first one).
INTERVAL = 0.25

_NEVER = math.inf


def format_eta(seconds: float) -> str:
    """Time left for people: ``12`` -> ``'0:12'``, ``3723`` -> ``'1:02:03'``."""
    s = max(0, math.ceil(seconds))
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_line(name: str, done: int, size: int, elapsed: float, width: int = 80) -> str:
    """The progress line of one transfer, at most ``width - 1`` characters.

    ``size`` 0 (unknown) shows bytes and rate only; otherwise also the total, the
    percentage and the ETA at the average rate so far.  A name too long for the width
    loses its beginning, so the file name stays visible.
    """
    rate = human_rate(done, elapsed)
    if size > 0:
        percent = min(100, done * 100 // size)
        if done and elapsed > 0:
            eta = format_eta(max(size - done, 0) * elapsed / done)
        else:
            eta = "-:--"
        tail = f"{human_size(done)} / {human_size(size)}  {percent}%  {rate}  ETA {eta}"
    else:
        tail = f"{human_size(done)}  {rate}"
    room = width - 1 - len(tail) - 2
    if len(name) > room:
        name = "..." + name[len(name) - room + 3 :] if room > 3 else ""
    return (f"{name}  {tail}" if name else tail)[: width - 1]


def _terminal_width(stream: TextIO) -> int:
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        columns = 0
    return columns or 80  # a pty nobody sized says 0


class Progress:
    """What a work step reports a transfer to; see the module docstring.

    ``keepalive``: called on every piece (the broker's ``keepalive``), or None.
    ``stream``: where to draw the progress line (stderr when it is a terminal), or None
    to draw nothing.  ``clock`` and ``width`` are for tests (``width`` None: ask the
    terminal at each redraw, so a resized window is followed).
    """

    def __init__(
        self,
        keepalive: Optional[Callable[[], None]] = None,
        stream: Optional[TextIO] = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        width: Optional[int] = None,
    ) -> None:
        self._keepalive = keepalive
        self._stream = stream
        self._clock = clock
        self._width = width
        self.name = ""
        self.size = 0
        self.bytes = 0
        self._t0 = 0.0
        self._due = _NEVER
        self._shown = 0  # length of the line on screen (0: none)

    def start(self, name: str, size: Optional[int]) -> None:
        """A transfer of ``name`` begins; ``size`` bytes expected (0 or None: unknown)."""
        if self._stream is None:
            return
        if self._shown:
            self.done()
        self.name, self.size, self.bytes = name, size or 0, 0
        self._t0 = self._clock()
        self._due = self._t0 + INTERVAL

    def add(self, n: int) -> None:
        """``n`` more bytes have moved (the transfer's progress callback)."""
        if self._keepalive is not None:
            self._keepalive()
        if self._stream is None:
            return
        self.bytes += n
        now = self._clock()
        if now >= self._due:
            self._due = now + INTERVAL
            self._draw(now)

    def done(self) -> None:
        """The transfer ended (complete or not): blank the line if one was drawn."""
        self._due = _NEVER
        self._blank()

    def _blank(self) -> None:
        global _drawn
        if self._shown and self._stream is not None:
            self._stream.write("\r" + " " * self._shown + "\r")
            self._stream.flush()
            self._shown = 0
        if _drawn is self:
            _drawn = None

    def _draw(self, now: float) -> None:
        assert self._stream is not None
        width = self._width or _terminal_width(self._stream)
        line = progress_line(self.name, self.bytes, self.size, now - self._t0, width)
        # pad over the end of a longer previous line; never wrap, or \r cannot redraw
        pad = min(self._shown, width - 1)
        self._stream.write("\r" + line.ljust(pad))
        self._stream.flush()
        self._shown = max(len(line), pad)
        global _drawn
        _drawn = self


#: the Progress whose line is on the terminal now, if any
_drawn: Optional[Progress] = None


def clear_line() -> None:
    """Blank the progress line, if one is drawn, so that a log line written next starts
    on a clean line; the progress line comes back at its next redraw."""
    p = _drawn
    if p is not None:
        p._blank()


__all__ = ["INTERVAL", "Progress", "clear_line", "format_eta", "progress_line"]
