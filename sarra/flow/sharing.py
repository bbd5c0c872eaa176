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

**Among sources (dd_sara).**  A source's bytes are paced by its ``source_bandwidth``
quota and, under a ``bandwidth`` total, at its fair share of it
(``sarra.transfer.bucket``).  Pacing alone cannot make the shares hold, though: one
queue delivers the sources' messages in the order they were posted, and an instance
works its batch one file at a time, so a source that posts much would occupy every
instance while the others' files waited in the queue.  Who gets the instances is
decided here, before any byte moves.

So each gather of an instance admits the messages of **one** limited source (a source
with a quota, or any source under a ``bandwidth`` total): the one that got the least
of what it may have lately (rate used / its *cap*, the smaller of its quota and its
max-min fair share of the total among the sources with messages waiting), among those
for which the instances have the least work in hand.  The instances record in the config's
bucket how much work (in seconds at its cap, by the sizes the notices announce) they
took for each source; a source may be taken while less than ``HORIZON`` seconds of it
are in hand (and its quota is less than that behind), and a gather takes what is left
of those seconds.  Several instances thus spread over several sources, each source
getting up to its cap, and a source that had more than its share waits while the
others catch up; when a single stream cannot reach a source's cap, its work runs late,
the seconds in hand pass, and more instances take it.  The other messages are *held
back*: kept unacknowledged (the broker still owns them; a crash or a stop hands them
back) and handed to the flow by a later gather.  Sources without a cap go at once.
This is the plan's "throttle message posting out of pre-validation", made to answer to
bytes: messages are throttled at admission, their bytes paced in the transfers.  What
can be held is bounded by the queue's ``prefetch``: a switch where a source often posts
far more than its share needs a larger one (see dd_sara(8)).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from sarra.core import partition
from sarra.core.delivery import Delivery
from sarra.core.errors import BrokerError, MessageError

log = logging.getLogger(__name__)

__all__ = ["SharedSource", "source_of"]

#: s between two looks at the queue's consumer count
REFRESH = 30.0
#: s of a source's rate admitted per gather, and how far behind it may be to go on
HORIZON = 0.5
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
        named = {s for s in self._sources(pool) if s is not None}
        self.bandwidth.want(sorted(named))
        caps = {s: self.bandwidth.cap(s) for s in named}  # after want: shares depend on it
        chosen, room = self._claim(caps)
        out: List[Delivery] = []
        self.held = []
        for d in pool:
            source = source_of(d, self.from_exchange)
            free = source is None or caps[source] == math.inf
            if len(out) < max_count and (free or (source == chosen and room > 0)):
                out.append(d)
                if not free:
                    room -= announced_bytes(d)
            else:
                self.held.append(d)
        if chosen is not None:  # what was claimed but not taken, or taken beyond it
            self.bandwidth.settle(chosen, room / caps[chosen])
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
                "bandwidth: this host takes %d/%d of %d bytes/s (its instances of the "
                "queue's consumers)",
                self.instances,
                count,
                self.bandwidth.total,
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
        """True when ``source``'s messages may be admitted now: no cap, or its bytes
        less than ``HORIZON`` s behind (its quota, its fair share)."""
        if source is None or self.bandwidth.cap(source) == math.inf:
            return True
        return self.bandwidth.backlog(source) < HORIZON

    def _claim(self, caps: Dict[str, float]) -> Tuple[Optional[str], float]:
        """The limited source this gather admits and the bytes it may take: the first,
        in order of preference, with work left to claim; when every one has its
        ``HORIZON`` in hand, one message of the first (an instance with messages never
        idles: the pacing keeps the shares).  ``caps``: each source's cap (inf: none).
        See the module docstring."""
        bw = self.bandwidth
        now = self._clock()
        behind = {s: bw.backlog(s) for s, cap in caps.items() if cap < math.inf}
        candidates = [s for s, late in behind.items() if late < HORIZON]

        def order(s: str) -> tuple:
            in_hand = max(0.0, bw.working(s) - now)
            return (round(in_hand, 1), bw.used(s) / caps[s], s)

        ranked = sorted(candidates, key=order)
        for source in ranked:
            seconds = bw.claim(source, HORIZON - behind[source])
            if seconds > 0:
                return source, seconds * caps[source]
        return (ranked[0], 1.0) if ranked else (None, 0.0)

    def _soonest(self, held: List[Delivery]) -> float:
        """Seconds until a held source may go again (inf with nothing held)."""
        waits = [
            self.bandwidth.backlog(s) - HORIZON if s is not None else 0.0
            for s in self._sources(held)
        ]
        return max(0.0, min(waits)) if waits else math.inf
