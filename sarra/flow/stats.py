"""The counters of one running instance, saved where ``dd status``, ``dd metrics`` and
``dd check`` read them (``<state>/stats.NN.json``).

Kept cheaply in the hot path: plain integers and dicts bumped by the flow's thread when it
settles a message (``Flow._settle`` -> :meth:`Stats.count`), no lock (only that thread
writes them), and a lag histogram with fixed buckets (one ``bisect`` per message).  Nothing
is served from the daemon: it saves its counters every ``metrics_interval`` seconds
(:meth:`Stats.tick`, one small JSON file written atomically) and ``dd`` turns the files of
every instance into the Prometheus exposition, the Nagios check and the live view
(``sarra.service.metrics``: one endpoint per host, see doc/admin-guide.rst).

Each save keeps the previous save's counters (``prev``), so that readers see what was done
in the last interval.  Counters start at 0 in every process: a save whose previous one was
written by another process (a restart, a crash) starts a new interval at this process's
start instead of subtracting the dead process's counters (which gave negative counts).
"""

from __future__ import annotations

import json
import logging
import os
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from sarra.core.delivery import OK, REJECTED, Delivery
from sarra.core.timestamps import parse_time

log = logging.getLogger(__name__)

COUNTERS = ("ok", "rejected", "failed", "bytes")

#: upper bounds (seconds) of the lag histogram's buckets; one more bucket holds the rest
#: (+Inf).  Fixed, so that every instance's histogram can be summed.
LAG_BUCKETS: Tuple[float, ...] = (
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    10800.0, 86400.0,
)  # fmt: skip

#: why a notice was rejected, by its report code (no code: accept/reject masks or hooks)
REJECT_REASONS = {304: "duplicate", 403: "forbidden", 417: "malformed"}


def reject_reason(d: Delivery) -> str:
    """The class of a rejection: duplicate, forbidden, malformed, filtered or other."""
    if not d.report or d.report[0] is None:
        return "filtered"
    return REJECT_REASONS.get(d.report[0], "other")


def failure_class(d: Delivery) -> str:
    """The class of a failure: its v02 report code (404, 499, 503...), ``500`` for an
    unexpected error; ``other`` for a code outside 100-599 (a hostile server's)."""
    code = d.report[0] if d.report else 499
    return str(code) if isinstance(code, int) and 100 <= code <= 599 else "other"


@dataclass
class Lag:
    """A histogram of lags (seconds between a notice's pubtime and its outcome).

    ``counts[i]`` is the number of observations in bucket ``i`` alone (not cumulative):
    ``LAG_BUCKETS[i-1] < lag <= LAG_BUCKETS[i]``; the last one is above every bound.
    """

    counts: List[int] = field(default_factory=lambda: [0] * (len(LAG_BUCKETS) + 1))
    sum: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        if seconds < 0.0:
            seconds = 0.0  # a clock ahead of ours: on time, not early
        self.counts[bisect_left(LAG_BUCKETS, seconds)] += 1
        self.sum += seconds
        self.count += 1

    def saved(self) -> Dict[str, Any]:
        return {"counts": list(self.counts), "sum": self.sum, "count": self.count}


@dataclass
class Stats:
    """Counters since this process started, for the log, ``dd status`` and ``dd metrics``.

    ``ok``: notices accepted and processed (a file placed or posted); ``files``: those of
    them with a local file; ``received``: first attempts settled (retries are not counted
    twice); ``rejected_by`` and ``failed_by``: by :func:`reject_reason` and
    :func:`failure_class`.  ``broker``: the consuming (or posting) broker connection,
    asked at each save whether it is connected and how often it reconnected.
    ``every``: seconds between saves by :meth:`tick` (0: only at housekeeping and at
    stop, without the lag histogram: metrics off).
    """

    ok: int = 0
    rejected: int = 0
    failed: int = 0
    bytes: int = 0
    last_activity: float = 0.0
    received: int = 0
    files: int = 0
    rejected_by: Dict[str, int] = field(default_factory=dict)
    failed_by: Dict[str, int] = field(default_factory=dict)
    lag: Lag = field(default_factory=Lag)
    #: who is counting: a save by another process (or incarnation) is not a previous one
    pid: int = field(default_factory=os.getpid)
    started: float = field(default_factory=time.time)
    every: float = 5.0
    broker: Any = field(default=None, repr=False, compare=False)
    _next_save: float = field(default=0.0, init=False, repr=False, compare=False)

    def count(self, d: Delivery) -> None:
        """Count ``d``'s outcome (called once per settled message, by the flow's thread)."""
        now = time.time()
        self.last_activity = now
        if d.retry is None:
            self.received += 1
            if self.every:
                self._observe_lag(d, now)
        if d.outcome == OK:
            self.ok += 1
            self.bytes += d.size
            if d.local_path is not None:
                self.files += 1
        elif d.outcome == REJECTED:
            self.rejected += 1
            reason = reject_reason(d)
            self.rejected_by[reason] = self.rejected_by.get(reason, 0) + 1
        else:
            self.failed += 1
            cls = failure_class(d)
            self.failed_by[cls] = self.failed_by.get(cls, 0) + 1

    def _observe_lag(self, d: Delivery, now: float) -> None:
        try:
            self.lag.observe(now - parse_time(d.notice.pubtime))
        except (ValueError, TypeError, AttributeError):  # a notice made without pubtime
            pass

    def tick(self, path: Optional[Path]) -> None:
        """Save the counters to ``path`` if ``every`` seconds passed since the last save.

        Called once per round of the run loop: one clock read when nothing is due.
        """
        if path is None or not self.every:
            return
        now = time.monotonic()
        if now < self._next_save:
            return
        self._next_save = now + self.every
        self.save(path, time.time())

    def save(self, path: Path, now: float) -> None:
        """Write the counters with those of the previous save, atomically."""
        prev: Dict[str, Any] = {}
        try:
            prev = json.loads(path.read_text()).get("now", {})
        except (OSError, ValueError, AttributeError):
            pass
        if not isinstance(prev, dict) or not self._mine(prev):
            prev = {"t": self.started, "ok": 0, "rejected": 0, "failed": 0, "bytes": 0}
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps({"now": self.snapshot(now), "prev": prev}))
            os.replace(tmp, path)
        except OSError as e:
            log.debug("cannot save statistics to %s: %s", path, e)

    def snapshot(self, now: float) -> Dict[str, Any]:
        """The counters as saved (the ``now`` part of ``stats.NN.json``)."""
        snap: Dict[str, Any] = {
            "t": now,
            "pid": self.pid,
            "started": self.started,
            "ok": self.ok,
            "rejected": self.rejected,
            "failed": self.failed,
            "bytes": self.bytes,
            "last_activity": self.last_activity,
            "received": self.received,
            "files": self.files,
            "rejected_by": dict(self.rejected_by),
            "failed_by": dict(self.failed_by),
            "lag": self.lag.saved(),
        }
        if self.broker is not None:
            snap["broker"] = broker_state(self.broker)
        return snap

    def _mine(self, saved: Dict[str, Any]) -> bool:
        """True when ``saved`` was written by this process (so its counters are ours)."""
        return saved.get("pid") == self.pid and saved.get("started") == self.started


def broker_state(broker: Any) -> Dict[str, Any]:
    """``{"connected": bool, "reconnects": int}`` of a ``sarra.broker.connection.Broker``
    (its generation counts the connections made: the first is no reconnect)."""
    try:
        generation = int(broker.generation)
        connected = bool(broker.is_connected)
    except (AttributeError, TypeError, ValueError):
        return {}
    return {"connected": connected, "reconnects": max(0, generation - 1)}


# ---------------------------------------------------------------- readers
def load(path: Path) -> Optional[Dict[str, Any]]:
    """One saved ``stats.NN.json``, or None if it is missing or not ours to read.

    The file is written by our own daemons, but a reader must not break on a file cut
    by a full disk or left by another version: anything but the expected shape is None.
    """
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("now"), dict):
        return None
    if not isinstance(data["now"].get("t"), (int, float)):
        return None
    return data


def previous(data: Dict[str, Any]) -> Dict[str, Any]:
    """The ``prev`` part of a save, or ``{}`` when it cannot be subtracted from ``now``:
    written by another process (files of older versions kept it across restarts), or
    with counters higher than now (a restart the file could not tell)."""
    now, prev = data["now"], data.get("prev") or {}
    if not isinstance(prev, dict) or any(
        k in now and prev.get(k, now[k]) != now[k] for k in ("pid", "started")
    ):
        return {}
    if any(_num(now, k) < _num(prev, k) for k in COUNTERS):
        return {}
    return prev


def _num(d: Dict[str, Any], key: str) -> float:
    v = d.get(key, 0)
    return v if isinstance(v, (int, float)) else 0


def interval(data: Dict[str, Any]) -> tuple:
    """``(messages, bytes, seconds)`` of one saved ``stats.NN.json``: never negative."""
    now, prev = data["now"], previous(data)
    msgs = sum(_num(now, k) - _num(prev, k) for k in ("ok", "rejected", "failed"))
    nbytes = _num(now, "bytes") - _num(prev, "bytes")
    span = max(0.0, now["t"] - _num(prev, "t")) if prev else 0.0
    return int(msgs), int(nbytes), span


def interval_lag(data: Dict[str, Any]) -> Optional[float]:
    """Mean lag (seconds) of the notices of the last interval; None when there were none."""
    now, prev = data["now"].get("lag"), previous(data).get("lag")
    if not isinstance(now, dict):
        return None
    if not isinstance(prev, dict):
        prev = {}
    count = _num(now, "count") - _num(prev, "count")
    if count <= 0:
        return None
    return max(0.0, (_num(now, "sum") - _num(prev, "sum")) / count)
