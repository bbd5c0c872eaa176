"""Bounds on one download: how many bytes, how long idle, how long in all.

Owns :class:`Limits` (what the config allows: the cap for a file of unknown size, the
minimum average rate, the stop request of the daemon), :class:`Budget` (one transfer's
deadline, checked between chunks by the shared loop :meth:`sarra.transfer.Transfer.get`),
:class:`Watchdog` (one thread that aborts a transfer whose read is blocked past its
deadline) and :func:`gather` (a backend's chunk: as many bytes as arrive within a
short while).

Why a wall-clock deadline on top of the idle ``timeout``: the socket timeout bounds one
read, so a server sending one byte every ``timeout - 1`` seconds would hold a download
(and the daemon, which cannot stop meanwhile) for ever.  The deadline is
``timeout + max(timeout, size / min_rate)``: a file may take as long as its size at
``min_rate`` plus one ``timeout`` of slack.  When the size is unknown, the bytes
received so far stand in for it, so a trickle still fails (its average rate is below
``min_rate``) while a fast stream of any size does not.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from sarra.core.errors import TransferError

__all__ = [
    "Budget",
    "Limits",
    "Watchdog",
    "WATCHDOG",
    "gather",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_MIN_RATE",
]

log = logging.getLogger(__name__)

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
    """The deadline of one transfer (see the module docstring).  ``got``: the bytes
    received so far (kept up to date by the get loop, read by the :class:`Watchdog`)."""

    def __init__(self, timeout: float, limits: Limits, size: Optional[int]) -> None:
        self.timeout = max(float(timeout), 0.0)
        self.limits = limits
        self.size = size
        self.start = limits.clock()
        self.got = 0

    def excuse(self, seconds: float) -> None:
        """Do not count ``seconds`` against the deadline: the transfer waited for a
        bandwidth limit of ours, not for the server."""
        self.start += seconds

    def allowed(self, got: int) -> float:
        """Seconds this transfer may take, ``got`` bytes having arrived."""
        rate = self.limits.min_rate
        if rate <= 0:
            return float("inf")
        size = self.size if self.size is not None else got
        return self.timeout + max(self.timeout, size / rate)

    def expired(self) -> Optional[str]:
        """Why this transfer must end now (past its deadline, or a stop asked), or None."""
        if self.limits.stop():
            return "stopped during the transfer"
        elapsed = self.limits.clock() - self.start
        allowed = self.allowed(self.got)
        if elapsed > allowed:
            return (
                f"too slow: {self.got} bytes in {elapsed:.0f} s "
                f"(deadline {allowed:.0f} s at {self.limits.min_rate} bytes/s minimum)"
            )
        return None

    def check(self, what: str, got: int) -> None:
        """Raises TransferError (transient) once past the deadline or asked to stop."""
        self.got = got
        reason = self.expired()
        if reason is not None:
            raise TransferError(f"{what}: {reason}")


class Watch:
    """One transfer under the :class:`Watchdog`: ``fired`` holds why it was aborted."""

    def __init__(self, budget: Budget, abort: Callable[[], None]) -> None:
        self.budget = budget
        self.abort = abort
        self.fired: Optional[str] = None


class Watchdog:
    """One daemon thread per process that aborts transfers past their deadline.

    The get loop checks the deadline between chunks, but a read blocked inside a chunk
    or inside the reply's headers (a server sending one header byte per ``timeout - 1``
    s) only returns when the server sends something.  Every ``every`` s this thread
    checks each running transfer's :class:`Budget` (and the stop request) and, when it
    expired, calls the backend's ``abort`` (its sockets are shut down, so the blocked
    read fails at once); the get loop then reports the budget's reason.
    """

    def __init__(self, every: float = 0.5) -> None:
        self.every = every
        self._lock = threading.Lock()
        self._watches: set[Watch] = set()
        self._thread: Optional[threading.Thread] = None

    def watch(self, budget: Budget, abort: Callable[[], None]) -> Watch:
        w = Watch(budget, abort)
        with self._lock:
            self._watches.add(w)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sarra-deadline")
                self._thread.daemon = True
                self._thread.start()
        return w

    def forget(self, w: Watch) -> None:
        with self._lock:
            self._watches.discard(w)

    def sweep(self) -> None:
        """Abort every watched transfer whose budget expired (once each)."""
        with self._lock:
            due = [w for w in self._watches if w.fired is None]
        for w in due:
            reason = w.budget.expired()
            if reason is None:
                continue
            w.fired = reason
            try:
                w.abort()
            except Exception:  # noqa: BLE001 - a failed abort leaves the idle timeout
                log.debug("aborting a transfer failed", exc_info=True)

    def _run(self) -> None:
        while True:
            time.sleep(self.every)
            self.sweep()


WATCHDOG = Watchdog()


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
