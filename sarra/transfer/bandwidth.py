"""Bandwidth limits of a process's transfers: which shared budgets each transfer draws on.

Owns :class:`Bandwidth` (built once per process from the options), :class:`Pacer` (the
process's draw on one :class:`~sarra.transfer.bucket.SharedBucket`) and :class:`Pacing`
(the pacers of one transfer; the shared loops of :class:`sarra.transfer.Transfer` call
``wait(n)`` after every ``n`` bytes moved).  The budgets:

* ``bandwidth``: the config's total on this host, one file in the config's state
  directory shared by its instances and threads.  Across hosts each host takes the
  part of the total its instances hold of the queue's consumers (``share``, set by
  ``sarra.flow.sharing`` from the broker's consumer count);
* ``bandwidth_per_host``: every flow of this user on this host that fetches from or
  sends to one server (``scheme://host:port``), one file per server in
  ``<state_dir>/bandwidth/``;
* ``source_bandwidth``: dd_sara's quota of each source, one file per source in the
  same directory (so a switch's ingest and relay configs count a source together).
  dd_sara also draws on the config's bucket as the notice's source (the bucket's
  *member*): its use is counted, and under a total paced at its fair share
  (``sarra.transfer.bucket``); ``sarra.flow.sharing`` decides which sources' files
  the instances take.

**Grants.**  Locking a file for every 64 KiB read would cost more than the read, so a
process reserves a *grant* (1/20 s of the rate, 64 KiB to 4 MiB) at once and spends it
locally, threads included; it locks the file again when the grant is spent.  A grant
reserved but not yet spent is the only excess over the rate: one per process, a small
fraction of any 10-second window.  Reads are cut to a grant at most (``Pacing.piece``)
so that no transfer takes a large bite before it waits.

File names are hashes of the server or source (both come from notices: hostile), and
the directory is pruned of files unused for an hour when it grows past ``MAX_FILES``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from sarra.transfer.bucket import SharedBucket

__all__ = ["Bandwidth", "Pacer", "Pacing", "Throttle", "pacer", "server_key"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]

GRANT_TIME = 0.05
MIN_GRANT = 64 << 10
MAX_GRANT = 4 << 20
COUNT_GRANT = 1 << 20
#: s: the longest single sleep, so that a stop request is seen soon
SLEEP_SLICE = 0.25
#: bucket files kept in the shared directory before unused ones are pruned
MAX_FILES = 512
PRUNE_AGE = 3600.0
#: pacings remembered per process (one per server and source seen)
MAX_PACINGS = 1000
DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "ftps": 21, "sftp": 22}


def server_key(baseurl: str) -> Optional[str]:
    """``scheme://host:port`` of the server ``baseurl`` names (default port filled in);
    None for ``file:`` (no remote host)."""
    parts = urlsplit(baseurl)
    scheme = parts.scheme.lower()
    if scheme == "file" or not parts.hostname:
        return None
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme, 0)
    except ValueError:
        port = 0
    return f"{scheme}://{parts.hostname.lower()}:{port}"


def grant_for(rate: float) -> int:
    """Bytes reserved at once at ``rate`` (no rate: bytes only counted, a few at once)."""
    if rate <= 0:
        return COUNT_GRANT
    return int(min(MAX_GRANT, max(MIN_GRANT, rate * GRANT_TIME)))


class Throttle:
    """Sleeps so that ``total`` bytes never arrive faster than ``rate`` bytes/s: the
    per-transfer ``throttle`` (v2 ``kbytes_ps``, sr3 ``byteRateMax``), no file shared."""

    def __init__(
        self,
        rate: int,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._start = clock()

    def wait(self, total: int) -> float:
        """Sleep until ``total`` bytes are due; returns the seconds slept."""
        if self.rate <= 0:
            return 0.0
        ahead = total / self.rate - (self._clock() - self._start)
        if ahead > 0:
            self._sleep(ahead)
            return ahead
        return 0.0


def pacer(
    throttle: int, pacing: Optional[Pacing], stop: Callable[[], bool], budget: Any = None
) -> Optional[Callable[[int], None]]:
    """What a transfer's loop calls after each piece of ``n`` bytes: the per-transfer
    ``throttle`` and the shared budgets of ``pacing``; None when neither applies.  Time
    spent waiting for them is our own doing, so it is excused from ``budget``'s
    deadline (``sarra.transfer.limits.Budget``)."""
    throttler = Throttle(throttle) if throttle > 0 else None
    if throttler is None and pacing is None:
        return None
    moved = [0]

    def pace(n: int) -> None:
        moved[0] += n
        waited = throttler.wait(moved[0]) if throttler is not None else 0.0
        if pacing is not None:
            waited += pacing.wait(n, stop)
        if budget is not None and waited:
            budget.excuse(waited)

    return pace


class Pacer:
    """One process's draw on one bucket at ``rate`` bytes/s (which may change: the
    host's share of a config's total).  ``member``: its use is counted, and paced at
    its fair share of the rate (``quota`` giving each member's cap)."""

    def __init__(
        self,
        bucket: SharedBucket,
        rate: float,
        member: Optional[str] = None,
        quota: Callable[[str], float] = lambda name: 0,
    ) -> None:
        self.bucket = bucket
        self.rate = float(rate)
        self.member = member
        self.quota = quota
        #: the bucket file failed (logged once; its limit is not waited for)
        self.failed = False
        self._lock = threading.Lock()
        self._left = 0
        self._ready = 0.0

    @property
    def grant(self) -> int:
        return grant_for(self.rate)

    def take(self, nbytes: int) -> float:
        """Spend ``nbytes`` of the local grant, reserving another one when it is spent;
        returns the clock time from which they may go.

        Raises:
            OSError: the bucket file failed.
        """
        with self._lock:
            if self._left < nbytes:
                want = max(self.grant, nbytes - self._left)
                self._ready = self.bucket.reserve(want, self.rate, self.member, self.quota)
                self._left += want
            self._left -= nbytes
            return self._ready


class Pacing:
    """The pacers one transfer draws on; :meth:`wait` after every piece moved."""

    def __init__(
        self,
        pacers: Sequence[Pacer],
        *,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.pacers = tuple(pacers)
        self._clock = clock
        self._sleep = sleep

    @property
    def piece(self) -> int:
        """The most bytes a transfer should read before waiting: the smallest grant of
        a pacer that limits (one that only counts does not cut reads)."""
        return min([p.grant for p in self.pacers if p.rate > 0] or [MAX_GRANT])

    def wait(self, nbytes: int, stop: Callable[[], bool] = lambda: False) -> float:
        """Sleep until ``nbytes`` more may have gone (in slices, returning early when
        ``stop()``); returns the seconds slept.  A bucket file that fails is logged
        and not waited for: a limit must never fail a transfer.
        """
        ready = 0.0
        for p in self.pacers:
            try:
                ready = max(ready, p.take(nbytes))
            except OSError as e:
                if not p.failed:  # said once: this runs for every piece
                    log.warning("bandwidth budget %s unusable: %s", p.bucket.path, e)
                p.failed = True
        start = now = self._clock()
        while ready > now and not stop():
            self._sleep(min(SLEEP_SLICE, ready - now))
            now = self._clock()
        return now - start


class Bandwidth:
    """Every budget a process's transfers draw on (see the module docstring).

    ``config_file``: the config's bucket; ``shared_dir``: the per-server and per-source
    buckets.  ``total``, ``per_host``: bytes/s (0: none); ``quotas``: ``(source or *,
    bytes/s)`` pairs, the first match wins.  ``by_source`` (dd_sara): every transfer's
    use of the config's total is counted for its source (``-`` for none), so that
    sources can be given fair shares of it.  Thread-safe.
    """

    def __init__(
        self,
        *,
        config_file: Path,
        shared_dir: Path,
        total: int = 0,
        per_host: int = 0,
        quotas: Sequence[Tuple[str, int]] = (),
        by_source: bool = False,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.total = total
        self.per_host = per_host
        self.quotas = tuple(quotas)
        self.by_source = by_source
        self.shared_dir = Path(shared_dir)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._share = 1.0
        self._config: Optional[Pacer] = None
        if total > 0 or by_source:  # dd_sara counts each source's use even without a total
            bucket = SharedBucket(config_file, key="config", clock=clock)
            self._config = Pacer(bucket, total)
        self._pacers: Dict[str, Pacer] = {}
        self._pacings: Dict[Tuple[Any, ...], Optional[Pacing]] = {}

    def __bool__(self) -> bool:
        return bool(self.total > 0 or self.per_host > 0 or self.quotas)

    # ------------------------------------------------------------------ the host's share
    @property
    def share(self) -> float:
        """The part of ``total`` this host takes (1: all of it)."""
        return self._share

    def set_share(self, share: float) -> None:
        """Take ``share`` (0 < share <= 1) of the config's total on this host."""
        share = min(1.0, max(share, 1e-3))
        self._share = share
        if self._config is not None:
            self._config.rate = self.total * share

    # ------------------------------------------------------------------ per transfer
    def pacing(
        self, baseurl: str, source: Optional[str] = None, total: bool = True
    ) -> Optional[Pacing]:
        """The pacing of a transfer with the server of ``baseurl`` for ``source``
        (dd_sara: the notice's source), the config's total included when ``total``;
        None when no budget applies."""
        server = server_key(baseurl) if self.per_host > 0 else None
        quota = self.quota(source) if source else 0
        member = (source or "-") if self.by_source else None
        key = (server, member, source if quota else None, total)
        with self._lock:
            if key in self._pacings:
                return self._pacings[key]
            if len(self._pacings) >= MAX_PACINGS:
                self._pacings.clear()
                self._pacers.clear()
            pacers = []
            if member and (total or not self.total):  # counted even where not limited
                pacers.append(self._member_pacer(member))
            elif total and self._config is not None:
                pacers.append(self._config)
            if server is not None:
                pacers.append(self._shared_pacer("host", server, self.per_host))
            if source and quota:
                pacers.append(self._shared_pacer("source", source, quota))
            pacing = Pacing(pacers, clock=self._clock, sleep=self._sleep) if pacers else None
            self._pacings[key] = pacing
            return pacing

    def quota(self, source: str) -> int:
        """The ``source_bandwidth`` of ``source`` (bytes/s; 0: none)."""
        for who, rate in self.quotas:
            if who == source or who == "*":
                return rate
        return 0

    def backlog(self, source: str) -> float:
        """Seconds ``source``'s bytes are behind: its quota's, or its own pacing at its
        fair share of the total (0: it may go now)."""
        quota = self.quota(source)
        behind = self._counted(lambda b: b.backlog(source), 0.0) if self.total > 0 else 0.0
        if quota:
            with self._lock:
                pacer = self._shared_pacer("source", source, quota)
            behind = max(behind, pacer.bucket.backlog())
        return behind

    def cap(self, source: str) -> float:
        """The most ``source`` may have now: its quota, or its max-min fair share of
        this host's part of the total (among the sources that want more, each capped
        by its quota), whichever is less; inf when neither applies."""
        cap = float(self.quota(source) or math.inf)
        if self._config is not None and self.by_source and self.total > 0:
            share = self._config.bucket.share(self._config.rate, source, self.quota)
            cap = min(cap, share)
        return cap

    def used(self, source: str) -> float:
        """The rate ``source`` used lately (bytes/s; dd_sara counts it)."""
        return self._counted(lambda b: b.used(source), 0.0)

    def working(self, source: str) -> float:
        """Until when the instances have work taken for ``source`` (clock time)."""
        return self._counted(lambda b: b.working(source), 0.0)

    def claim(self, source: str, most: float) -> float:
        """Take up to ``most`` seconds of ``source``'s work, less what the instances
        have in hand (``SharedBucket.claim``); without the config's bucket: ``most``."""
        return self._counted(lambda b: b.claim(source, most), most)

    def settle(self, source: str, seconds: float) -> None:
        """Correct a claim of ``source``'s work (``SharedBucket.settle``)."""
        if seconds:
            self._counted(lambda b: b.settle(source, seconds), None)

    def want(self, sources: Sequence[str]) -> None:
        """Record that ``sources`` have messages waiting (for their fair shares)."""
        if sources:
            self._counted(lambda b: b.want(sources), None)

    def _counted(self, fn: Callable[[SharedBucket], Any], default: Any) -> Any:
        """``fn`` on the config's bucket, where dd_sara counts its sources; ``default``
        without one, or when the file fails (logged: a limit never fails a message)."""
        if self._config is None or not self.by_source:
            return default
        try:
            return fn(self._config.bucket)
        except OSError as e:
            log.warning("bandwidth budget %s unusable: %s", self._config.bucket.path, e)
            return default

    # ------------------------------------------------------------------ pacers
    def _member_pacer(self, member: str) -> Pacer:
        """The config bucket drawn on for ``member``: the same budget, its use counted
        for the member.  Its rate follows the host's share (:meth:`set_share`)."""
        assert self._config is not None
        name = f"config/{member}"
        pacer = self._pacers.get(name)
        if pacer is None:
            pacer = self._pacers[name] = _Following(self._config, member, self.quota)
        return pacer

    def _shared_pacer(self, kind: str, key: str, rate: int) -> Pacer:
        name = f"{kind}/{key}"
        pacer = self._pacers.get(name)
        if pacer is None:
            digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:24]
            path = self.shared_dir / f"{kind}-{digest}"
            if not path.exists() and prune(self.shared_dir) >= MAX_FILES * 4:
                # names from notices flooding in faster than they age out: every new one
                # shares one budget (stricter, never unbounded files)
                path = self.shared_dir / f"{kind}-overflow"
            bucket = SharedBucket(path, key=name[:200], clock=self._clock)
            pacer = self._pacers[name] = Pacer(bucket, rate)
        return pacer


class _Following(Pacer):
    """A member's draw on the config bucket: the rate is the config pacer's, read at
    each reservation (it changes with the host's share)."""

    def __init__(self, config: Pacer, member: str, quota: Callable[[str], float]) -> None:
        super().__init__(config.bucket, config.rate, member, quota)
        self._config = config

    def take(self, nbytes: int) -> float:
        self.rate = self._config.rate
        return super().take(nbytes)


def prune(directory: Path, now: Optional[float] = None) -> int:
    """Remove the bucket files of ``directory`` unused for ``PRUNE_AGE`` seconds once it
    holds ``MAX_FILES`` or more (servers and sources named by notices come and go).
    Returns how many entries are left."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    if len(entries) < MAX_FILES:
        return len(entries)
    limit = (time.time() if now is None else now) - PRUNE_AGE
    left = len(entries)
    for e in entries:
        try:
            if e.is_file(follow_symlinks=False) and e.stat().st_mtime < limit:
                os.unlink(e.path)
                left -= 1
        except OSError:
            continue
    return left


def shared_budgets(state_dir: Path) -> Path:
    """The per-user directory of the per-server and per-source buckets."""
    return Path(state_dir) / "bandwidth"
