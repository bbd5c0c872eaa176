"""The counters of one running instance, saved for ``dd status``.

Split from ``sarra.flow.engine`` for size.  Each save keeps the previous save's counters
(``prev``), so that ``dd status`` shows what was done in the last interval.  Counters
start at 0 in every process: a save whose previous one was written by another process
(a restart, a crash) starts a new interval at this process's start instead of
subtracting the dead process's counters (which gave negative counts).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict

from sarra.core.delivery import OK, REJECTED, Delivery

log = logging.getLogger(__name__)

COUNTERS = ("ok", "rejected", "failed", "bytes")


@dataclass
class Stats:
    """Counters since start, for the periodic log line and ``dd status``."""

    ok: int = 0
    rejected: int = 0
    failed: int = 0
    bytes: int = 0
    last_activity: float = 0.0
    by_reason: Dict[str, int] = field(default_factory=dict)
    #: who is counting: a save by another process (or incarnation) is not a previous one
    pid: int = field(default_factory=os.getpid)
    started: float = field(default_factory=time.time)

    def save(self, path: Path, now: float) -> None:
        """Write the counters with those of the previous save, atomically, for ``dd status``
        (messages and bytes in the last interval)."""
        prev: Dict[str, Any] = {}
        try:
            prev = json.loads(path.read_text()).get("now", {})
        except (OSError, ValueError, AttributeError):
            pass
        if not isinstance(prev, dict) or not self._mine(prev):
            prev = {"t": self.started, "ok": 0, "rejected": 0, "failed": 0, "bytes": 0}
        data = {
            "now": {
                "t": now,
                "pid": self.pid,
                "started": self.started,
                "ok": self.ok,
                "rejected": self.rejected,
                "failed": self.failed,
                "bytes": self.bytes,
                "last_activity": self.last_activity,
            },
            "prev": prev,
        }
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(data))
            os.replace(tmp, path)
        except OSError as e:
            log.debug("cannot save statistics to %s: %s", path, e)

    def _mine(self, saved: Dict[str, Any]) -> bool:
        """True when ``saved`` was written by this process (so its counters are ours)."""
        return saved.get("pid") == self.pid and saved.get("started") == self.started

    def count(self, d: Delivery) -> None:
        self.last_activity = time.time()
        if d.outcome == OK:
            self.ok += 1
            self.bytes += d.size
        elif d.outcome == REJECTED:
            self.rejected += 1
        else:
            self.failed += 1


def interval(data: Dict[str, Any]) -> tuple:
    """``(messages, bytes, seconds)`` of one saved ``stats.NN.json``: never negative.

    A ``prev`` written by another process (files of older versions, which kept it across
    restarts) counts as an empty start: the interval is what this process did.
    """
    now, prev = data["now"], data.get("prev") or {}
    if not isinstance(prev, dict) or any(
        k in now and prev.get(k, now[k]) != now[k] for k in ("pid", "started")
    ):
        prev = {}
    if any(now.get(k, 0) < prev.get(k, 0) for k in COUNTERS):
        prev = {}  # counters went down: a restart the file could not tell
    msgs = sum(now.get(k, 0) - prev.get(k, 0) for k in ("ok", "rejected", "failed"))
    nbytes = now.get("bytes", 0) - prev.get("bytes", 0)
    span = max(0.0, now["t"] - prev.get("t", now["t"]))
    return msgs, nbytes, span
