"""Pidfiles: written by the instance itself, atomically, refusing to run twice.

Owns :class:`Pidfile` and the small read/remove helpers that the parent side
(:mod:`sarra.service.instances`) also uses.  The checks are dramatiq ``cli.py``
``setup_pidfile``'s: a pidfile naming a live process refuses the start, garbage content
aborts, a stale one (process gone) is removed.  The atomic write is our addition.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

from sarra.core.errors import SarraError

log = logging.getLogger(__name__)


def is_zombie(pid: int) -> bool:
    """True if ``pid`` has exited but was not reaped (state ``Z`` in /proc).

    A killed instance whose parent is gone stays a zombie where PID 1 does not reap
    orphans (some containers): it must count as dead, or it would never be restarted.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    # the command name (field 2) is in parentheses and may contain spaces
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] == b"Z"


def pid_alive(pid: int) -> bool:
    """True if a process ``pid`` exists (``os.kill(pid, 0)``) and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, belongs to someone else
    return not is_zombie(pid)


class AlreadyRunning(SarraError):
    """The pidfile names a live process: this instance is already running."""


def read_pid(path: Path) -> int | None:
    """Return the pid stored in ``path``, or None when there is no pidfile.

    Raises:
        SarraError: the file exists but does not hold a positive integer.
    """
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return None
    try:
        pid = int(text.strip())
    except ValueError:
        pid = 0
    if pid <= 0:
        raise SarraError(
            f"{path}: pidfile holds {text[:40]!r}, not a process id; "
            "remove it (or run cleanup) if no instance is running"
        )
    return pid


def remove_pidfile_if(path: Path, pid: int) -> bool:
    """Remove ``path`` if it still names ``pid``; return True if it was removed."""
    try:
        if read_pid(path) != pid:
            return False
    except SarraError:
        return False
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


class Pidfile:
    """The pidfile of one running instance, written by the instance itself.

    ``acquire`` writes the pid to a temporary file and hard-links it into place, so the
    pidfile is never seen half-written and two racing children cannot both win: the
    link fails for the second one, which then finds the winner alive and refuses.
    """

    def __init__(self, path: Path, alive: Callable[[int], bool] = pid_alive) -> None:
        self.path = Path(path)
        self._alive = alive
        self._pid = os.getpid()

    def acquire(self) -> None:
        """Write our pid to the pidfile.

        Raises:
            AlreadyRunning: the pidfile names another live process.
            SarraError: the pidfile holds garbage, or cannot be written.
        """
        tmp = self.path.with_name(f".{self.path.name}.{self._pid}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(f"{self._pid}\n", encoding="ascii")
        except OSError as e:
            raise SarraError(f"{self.path}: cannot write pidfile: {e.strerror}") from e
        try:
            for _ in range(3):
                if self._try_link(tmp):
                    return
            raise SarraError(f"{self.path}: could not take the pidfile (it keeps changing)")
        finally:
            tmp.unlink(missing_ok=True)

    def _try_link(self, tmp: Path) -> bool:
        try:
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            pass
        except OSError as e:
            raise SarraError(f"{self.path}: cannot write pidfile: {e.strerror}") from e
        other = read_pid(self.path)
        if other is None:
            return False  # removed meanwhile: try again
        if other == self._pid:
            return True
        if self._alive(other):
            raise AlreadyRunning(f"{self.path}: already running as pid {other}")
        log.info("removing stale pidfile %s (pid %d is gone)", self.path, other)
        remove_pidfile_if(self.path, other)
        return False

    def release(self) -> None:
        """Remove the pidfile if it still holds our pid (never someone else's)."""
        if remove_pidfile_if(self.path, self._pid):
            log.debug("removed pidfile %s", self.path)

    def __enter__(self) -> Pidfile:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
