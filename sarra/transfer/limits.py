"""Bounds on one download: how many bytes, how long idle, how long in all.

Owns :class:`Limits` (what the config allows: the cap for a file of unknown size, the
minimum average rate, the stop request of the daemon), :class:`Budget` (one transfer's
deadline, checked between chunks by the shared loop :meth:`sarra.transfer.Transfer.get`)
and :func:`gather` (a backend's chunk: as many bytes as arrive within a short while).

Why a wall-clock deadline on top of the idle ``timeout``: the socket timeout bounds one
read, so a server sending one byte every ``timeout - 1`` seconds would hold a download
(and the daemon, which cannot stop meanwhile) for ever.  The deadline is
``timeout + max(timeout, size / min_rate)``: a file may take as long as its size at
``min_rate`` plus one ``timeout`` of slack.  When the size is unknown, the bytes
received so far stand in for it, so a trickle still fails (its average rate is below
``min_rate``) while a fast stream of any size does not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from sarra.errors import TransferError

__all__ = ["Budget", "Limits", "gather", "DEFAULT_MAX_SIZE", "DEFAULT_MIN_RATE"]

DEFAULT_MAX_SIZE = 1 << 30
DEFAULT_MIN_RATE = 1024
#: s: a backend hands over what it has after this long, so the deadline and a stop
#: request are looked at even while a server trickles bytes into a big chunk.
GATHER_WINDOW = 0.25

Clock = Callable[[], float]


@dataclass(frozen=True)
class Limits:
    """``max_size``: bytes allowed when a notice announces no size; ``min_rate``: bytes/s
    (0: no wall-clock deadline); ``stop``: True once the daemon is asked to stop."""

    max_size: int = DEFAULT_MAX_SIZE
    min_rate: int = DEFAULT_MIN_RATE
    stop: Callable[[], bool] = field(default=lambda: False)
    clock: Clock = time.monotonic


class Budget:
    """The deadline of one transfer (see the module docstring)."""

    def __init__(self, timeout: float, limits: Limits, size: Optional[int]) -> None:
        self.timeout = max(float(timeout), 0.0)
        self.limits = limits
        self.size = size
        self.start = limits.clock()

    def allowed(self, got: int) -> float:
        """Seconds this transfer may take, ``got`` bytes having arrived."""
        rate = self.limits.min_rate
        if rate <= 0:
            return float("inf")
        size = self.size if self.size is not None else got
        return self.timeout + max(self.timeout, size / rate)

    def check(self, what: str, got: int) -> None:
        """Raises TransferError (transient) once past the deadline or asked to stop."""
        if self.limits.stop():
            raise TransferError(f"{what}: stopped during the transfer")
        elapsed = self.limits.clock() - self.start
        allowed = self.allowed(got)
        if elapsed > allowed:
            raise TransferError(
                f"{what}: too slow: {got} bytes in {elapsed:.0f} s "
                f"(deadline {allowed:.0f} s at {self.limits.min_rate} bytes/s minimum)"
            )


def gather(read: Callable[[int], bytes], want: int, clock: Clock = time.monotonic) -> bytes:
    """Up to ``want`` bytes from ``read`` (which returns what is available, b"" at EOF),
    returned early once ``GATHER_WINDOW`` has passed with some bytes in hand."""
    first = read(want)
    if len(first) >= want or not first:
        return first
    pieces, got, t0 = [first], len(first), clock()
    while got < want and clock() - t0 < GATHER_WINDOW:
        data = read(want - got)
        if not data:
            break
        pieces.append(data)
        got += len(data)
    return b"".join(pieces)
