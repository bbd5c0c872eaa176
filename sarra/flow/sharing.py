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
budget whose use is counted per source (``sarra.transfer.bucket``).  Who gets to move
bytes is decided here, before any byte moves, because pacing alone cannot make shares
hold: one queue delivers the sources' messages in the order they were posted, and an
instance works its batch one file at a time, so with pacing alone a source that posts
much would occupy every instance while the others' files waited in the queue.

So each gather of an instance admits the messages of **one** limited source (a source
with a quota, or any source under a ``bandwidth`` total): the one that got the least
of what it may have lately (rate used / its *cap*, the smaller of its quota and its
max-min fair share of the total among the sources with messages waiting), preferring a
source no other instance is working on (the bucket records who works on what); at most
``HORIZON`` seconds of its cap (by the sizes the notices announce), and none while it is
more than ``HORIZON`` s behind its quota.  Several instances thus spread over several
sources, each source getting up to its cap through the instance(s) on it, and a source
that had more than its share waits while the others catch up.  The other messages are
*held back*: kept unacknowledged (the broker still owns them; a crash or a stop hands
them back) and handed to the flow by a later gather.  Sources without a cap go at once.
This is the plan's "throttle message posting out of pre-validation", made to answer to
bytes: messages are throttled at admission, their bytes paced in the transfers.  What
can be held is bounded by the queue's ``prefetch``: a switch where a source often posts
far more than its share needs a larger one (see dd_sara(8)).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, List, Optional, Set

from sarra.core import partition
from sarra.core.delivery import Delivery
from sarra.core.errors import BrokerError, MessageError

log = logging.getLogger(__name__)

__all__ = ["SharedSource", "source_of"]

#: s between two looks at the queue's consumer count
REFRESH = 30.0
#: s of a source's rate admitted per gather, and how far behind it may be to go on
HORIZON = 2.0
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
        held = self._current(self.held)
        ready = any(self._may_go(s) for s in self._sources(held))
        wait = 0.0 if ready else min(timeout, self._soonest(held))
        pool = held + list(self.inner.gather(max_count, wait))
        sources = self._sources(pool)
        self.bandwidth.want(sorted(s for s in sources if s is not None))
        chosen = self._choose(sources)
        room = start = self._room(chosen) if chosen is not None else 0.0
        out: List[Delivery] = []
        self.held = []
        for d in pool:
            source = source_of(d, self.from_exchange)
            free = source is None or self.bandwidth.cap(source) == math.inf
            if len(out) < max_count and (free or (source == chosen and room > 0)):
                out.append(d)
                if not free:
                    room -= announced_bytes(d)
            else:
                self.held.append(d)
        if chosen is not None:
            planned = start - room
            self.bandwidth.work(chosen, self._clock() + planned / self.bandwidth.cap(chosen))
        return out

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
    def _sources(self, batch: List[Delivery]) -> Set[Optional[str]]:
        return {source_of(d, self.from_exchange) for d in batch}

    def _current(self, held: List[Delivery]) -> List[Delivery]:
        """Held deliveries still acknowledgeable: after a reconnect the broker hands
        the old ones out again, so those are forgotten here."""
        generation = getattr(self.inner.broker, "generation", None)
        return [
            d
            for d in held
            if d.received is None or generation is None or d.received.generation == generation
        ]

    def _may_go(self, source: Optional[str]) -> bool:
        """True when ``source``'s messages may be admitted now (no cap, or not more
        than ``HORIZON`` s behind its quota)."""
        if source is None or self.bandwidth.cap(source) == math.inf:
            return True
        return not self.bandwidth.quota(source) or self.bandwidth.backlog(source) < HORIZON

    def _choose(self, sources: Set[Optional[str]]) -> Optional[str]:
        """The limited source this gather admits: nobody else on it first, then the
        least served relative to its cap (see the module docstring)."""
        now = self._clock()
        candidates = [
            s
            for s in sources
            if s is not None and self.bandwidth.cap(s) < math.inf and self._may_go(s)
        ]
        if not candidates:
            return None

        def order(s: str) -> tuple:
            taken = self.bandwidth.working(s) > now
            return (taken, self.bandwidth.used(s) / self.bandwidth.cap(s), s)

        return min(candidates, key=order)

    def _room(self, source: str) -> float:
        """Bytes of ``source`` one gather may admit: ``HORIZON`` s of its cap, less
        what it is behind its quota."""
        bw = self.bandwidth
        room = bw.cap(source) * HORIZON
        if bw.quota(source):
            room = min(room, bw.quota(source) * (HORIZON - bw.backlog(source)))
        return room

    def _soonest(self, held: List[Delivery]) -> float:
        """Seconds until a held source may go again (inf with nothing held)."""
        waits = [
            self.bandwidth.backlog(s) - HORIZON if s is not None else 0.0
            for s in self._sources(held)
        ]
        return max(0.0, min(waits)) if waits else math.inf
