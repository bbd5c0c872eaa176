"""A bandwidth budget shared by processes: one small file, updated under an ``fcntl`` lock.

Owns :class:`SharedBucket`.  Every instance and thread of a config on a host, or every
flow of a user talking to one server, reserves bytes from the same file, so the limit
holds for all of them together; no daemon of its own is needed, and a process that dies
leaves nothing to clean up (the kernel drops its lock).

**How a reservation works** (virtual scheduling, the GCRA of ATM cell policing).  The
file holds ``tat``, the time from which the bucket's next byte may go.  Reserving ``n``
bytes at ``rate`` bytes/s gives ``start = max(now, tat)`` and moves ``tat`` to
``start + n / rate``; the caller sends its ``n`` bytes from ``start`` on.  Reservations
are served in the order they were made, never two in the same slot, so over any window
the bytes sent are at most ``rate * window`` plus what was reserved but not yet sent
(one grant per caller, see ``sarra.transfer.bandwidth``).  An idle bucket banks nothing:
``tat`` never lags behind ``now``, so there is no burst after a pause.  The rate is the
caller's: a config whose limit changed uses the new one from its restart on.

**Members and fair shares.**  A reservation may name a *member* (dd_sara: the source
whose file it is).  Members are not served first come, first served: a member with
eight transfers would queue eight reservations for each one of a member with one, and
take eight times its share.  Each member has its own ``tat``, paced at its share of
the rate, so the shares hold whatever the number of transfers or instances behind
each.  The shares are max-min fair by demand: a member whose own ``tat`` is ahead of
now is *demanding* (it wants more than it gets); the others are *light* and are paced
at half again what they used lately (a member that wants more soon runs ahead of that
and is demanding from its next reservation on); the demanding ones split what the
light ones leave, equally.  So two busy sources get half each, and a source sending
little is never slowed down by a busy one.  The shares add up to the rate, so members
are not also queued on the bucket's own ``tat``.

**Clock.**  ``time.monotonic`` (``CLOCK_MONOTONIC``: one clock for every process of a
host, never stepped).  Its origin changes at boot, so the file also records the boot
time (wall clock minus monotonic); state from another boot, a ``tat`` absurdly far
ahead or a file that cannot be parsed (a crash mid-write) starts afresh: this is
pacing state, never data.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import threading
import time
import weakref
from pathlib import Path
from typing import Callable, Dict, List, Optional

__all__ = ["SharedBucket", "member_share"]

Clock = Callable[[], float]

#: s: a ``tat`` further ahead than this is garbage (another boot, a bad write)
MAX_AHEAD = 600.0
#: s: the boot time computed now and the one in the file may differ this much (NTP)
BOOT_SLACK = 30.0
#: s: time constant of the per-member rate estimate
RATE_TAU = 2.0
#: s: a member that reserved nothing for this long is no longer active
ACTIVE_FOR = 5.0
#: a light member is paced at this multiple of the rate it used lately
HEADROOM = 1.5
#: members remembered per bucket (dd_sara relays: source names come from notices)
MAX_MEMBERS = 256
MAX_NAME = 100
#: bytes read from the file: the state is small, more is garbage
MAX_STATE = 1 << 16


def member_share(rate: float, members: Dict[str, List[float]], me: str, now: float) -> float:
    """The rate ``me`` is paced at, out of ``rate``, among the active ``members``
    (``name -> [tat, rate used lately, last reservation]``; see the module docstring).

    Light members (own ``tat`` not ahead of ``now``) get ``HEADROOM`` times what they
    used, at least a floor of ``rate / (4 n)``; demanding members split the rest
    equally, never less than the floor.  ``me`` need not be in ``members`` yet (a
    newcomer is light).
    """
    everyone = dict(members)
    everyone.setdefault(me, [now, 0.0, now])
    floor = rate / (4 * len(everyone))
    light = {
        name: max(floor, HEADROOM * _decayed(m, now)) for name, m in everyone.items() if m[0] <= now
    }
    demanding = len(everyone) - len(light)
    if me in light:
        return min(light[me], rate)
    return max(floor, (rate - sum(light.values())) / demanding)


class SharedBucket:
    """One budget, in the file ``path`` (created mode 0600 in a 0700 directory).

    Thread-safe: threads of one process share the open file, and ``flock`` locks
    belong to the open file, so a thread lock serialises them first.
    """

    def __init__(
        self,
        path: Path,
        *,
        key: str = "",
        clock: Clock = time.monotonic,
        wallclock: Clock = time.time,
    ) -> None:
        self.path = Path(path)
        #: what the bucket is for, written into the file for whoever reads it
        self.key = key
        self._clock = clock
        self._wallclock = wallclock
        self._lock = threading.Lock()
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        self._fd = os.open(self.path, flags, 0o600)
        weakref.finalize(self, os.close, self._fd)

    # ------------------------------------------------------------------ reserving
    def reserve(self, nbytes: int, rate: float, member: Optional[str] = None) -> float:
        """Reserve ``nbytes`` at ``rate`` bytes/s; returns when they may start (clock
        time, possibly in the past: at once).  ``member``: pace it at its fair share
        (see the module docstring) as well.  ``rate`` <= 0: no limit, returns now.

        Raises:
            OSError: the file cannot be locked, read or written.
        """
        now = self._clock()
        if rate <= 0:
            return now
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                state = self._load(now)
                if member is None:
                    start = max(now, state["tat"])
                    state["tat"] = start + nbytes / rate
                else:
                    start = self._reserve_member(state, member, nbytes, rate, now)
                self._store(state)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        return start

    def _reserve_member(
        self, state: dict, member: str, nbytes: int, rate: float, now: float
    ) -> float:
        members: Dict[str, List[float]] = state["members"]
        name = member[:MAX_NAME]
        for other, (_, _used, last) in list(members.items()):
            if now - last > ACTIVE_FOR and other != name:
                del members[other]
        mine = members.get(name)
        if mine is None:
            if len(members) >= MAX_MEMBERS:
                del members[min(members, key=lambda k: members[k][2])]
            mine = members[name] = [now, 0.0, now]
        level = member_share(rate, members, name, now)
        start = max(now, mine[0])
        mine[0] = start + nbytes / level
        mine[1] = _decayed(mine, now) + nbytes / RATE_TAU
        mine[2] = now
        return start

    # ------------------------------------------------------------------ looking
    def backlog(self, member: Optional[str] = None) -> float:
        """Seconds until a reservation made now (by ``member``) could start: how far
        behind the bucket (or the member) is.  A hint, never a promise."""
        now = self._clock()
        with self._lock:
            state = self._load(now)
        if member is None:
            tat = state["tat"]
        else:
            tat = state["members"].get(member[:MAX_NAME], [now])[0]
        return max(0.0, tat - now)

    def share(self, rate: float, member: str) -> float:
        """The rate ``member`` would be paced at now, out of ``rate``."""
        now = self._clock()
        with self._lock:
            state = self._load(now)
        members = {k: v for k, v in state["members"].items() if now - v[2] <= ACTIVE_FOR}
        return member_share(rate, members, member[:MAX_NAME], now)

    # ------------------------------------------------------------------ the file
    def _boot(self) -> float:
        return self._wallclock() - self._clock()

    def _load(self, now: float) -> dict:
        fresh = {"key": self.key, "boot": self._boot(), "tat": now, "members": {}}
        try:
            raw = os.pread(self._fd, MAX_STATE, 0)
            state = json.loads(raw) if raw else None
        except (OSError, ValueError):
            return fresh
        if not _well_formed(state):
            return fresh
        assert isinstance(state, dict)
        if abs(state["boot"] - fresh["boot"]) > BOOT_SLACK or state["tat"] > now + MAX_AHEAD:
            return fresh
        for m in state["members"].values():
            if m[0] > now + MAX_AHEAD:
                m[0] = now
        return state

    def _store(self, state: dict) -> None:
        data = json.dumps(state, separators=(",", ":")).encode()
        os.pwrite(self._fd, data, 0)
        os.ftruncate(self._fd, len(data))


def _decayed(member: List[float], now: float) -> float:
    """A member's rate estimate, decayed to ``now``."""
    _, used, last = member
    return used * math.exp(-max(0.0, now - last) / RATE_TAU)


def _well_formed(state: object) -> bool:
    """True when ``state`` has the shape this module writes (anything else: start afresh)."""
    if not isinstance(state, dict):
        return False
    tat, boot, members = state.get("tat"), state.get("boot"), state.get("members")
    if not isinstance(tat, (int, float)) or not isinstance(boot, (int, float)):
        return False
    if not isinstance(members, dict) or len(members) > MAX_MEMBERS:
        return False
    return all(
        isinstance(v, list) and len(v) == 3 and all(isinstance(x, (int, float)) for x in v)
        for v in members.values()
    )
