"""Messages in hand: so that a message which kills its process cannot crash-loop a daemon.

An exception in one message's work is caught by the flow's boundary; a *hard* crash is
not (a segfault in a C library, the OOM killer, ``os._exit`` in a plugin).  The broker
then redelivers the message to the restarted daemon, which dies on it again, for ever.

So while a message runs code that may kill the process (the ``on_message`` hooks and
the work step, and ``on_post`` hooks), a small marker file names it, in a directory
shared by the instances of one config::

    <state>/<role>/<config>/inhand/<hash of topic and body>  ->  "<pid> <token> <crashes>"

The marker is removed as soon as the message leaves that code.  A marker found for a
message coming back (redelivered by the broker, or from the retry queue) whose writer
is dead (no such pid, or the same pid with another start token: a restarted container)
means the process died with this message in hand: its count goes up by one.  After
``MAX_CRASHES`` consecutive crashes with it in hand, the flow gives the message up (one
error line, a failure report, acknowledged) instead of running it again.  A message
completed normally loses its marker, so only *consecutive* crashes count; innocent
messages of the same batch are not counted, as they are not in hand when it dies.

The markers never decide anything on their own: if one cannot be written (disk full),
the message is worked as before.  No fsync: a process crash keeps the page cache; after
a power loss nothing is wrongly given up, a crash is at worst not counted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from pathlib import Path
from typing import Dict

from sarra.delivery import Delivery

log = logging.getLogger(__name__)

#: consecutive crashes with a message in hand after which it is given up
MAX_CRASHES = 3
#: a marker older than this is dropped at housekeeping (its message never came back)
MAX_AGE = 7 * 86400.0
#: crash counts remembered in memory at most (messages found left by a dead process)
_REMEMBERED = 10_000


def key_of(d: Delivery) -> str:
    """The marker name of ``d`` (hash of its topic and body), "" for a local source."""
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
    """The markers of one config (see the module docstring)."""

    def __init__(self, directory: Path, max_crashes: int = MAX_CRASHES) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_crashes = max_crashes
        self._pid = os.getpid()
        self._token = secrets.token_hex(8)
        self._crashes: Dict[str, int] = {}

    def begin(self, d: Delivery) -> int:
        """Mark ``d`` in hand.  Returns how many consecutive crashes it was in hand at."""
        key = key_of(d)
        if not key:
            return 0
        n = self._crashes.get(key, 0)
        redelivered = d.retry is not None or bool(getattr(d.received, "redelivered", False))
        if not n and redelivered:  # a first delivery cannot have been in hand before
            n = self._left_by_dead(key)
            if n and len(self._crashes) < _REMEMBERED:
                self._crashes[key] = n
        self._write(key, n)
        return n

    def end(self, d: Delivery) -> None:
        """``d`` left the code that may kill the process: remove its marker."""
        key = key_of(d)
        if key:
            try:
                os.unlink(self.dir / key)
            except OSError:
                pass

    def forget(self, d: Delivery) -> None:
        """``d`` is settled: drop its crash count from memory."""
        if self._crashes:
            self._crashes.pop(key_of(d), None)

    def expire(self, max_age: float = MAX_AGE) -> None:
        """Remove markers older than ``max_age`` seconds: their messages never came back
        (expired, or their queue deleted)."""
        import time

        limit = time.time() - max_age
        for p in self.dir.iterdir():
            try:
                if p.stat().st_mtime < limit:
                    p.unlink()
            except OSError:
                pass

    def _left_by_dead(self, key: str) -> int:
        """The crash count in ``key``'s marker: +1 if its writer died, 0 if none."""
        try:
            pid_s, token, count_s = (self.dir / key).read_text().split()
            pid, count = int(pid_s), int(count_s)
        except (OSError, ValueError):
            return 0
        if pid == self._pid and token == self._token:
            return count  # ours: the same notice twice in one batch
        if pid != self._pid and _alive(pid):
            return count  # another instance has the same notice in hand right now
        return count + 1

    def _write(self, key: str, crashes: int) -> None:
        path = self.dir / key
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(path, flags, 0o600)
            try:
                os.write(fd, f"{self._pid} {self._token} {crashes}\n".encode())
            finally:
                os.close(fd)
        except OSError as e:
            log.debug("cannot write in-hand marker %s: %s", path, e)
