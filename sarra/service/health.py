"""The health of one daemon configuration, as ``dd status``, ``dd check`` and
``dd metrics`` show it.

Pure data and read-only probes: :class:`ConfigStatus` (expected vs running instances,
hung instances, queue depth, last log activity, retry backlog, each instance's saved
counters: :class:`InstanceFacts`), the on-disk facts it is made of (:func:`retry_backlog`,
:func:`instance_facts`, :func:`queue_of`, :func:`hung_after`), the broker probe
(:class:`QueueProbe`, passive queue declares bounded in time) and the table
(:func:`format_table`).  Nothing here starts or stops anything; ``supervisor.py`` does.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from sarra.config.loader import Options
from sarra.config.paths import Paths, short_name
from sarra.core.errors import SarraError
from sarra.flow import stats

log = logging.getLogger(__name__)

#: A running instance whose log is older than this many heartbeats is hung.
HUNG_HEARTBEATS = 5
QUEUE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Target:
    """One configuration of one daemon: ``Target("dd_subscribe", "amis")``."""

    program: str
    config: str

    @property
    def short(self) -> str:
        return short_name(self.program)


# ---------------------------------------------------------------- status rows
@dataclass(frozen=True)
class InstanceFacts:
    """One instance: running or not, its retry backlog, its last saved counters
    (``sarra.flow.stats``; None before its first save)."""

    n: int
    running: bool
    retry: int = 0
    saved: Optional[Dict[str, Any]] = None

    @property
    def interval(self) -> Optional[Tuple[int, int, float]]:
        return stats.interval(self.saved) if self.saved else None

    @property
    def lag(self) -> Optional[float]:
        """Mean lag of the last interval (seconds); None without messages in it."""
        return stats.interval_lag(self.saved) if self.saved else None


@dataclass(frozen=True)
class ConfigStatus:
    """What ``dd status`` found for one config."""

    target: Target
    expected: int
    running: int
    wanted: bool
    hung: Tuple[int, ...] = ()
    queue: Optional[int] = None
    last_activity: Optional[float] = None
    retry: int = 0
    available: bool = True
    #: (messages, bytes, seconds) handled in the instances' last saved interval
    interval: Optional[Tuple[int, int, float]] = None
    instances: Tuple[InstanceFacts, ...] = ()
    #: why the config cannot be read (its state is then "broken")
    error: str = ""

    @property
    def state(self) -> str:
        if self.error:
            return "broken"
        if not self.available:
            return "n/a"
        if self.hung:
            return "hung"
        if self.running >= self.expected > 0:
            return "running"
        if self.running == 0:
            return "dead" if self.wanted else "stopped"
        return "partial"

    @property
    def ok(self) -> bool:
        return self.state == "running"

    @property
    def lag(self) -> Optional[float]:
        """The worst instance's mean lag in the last interval (seconds), or None."""
        lags = [i.lag for i in self.instances if i.lag is not None]
        return max(lags) if lags else None

    @property
    def rate(self) -> Optional[float]:
        """Bytes per second over the last interval, summed over the instances."""
        iv = self.interval
        return iv[1] / iv[2] if iv is not None and iv[2] > 0 else None

    @property
    def msg_rate(self) -> Optional[float]:
        """Messages per second over the last interval, summed over the instances."""
        iv = self.interval
        return iv[0] / iv[2] if iv is not None and iv[2] > 0 else None


def retry_backlog(state_dir: Path) -> int:
    """Entries waiting in every instance's on-disk retry queue (``retry.NN/``)."""
    if not state_dir.is_dir():
        return 0
    return sum(
        1
        for d in state_dir.glob("retry.*")
        if d.is_dir()
        for f in d.iterdir()
        if f.is_file() and not f.name.startswith(".") and not f.name.endswith(".tmp")
    )


def instance_backlog(state_dir: Path, n: int) -> int:
    """Entries waiting in instance ``n``'s retry queue (``retry.NN/``)."""
    d = state_dir / f"retry.{n:02d}"
    if not d.is_dir():
        return 0
    return sum(
        1
        for f in d.iterdir()
        if f.is_file() and not f.name.startswith(".") and not f.name.endswith(".tmp")
    )


def saved_numbers(state_dir: Path) -> List[int]:
    """Instance numbers that have a ``stats.NN.json``."""
    found = (_STATS_RE.match(p.name) for p in state_dir.iterdir()) if state_dir.is_dir() else ()
    return sorted(int(m.group(1)) for m in found if m)


_STATS_RE = re.compile(r"^stats\.(\d{2,})\.json$")


def instance_facts(
    state_dir: Path, numbers: Sequence[int], running: Sequence[int]
) -> Tuple[InstanceFacts, ...]:
    """Facts of instances ``numbers`` (and any other with a saved counters file)."""
    every = sorted(set(numbers) | set(saved_numbers(state_dir)))
    return tuple(
        InstanceFacts(
            n,
            n in running,
            instance_backlog(state_dir, n),
            stats.load(state_dir / f"stats.{n:02d}.json"),
        )
        for n in every
    )


def summed_interval(facts: Sequence[InstanceFacts]) -> Optional[Tuple[int, int, float]]:
    """Messages and bytes in the last saved interval, summed over the instances.

    Each instance saves its counters every ``metrics_interval`` (and at housekeeping) in
    ``stats.NN.json``, with those of the save before: the difference is what it did in
    that interval (never negative: see ``sarra.flow.stats``).
    """
    found = [f.interval for f in facts if f.interval is not None]
    if not found:
        return None
    return (sum(m for m, _, _ in found), sum(b for _, b, _ in found), max(t for _, _, t in found))


def last_interval(state_dir: Path) -> Optional[Tuple[int, int, float]]:
    """:func:`summed_interval` of every instance that saved counters in ``state_dir``."""
    return summed_interval(instance_facts(state_dir, (), ()))


def mtime(path: Path) -> Optional[float]:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


def hung_after(o: Options) -> float:
    """Seconds without log activity after which a running instance counts as hung.

    ``HUNG_HEARTBEATS`` heartbeats, but never less than two housekeeping intervals: an
    idle instance only writes to its log at housekeeping.
    """
    heartbeat = o.heartbeat or 60.0
    housekeeping = o.housekeeping
    return max(HUNG_HEARTBEATS * heartbeat, 2 * housekeeping)


def queue_of(o: Options, state_dir: Path) -> Optional[str]:
    """The config's queue: configured, or remembered in its state directory."""
    from sarra.flow.consumer import remembered_queue

    return remembered_queue(o, state_dir)


class QueueProbe:
    """Queue depths by passive declare: one connection per broker, bounded in time.

    Each broker is asked from its own daemon thread; whatever has not answered after
    ``timeout`` seconds is reported unknown (None), so ``dd status`` never hangs on an
    unreachable broker.
    """

    def __init__(self, paths: Paths, timeout: float = QUEUE_TIMEOUT_S) -> None:
        self.paths = paths
        self.timeout = timeout

    def depths(self, wanted: Dict[str, List[str]]) -> Dict[Tuple[str, str], int]:
        """``{broker_url: [queue, ...]}`` -> ``{(broker_url, queue): messages ready}``."""
        found: Dict[Tuple[str, str], int] = {}
        deadline = time.monotonic() + self.timeout
        threads = [
            threading.Thread(target=self._ask, args=(url, queues, deadline, found), daemon=True)
            for url, queues in wanted.items()
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return dict(found)

    def _ask(self, url: str, queues: List[str], deadline: float, found: Dict) -> None:
        from sarra.broker.connection import Broker
        from sarra.config.credentials import Credentials

        broker = None
        try:
            resolved = Credentials.load(self.paths.credentials_file()).resolve(url)
            broker = Broker(
                resolved,
                heartbeat=0,
                name="dd status",
                max_backoff=1.0,
                stop=lambda: time.monotonic() > deadline,
            )
            broker.connect()
            for q in queues:
                try:
                    found[(url, q)] = broker.declare_queue(q, passive=True)
                except SarraError as e:
                    log.debug("queue %s: %s", q, e)
        except (SarraError, OSError) as e:
            log.debug("queue depth unknown: %s", e)
        finally:
            if broker is not None:
                broker.close()


def with_queue(row: ConfigStatus, depth: Optional[int]) -> ConfigStatus:
    return replace(row, queue=depth)


def _ago(when: Optional[float], now: float) -> str:
    if when is None:
        return "-"
    import humanize

    return humanize.naturaldelta(max(0.0, now - when)) + " ago"


HEADER = (
    "program",
    "config",
    "instances",
    "state",
    "queue",
    "lag",
    "last interval",
    "last activity",
    "retry",
)


def human_seconds(seconds: Optional[float]) -> str:
    """``-``, ``0.4s``, ``12s``, ``5m``, ``3h``, ``2d``: a lag in a few characters."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    for unit, size, below in (("s", 1.0, 100.0), ("m", 60.0, 6000.0), ("h", 3600.0, 360000.0)):
        if seconds < below:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds / 86400:.0f}d"


def _interval(iv: Optional[Tuple[int, int, float]]) -> str:
    if iv is None:
        return "-"
    from sarra.logs.units import human_size

    msgs, nbytes, span = iv
    per = f" in {span:.0f}s" if span > 0 else ""
    return f"{msgs} msgs, {human_size(nbytes)}{per}"


def format_table(rows: Sequence[ConfigStatus], now: float) -> List[str]:
    """The ``dd status`` table, one line per config (empty list for no rows)."""
    if not rows:
        return []
    cells = [HEADER] + [
        (
            r.target.short,
            r.target.config,
            f"{r.running}/{r.expected if not r.error else '-'}",
            r.state,
            "-" if r.queue is None else str(r.queue),
            human_seconds(r.lag),
            _interval(r.interval),
            _ago(r.last_activity, now),
            str(r.retry),
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    return ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells]
