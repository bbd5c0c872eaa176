"""Signal reception for daemon run loops.

Owns :class:`SignalReceiver`.  Handlers only *record* a signal; the run loop looks at
``stop_requested`` / ``reload_requested`` between messages and acts there, as Supervisor
does (``options.py`` ``SignalReceiver`` + ``supervisord.py`` ``handle_signal``).  Doing real
work inside a handler would run it in the middle of whatever the loop was doing (a pika
callback, a half-written file).

Interruptible sleeping uses ``signal.set_wakeup_fd`` on a pipe rather than a
``threading.Event``: ``Event.set()`` from a handler can deadlock when the signal lands
while the main thread holds the event's internal lock, whereas the wakeup byte is written
by the C-level handler and cannot be lost between "check the flag" and "go to sleep".
"""

from __future__ import annotations

import logging
import os
import select
import signal
from types import FrameType
from typing import Any, Callable, Optional, Union

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
RELOAD_SIGNALS = (signal.SIGHUP,)

_Handler = Union[Callable[[int, Optional[FrameType]], Any], int, None]


class SignalReceiver:
    """Record SIGTERM/SIGINT (stop) and SIGHUP (reload) for a run loop.

    Use as a context manager in the main thread::

        with SignalReceiver() as rx:
            while not rx.stop_requested:
                do_one_batch()
                rx.wait(1.0)

    Installing outside the main thread raises ``ValueError`` (a Python rule).
    """

    def __init__(self) -> None:
        self._stop = False
        self._reload = False
        self._received: list[int] = []
        self._old_handlers: dict[int, _Handler] = {}
        self._old_wakeup_fd = -1
        self._read_fd = -1
        self._write_fd = -1

    # -- installation -------------------------------------------------------------------
    def install(self) -> None:
        """Install the handlers and the wakeup pipe; remembers what was there before."""
        if self._read_fd >= 0:
            return
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._old_wakeup_fd = signal.set_wakeup_fd(self._write_fd)
        for signum in STOP_SIGNALS + RELOAD_SIGNALS:
            self._old_handlers[signum] = signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        """Restore the previous handlers and wakeup fd, and close the pipe."""
        if self._read_fd < 0:
            return
        for signum, old in self._old_handlers.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
        self._old_handlers.clear()
        signal.set_wakeup_fd(self._old_wakeup_fd)
        os.close(self._read_fd)
        os.close(self._write_fd)
        self._read_fd = self._write_fd = -1

    def __enter__(self) -> SignalReceiver:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    # -- recording ----------------------------------------------------------------------
    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # Record only: the loop acts on it at a safe point.
        self._received.append(signum)
        if signum in RELOAD_SIGNALS:
            self._reload = True
        else:
            self._stop = True

    def request_stop(self) -> None:
        """Ask the loop to stop as if SIGTERM had arrived (for hooks and tests)."""
        self._stop = True
        self._poke()

    def _poke(self) -> None:
        if self._write_fd >= 0:
            try:
                os.write(self._write_fd, b"\0")
            except BlockingIOError:
                pass  # the pipe is full, so a wakeup is already pending

    @property
    def stop_requested(self) -> bool:
        """True once SIGTERM or SIGINT (or :meth:`request_stop`) was received."""
        return self._stop

    @property
    def reload_requested(self) -> bool:
        """True once SIGHUP was received, until :meth:`clear_reload`."""
        return self._reload

    def clear_reload(self) -> None:
        """Mark the pending reload as handled."""
        self._reload = False

    @property
    def received(self) -> list[int]:
        """Signal numbers received so far, oldest first (a copy)."""
        return list(self._received)

    # -- sleeping -----------------------------------------------------------------------
    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, waking early when any signal arrives.

        Returns True if a stop or reload is pending when it returns.
        """
        if self._stop or self._reload:
            return True
        if self._read_fd < 0:
            raise RuntimeError("SignalReceiver.wait() called before install()")
        readable, _, _ = select.select([self._read_fd], [], [], max(timeout, 0.0))
        if readable:
            self._drain()
        return self._stop or self._reload

    def _drain(self) -> None:
        try:
            while os.read(self._read_fd, 512):
                pass
        except BlockingIOError:
            pass
