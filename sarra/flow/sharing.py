"""How a config's bandwidth is shared: among the hosts that run it, among the sources.

Owns :class:`SharedSource`, the broker source of a flow with bandwidth limits
(``sarra.transfer.bandwidth`` paces the bytes; this decides who gets to move them).

**Among hosts: learned from the broker, not configured.**  Every instance of a config,
on every host, consumes the same queue, so the broker already knows how many there
are: a passive declare of the queue returns its consumer count.  Every ``REFRESH``
seconds each instance asks, and its host takes ``instances / consumers`` of
``bandwidth`` (its own instances among all of them).  A host that dies or stops drops
out of the count within ``REFRESH`` s and the others take its part; a host that starts
is counted as soon as it consumes.  Nothing new to configure, no heartbeat exchange, no
permission to grant; we chose it over a static split (``bandwidth`` divided by a
configured number of hosts, which leaves a dead host's part unused) and over a
heartbeat exchange (a protocol, an exchange every instance may write to, and one more
thing to be down).  Between two looks, and while the broker cannot be asked, the last
share holds.

**Among sources (dd_sara).**  Bytes are paced per source only by its
``source_bandwidth`` quota; the config's ``bandwidth`` is one first-come, first-served
budget whose use is counted per source (``sarra.transfer.bucket``).  Fairness is
decided here, before any byte moves, because pacing alone cannot make shares hold: one
queue delivers the sources' messages in the order they were posted, so while an
instance waits on a source over its quota, the others' files would wait behind it.
So a gather *holds back* the messages of a source that is over its rate: more than
``HORIZON`` seconds behind its quota, or (under a ``bandwidth`` total) having used more
than its max-min fair share lately (the share among the sources that have messages
waiting in any instance, each capped by its quota).  Held messages stay
unacknowledged (the broker still owns them; a crash or a stop hands them back) while
the other sources' messages go ahead, and are handed to the flow once their source may
go again.  Each gather admits at most ``HORIZON`` seconds of a source's rate (by the
sizes the notices announce).  This is the plan's "throttle message posting out of
pre-validation", made to answer to bytes: the messages are throttled at admission,
their bytes paced in the transfers.  What can be held is bounded by the queue's
``prefetch``: a switch where a source often posts far more than its quota needs a
larger one (see dd_sara(8)).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Dict, List, Optional, Set

from sarra.core import partition
from sarra.core.delivery import Delivery
from sarra.core.errors import BrokerError, MessageError
from sarra.transfer.bucket import RATE_TAU

log = logging.getLogger(__name__)

__all__ = ["SharedSource", "source_of"]

#: s between two looks at the queue's consumer count
REFRESH = 30.0
#: s of a source's rate admitted per gather, and how far behind it may be to go on
HORIZON = 2.0
#: a source that used up to this multiple of its fair share lately may go on
SLACK = 1.05
#: bytes assumed for a notice that announces no size
UNKNOWN_SIZE = 64 << 10


def source_of(d: Delivery, from_exchange: bool) -> Optional[str]:
    """The source a delivery's bytes count for: on ingest the owner of the ``xs_``
    exchange it came from (the switch's rule, never the notice's claim), else its
    ``source`` header."""
    if from_exchange:
        exchange = d.received.exchange if d.received is not None else ""
        owner = exchange[3:].partition("_")[0] if exchange.startswith("xs_") else ""
        return owner or None
    return d.notice.headers.get("source") or None


def announced_bytes(d: Delivery) -> int:
    """The bytes ``d`` will move: its part's length, or a small guess without one."""
    if d.notice.is_removal or d.notice.is_link:
        return 0
    parts = d.notice.headers.get("parts")
    if not parts:
        return UNKNOWN_SIZE
    try:
        return partition.parse(parts).length
    except MessageError:
        return UNKNOWN_SIZE


class SharedSource:
    """The flow's broker source, sharing ``bandwidth`` among hosts and, with
    ``by_source``, holding back the messages of sources that are over their rate.

    ``inner``: a ``sarra.flow.source.BrokerSource``; ``instances``: this host's
    instances of the config.
    """

    done = False

    def __init__(
        self,
        inner: Any,
        bandwidth: Any,
        *,
        instances: int = 1,
        by_source: bool = False,
        from_exchange: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.bandwidth = bandwidth
        self.instances = max(1, instances)
        self.by_source = by_source
        self.from_exchange = from_exchange
        self._clock = clock
        self._next_look = 0.0
        self.consumers: Optional[int] = None
        #: deliveries held back, oldest first
        self.held: List[Delivery] = []

    # ------------------------------------------------------------------ the source API
    def gather(self, max_count: int, timeout: float) -> List[Delivery]:
        self._look_at_consumers()
        if not self.by_source:
            return list(self.inner.gather(max_count, timeout))
        room: Dict[str, float] = {}
        held, self.held = self._current(self.held), []
        wanting = self._want(held, set())
        out = self._admit(held, room, max_count)
        if len(out) < max_count:
            wait = 0.0 if out else min(timeout, self._soonest())
            new = self.inner.gather(max_count - len(out), wait)
            self._want(new, wanting)
            out += self._admit(new, room, max_count - len(out))
        return out

    def _want(self, batch: List[Delivery], known: Set[str]) -> Set[str]:
        """Tell the config's budget which sources have messages waiting (before any is
        admitted: a source's fair share depends on who else wants some)."""
        sources = {source_of(d, self.from_exchange) for d in batch} - {None} - known
        if sources:
            self.bandwidth.want(sorted(s for s in sources if s is not None))
        return known | {s for s in sources if s is not None}

    def settle(self, d: Delivery) -> None:
        self.inner.settle(d)

    def flush(self) -> None:
        self.inner.flush()

    def keepalive(self) -> None:
        self.inner.keepalive()

    def requeue(self, d: Delivery) -> None:
        self.inner.requeue(d)

    # ------------------------------------------------------------------ among hosts
    def _look_at_consumers(self) -> None:
        """Every ``REFRESH`` s: this host's share of ``bandwidth`` from the number of
        consumers of the queue (see the module docstring)."""
        now = self._clock()
        if now < self._next_look or not self.bandwidth.total or not self.inner.queue:
            return
        self._next_look = now + REFRESH
        ask = getattr(self.inner.broker, "consumers", None)
        if ask is None:
            return
        try:
            count = int(ask(self.inner.queue))
        except BrokerError as e:
            log.debug("bandwidth: consumer count of %s unknown (%s)", self.inner.queue, e)
            return
        count = max(count, self.instances)
        if count != self.consumers:
            self.consumers = count
            self.bandwidth.set_share(self.instances / count)
            log.info(
                "bandwidth: this host takes %d/%d of %d bytes/s (%d instances of %d consumers)",
                self.instances,
                count,
                self.bandwidth.total,
                self.instances,
                count,
            )

    # ------------------------------------------------------------------ among sources
    def _current(self, held: List[Delivery]) -> List[Delivery]:
        """Held deliveries still acknowledgeable: after a reconnect the broker hands
        the old ones out again, so those are forgotten here."""
        generation = getattr(self.inner.broker, "generation", None)
        return [
            d
            for d in held
            if d.received is None or generation is None or d.received.generation == generation
        ]

    def _admit(self, batch: List[Delivery], room: Dict[str, float], most: int) -> List[Delivery]:
        """The deliveries of ``batch`` whose source may go now (at most ``most``); the
        others join :attr:`held`.  ``room``: bytes each source may still be admitted
        in this gather."""
        out: List[Delivery] = []
        for d in batch:
            source = source_of(d, self.from_exchange)
            if len(out) >= most or (source is not None and not self._may_go(source, d, room)):
                self.held.append(d)
            else:
                out.append(d)
        return out

    def _may_go(self, source: str, d: Delivery, room: Dict[str, float]) -> bool:
        if source not in room:
            room[source] = self._room(source)
        if room[source] <= 0:
            return False
        room[source] -= announced_bytes(d)
        return True

    def _room(self, source: str) -> float:
        """Bytes of ``source`` one gather may admit: ``HORIZON`` s of its quota less
        what it is behind, and ``HORIZON`` s of its fair share unless it used more
        than that share lately (0: hold it)."""
        bw = self.bandwidth
        room = math.inf
        quota = bw.quota(source)
        if quota:
            room = quota * (HORIZON - bw.backlog(source))
        share = bw.fair_share(source)
        if share > 0:
            room = min(room, share * HORIZON if bw.used(source) <= share * SLACK else 0.0)
        return room

    def _soonest(self) -> float:
        """Seconds until a held source may go again (inf with nothing held): what its
        quota is behind, or how long its use takes to decay to its fair share."""
        waits = [self._wait_for(s) for s in {source_of(d, self.from_exchange) for d in self.held}]
        return max(0.0, min(waits)) if waits else math.inf

    def _wait_for(self, source: Optional[str]) -> float:
        if source is None:
            return 0.0
        bw = self.bandwidth
        wait = bw.backlog(source) - HORIZON if bw.quota(source) else 0.0
        share = bw.fair_share(source)
        used = bw.used(source)
        if share > 0 and used > share * SLACK:
            wait = max(wait, RATE_TAU * math.log(used / (share * SLACK)))
        return wait
