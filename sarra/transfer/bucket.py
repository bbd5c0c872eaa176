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

**Members: who used the budget, who wants it, who is on it.**  A reservation may name
a *member* (dd_sara: the source whose file it is); the bucket then keeps, per member,
the rate it used lately (an exponential average over ``RATE_TAU`` s), when it last
wanted more (:meth:`SharedBucket.want`: it has messages waiting), until when the
instances have work in hand for it (:meth:`SharedBucket.claim`), and its own ``tat``.
Under a rate, a member's bytes wait for both: the bucket's ``tat`` (first come, first
served, so the total is exact) and its own, which moves at the member's max-min fair
share of the rate (times ``HEADROOM``) among the members that instances are working on
(each capped by its quota; a member whose messages no instance can take yet does not
hold the others back, or the link would go idle).  So a source with two transfers going
gets no more than one with a single transfer.  The member's own ``tat`` alone would not
keep the total; the bucket's alone would give a source a share in proportion to its
transfers.  Which messages get worked (who has transfers going) is decided before, by
``sarra.flow.sharing``, with :meth:`SharedBucket.claim`.

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
from typing import Callable, Dict, Iterable, List, Mapping, Optional

__all__ = ["SharedBucket", "fair_shares"]

Clock = Callable[[], float]

#: s: a ``tat`` further ahead than this is garbage (another boot, a bad write)
MAX_AHEAD = 600.0
#: s: the boot time computed now and the one in the file may differ this much (NTP)
BOOT_SLACK = 30.0
#: s: time constant of the per-member rate estimate
RATE_TAU = 2.0
#: s: a member that neither reserved nor wanted for this long is forgotten
ACTIVE_FOR = 5.0
#: s: a member that had messages waiting this long ago still wants more
WANT_FOR = 3.0
#: members' bytes are paced at this multiple of their fair share: the total stays
#: exact (first come, first served), and a member may take some of what another,
#: between two of its files, leaves unused, so the link stays full
HEADROOM = 1.1
#: members remembered per bucket (dd_sara relays: source names come from notices)
MAX_MEMBERS = 256
MAX_NAME = 100
#: bytes read from the file: the state is small, more is garbage
MAX_STATE = 1 << 16

#: a member's entry: [rate used lately, when that was computed, when it last wanted,
#: until when the instances have work in hand for it, its own tat]
Member = List[float]
FIELDS = 5


def fair_shares(rate: float, caps: Mapping[str, float]) -> Dict[str, float]:
    """Max-min fair shares of ``rate`` among members that want more, each capped by
    ``caps[name]`` (its quota; 0: none): the ones capped below an equal split keep
    their cap, the others split the rest equally."""
    shares: Dict[str, float] = {}
    left, n = rate, len(caps)
    for name, cap in sorted(caps.items(), key=lambda kv: kv[1] if kv[1] > 0 else math.inf):
        equal = left / n
        shares[name] = min(cap, equal) if cap > 0 else equal
        left -= shares[name]
        n -= 1
    return shares


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

    # ------------------------------------------------------------------ changing
    def reserve(
        self,
        nbytes: int,
        rate: float,
        member: Optional[str] = None,
        cap: Callable[[str], float] = lambda name: 0,
    ) -> float:
        """Reserve ``nbytes`` at ``rate`` bytes/s; returns when they may start (clock
        time, possibly in the past: at once).  ``rate`` <= 0: no limit, returns now.
        ``member``: count them as its use and, under a rate, pace them at its fair
        share too (:meth:`share`, ``cap`` giving each member's quota).

        Raises:
            OSError: the file cannot be locked, read or written.
        """
        now = self._clock()
        if rate <= 0 and member is None:
            return now
        with self._locked(now) as state:
            start = max(now, state["tat"]) if rate > 0 else now
            if rate > 0:
                state["tat"] = start + nbytes / rate
            if member is not None:
                m = self._member(state, member, now)
                m[0] = _decayed(m, now) + nbytes / RATE_TAU
                m[1] = now
                if rate > 0:
                    share = _share(state["members"], rate, member[:MAX_NAME], cap, now, True)
                    mine = max(now, m[4])
                    m[4] = mine + nbytes / (share * HEADROOM)
                    start = max(start, mine)
        return start

    def want(self, members: Iterable[str]) -> None:
        """Record that ``members`` want more now (they have messages waiting).

        Raises:
            OSError: the file cannot be locked, read or written.
        """
        names = {m[:MAX_NAME] for m in members}
        if not names:
            return
        now = self._clock()
        with self._locked(now) as state:
            for name in names:
                self._member(state, name, now)[2] = now

    def claim(self, member: str, most: float) -> float:
        """Take work for ``member``: up to ``most`` seconds less what the instances
        already have in hand for it (at once, under the lock, so two instances never
        take the same seconds); returns the seconds taken (0: none left).

        Raises:
            OSError: the file cannot be locked, read or written.
        """
        now = self._clock()
        with self._locked(now) as state:
            m = self._member(state, member, now)
            taken = max(0.0, most - max(0.0, m[3] - now))
            m[3] = max(m[3], now) + taken
            return taken

    def settle(self, member: str, seconds: float) -> None:
        """Correct a claim by ``seconds``: positive, claimed work no message needed
        (given back); negative, work taken beyond the claim (a last file bigger than
        what was left).

        Raises:
            OSError: the file cannot be locked, read or written.
        """
        now = self._clock()
        with self._locked(now) as state:
            m = self._member(state, member, now)
            m[3] = max(now, m[3] - seconds)

    # ------------------------------------------------------------------ looking
    def working(self, member: str) -> float:
        """Until when the instances have work taken for ``member`` (clock time; past:
        none)."""
        m = self._peek(self._clock())["members"].get(member[:MAX_NAME])
        return m[3] if m else 0.0

    def backlog(self, member: Optional[str] = None) -> float:
        """Seconds until a reservation made now (for ``member``) could start: how far
        behind the bucket (the member's own pacing) is.  A hint, never a promise."""
        now = self._clock()
        state = self._peek(now)
        if member is None:
            return max(0.0, state["tat"] - now)
        m = state["members"].get(member[:MAX_NAME])
        return max(0.0, m[4] - now) if m else 0.0

    def used(self, member: str) -> float:
        """The rate ``member`` used lately (bytes/s)."""
        now = self._clock()
        m = self._peek(now)["members"].get(member[:MAX_NAME])
        return _decayed(m, now) if m else 0.0

    def share(self, rate: float, member: str, cap: Callable[[str], float]) -> float:
        """``member``'s max-min fair share of ``rate`` among the members that want more
        (wanted within ``WANT_FOR`` s, or have work in hand) and itself, each capped by
        ``cap(name)`` (its quota; 0: none)."""
        now = self._clock()
        return _share(self._peek(now)["members"], rate, member[:MAX_NAME], cap, now)

    # ------------------------------------------------------------------ the file
    def _member(self, state: dict, name: str, now: float) -> Member:
        members: Dict[str, Member] = state["members"]
        name = name[:MAX_NAME]
        for other, m in list(members.items()):
            if now - max(m[1:]) > ACTIVE_FOR and other != name:
                del members[other]
        found = members.get(name)
        if found is None:
            if len(members) >= MAX_MEMBERS:
                del members[min(members, key=lambda k: max(members[k][1:]))]
            found = members[name] = [0.0, now, 0.0, 0.0, now]
        return found

    def _peek(self, now: float) -> dict:
        """The state, read without the file lock: a hint (a torn read starts afresh)."""
        with self._lock:
            return self._load(now)

    def _locked(self, now: float) -> _Locked:
        return _Locked(self, now)

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
            m[3], m[4] = min(m[3], now + MAX_AHEAD), min(m[4], now + MAX_AHEAD)
        return state

    def _store(self, state: dict) -> None:
        data = json.dumps(state, separators=(",", ":")).encode()
        os.pwrite(self._fd, data, 0)
        os.ftruncate(self._fd, len(data))


class _Locked:
    """``with bucket._locked(now) as state``: the state under the thread and file locks,
    written back when the block ends without an error."""

    def __init__(self, bucket: SharedBucket, now: float) -> None:
        self.bucket, self.now = bucket, now

    def __enter__(self) -> dict:
        self.bucket._lock.acquire()
        try:
            fcntl.flock(self.bucket._fd, fcntl.LOCK_EX)
        except BaseException:
            self.bucket._lock.release()
            raise
        self.state = self.bucket._load(self.now)
        return self.state

    def __exit__(self, kind: object, *rest: object) -> None:
        try:
            if kind is None:
                self.bucket._store(self.state)
        finally:
            fcntl.flock(self.bucket._fd, fcntl.LOCK_UN)
            self.bucket._lock.release()


def _share(
    members: Dict[str, Member],
    rate: float,
    name: str,
    cap: Callable[[str], float],
    now: float,
    worked: bool = False,
) -> float:
    """``name``'s fair share of ``rate`` among the members that want more or, with
    ``worked`` (pacing bytes), only those some instance has work in hand for: a source
    whose messages no instance can take now must not slow the others' bytes down."""
    wanting = [
        k for k, m in members.items() if m[3] > now or (not worked and now - m[2] <= WANT_FOR)
    ]
    return fair_shares(rate, {k: cap(k) for k in {*wanting, name}})[name]


def _decayed(member: Member, now: float) -> float:
    """A member's rate estimate, decayed to ``now``."""
    used, when = member[0], member[1]
    return used * math.exp(-max(0.0, now - when) / RATE_TAU)


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
        isinstance(v, list) and len(v) == FIELDS and all(isinstance(x, (int, float)) for x in v)
        for v in members.values()
    )
