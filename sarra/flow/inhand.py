"""Messages in hand: so that a message which kills its process cannot crash-loop a daemon.

An exception in one message's work is caught by the flow's boundary; a *hard* crash is
not (a segfault in a C library, the OOM killer, ``os._exit`` in a plugin).  The broker
then redelivers the message to the restarted daemon, which dies on it again, for ever.

So while a message runs code that may kill the process (the ``on_message`` hooks and
the work step, and ``on_post`` hooks), a marker names it.  Each process (each of its
work threads) owns one small marker file in a directory shared by the instances of one
config, rewritten in place (one ``pwrite``, no fsync: a process crash keeps the page
cache)::

    <state>/<role>/<config>/inhand/<pid>.<token>.<slot>  ->  "<message hash> <crashes>"

and blanked when the message leaves that code.  When a message comes back (redelivered
by the broker, or from the retry queue), the markers of dead processes (no such pid, or
the same pid with another start token: a restarted container) are read and removed: a
dead process's marker naming this message means it died with the message in hand, and
its count goes up by one.  After ``MAX_CRASHES`` consecutive crashes with it in hand
the flow gives the message up (one error line, a failure report, acknowledged) instead
of running it again.  A message completed normally is not counted again; innocent
messages of the same batch are not counted, as they are not in hand when it dies.

The markers never decide anything on their own: if one cannot be written (disk full),
the message is worked as before.  After a power loss a crash is at worst not counted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Dict

from sarra.core.delivery import Delivery

log = logging.getLogger(__name__)

#: consecutive crashes with a message in hand after which it is given up
MAX_CRASHES = 3
#: a dead process's marker older than this is dropped at housekeeping
MAX_AGE = 7 * 86400.0
#: crash counts remembered in memory at most (messages found left by a dead process)
_REMEMBERED = 10_000
_WIDTH = 48  # "<32 hex> <count>" padded: rewritten in place, never longer
_IDLE = b"-".ljust(_WIDTH - 1) + b"\n"


def key_of(d: Delivery) -> str:
    """The marker text of ``d`` (hash of its topic and body), "" for a local source."""
    if d.received is not None:
        topic, body = str(d.received.routing_key), bytes(d.received.body)
    elif d.retry is not None:
        topic, body = str(d.retry.topic), str(d.retry.body).encode("utf-8", "surrogateescape")
    else:
        return ""  # files named by a user: no broker to hand them back after a crash
    h = hashlib.sha256(topic.encode("utf-8", "surrogateescape"))
    h.update(b"\0")
    h.update(body)
    return h.hexdigest()[:32]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user
        return True
    return True


class InHand:
    """The markers of one process, in a directory shared by a config's instances."""

    def __init__(self, directory: Path, max_crashes: int = MAX_CRASHES) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_crashes = max_crashes
        self._pid = os.getpid()
        self._token = secrets.token_hex(6)
        self._crashes: Dict[str, int] = {}
        self._slots = threading.local()
        self._lock = threading.Lock()
        self._files: list = []

    def begin(self, d: Delivery) -> int:
        """Mark ``d`` in hand.  Returns how many consecutive crashes it was in hand at."""
        key = key_of(d)
        if not key:
            return 0
        if d.retry is not None or getattr(d.received, "redelivered", False):
            self._collect_dead()  # only a message coming back can have been in hand
        n = self._crashes.get(key, 0)
        self._write(f"{key} {n}".encode().ljust(_WIDTH - 1) + b"\n")
        return n

    def take(self, d: Delivery) -> bool:
        """Mark ``d`` in hand before the code that may kill the process runs on it.

        Returns False, with ``d`` given up (failed for good, unmarked), if it was in hand
        at ``max_crashes`` consecutive crashes: it would kill this process too.  A marker
        that cannot be written decides nothing: ``d`` is worked as before.
        """
        try:
            crashes = self.begin(d)
        except Exception as e:  # noqa: BLE001 - the marker never decides on its own
            log.debug("in-hand marker of %s: %r", d.describe(), e)
            return True
        if crashes < self.max_crashes:
            if crashes:
                log.warning(
                    "%s was in hand when the process died (%d time(s)): trying again",
                    d.describe(),
                    crashes,
                )
            return True
        self.end(d)
        d.fail(f"given up: in hand at {crashes} consecutive crashes of the process", 500, True)
        return False

    def end(self, d: Delivery) -> None:
        """``d`` left the code that may kill the process: blank this thread's marker."""
        if key_of(d):
            self._write(_IDLE)

    def forget(self, d: Delivery) -> None:
        """``d`` is settled: drop its crash count from memory."""
        if self._crashes:
            self._crashes.pop(key_of(d), None)

    def close(self) -> None:
        """At a clean exit: remove this process's markers."""
        with self._lock:
            for fd, path in self._files:
                try:
                    os.close(fd)
                    os.unlink(path)
                except OSError:
                    pass
            self._files.clear()

    def expire(self, max_age: float = MAX_AGE) -> None:
        """Remove markers of dead processes older than ``max_age`` seconds."""
        limit = time.time() - max_age
        for p in self.dir.iterdir() if self.dir.is_dir() else ():
            try:
                if p.stat().st_mtime < limit and self._dead(p.name):
                    p.unlink()
            except OSError:
                pass

    # ------------------------------------------------------------------ internals
    def _dead(self, name: str) -> bool:
        try:
            pid_s, token, _slot = name.split(".")
            pid = int(pid_s)
        except ValueError:
            return True
        if pid == self._pid:
            return token != self._token
        return not _alive(pid)

    def _collect_dead(self) -> None:
        """Count the messages named by dead processes' markers; remove those markers."""
        try:
            names = list(self.dir.iterdir())
        except OSError as e:  # the state directory removed under us (cleanup)
            log.debug("cannot read in-hand markers in %s: %s", self.dir, e)
            return
        for p in names:
            if not self._dead(p.name):
                continue
            try:
                fields = p.read_bytes().split()
                p.unlink()
            except OSError:
                continue
            if len(fields) == 2 and fields[0] != b"-" and len(self._crashes) < _REMEMBERED:
                key, count = fields[0].decode("ascii", "replace"), fields[1]
                n = int(count) + 1 if count.isdigit() else 1
                self._crashes[key] = max(self._crashes.get(key, 0), n)

    def _write(self, text: bytes) -> None:
        try:
            os.pwrite(self._fd(), text, 0)
        except OSError as e:
            log.debug("cannot write in-hand marker in %s: %s", self.dir, e)

    def _fd(self) -> int:
        fd = getattr(self._slots, "fd", None)
        if fd is None:
            with self._lock:
                path = self.dir / f"{self._pid}.{self._token}.{len(self._files)}"
                flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
                fd = os.open(path, flags, 0o600)
                self._files.append((fd, path))
            self._slots.fd = fd
        return fd
