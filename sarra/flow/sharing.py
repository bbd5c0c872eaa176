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

**Among sources (dd_sara).**  Bytes are paced per source (its ``source_bandwidth``
quota, and its fair share of ``bandwidth``: ``sarra.transfer.bucket``), but pacing
alone cannot make the shares hold: one queue delivers the sources' messages in the
order they were posted, so while an instance waits on a source that is over its quota,
the others' files wait behind it in the queue.  So messages of a source that is more
than ``HORIZON`` seconds behind its rate are *held back*: kept unacknowledged (the
broker still owns them; a crash or a stop hands them back) while the other sources'
messages go ahead, and handed to the flow once the source has caught up.  Each gather
admits at most ``HORIZON`` seconds of each source's rate (by the sizes the notices
announce).  What can be held is bounded by the queue's ``prefetch``: a switch where a
source often posts far more than its quota needs a larger one (see dd_sara(8)).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, List, Optional

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
        ahead: Dict[str, float] = {}
        held, self.held = self._current(self.held), []
        out = self._admit(held, ahead, max_count)
        if len(out) < max_count:
            wait = 0.0 if out else min(timeout, self._soonest())
            out += self._admit(self.inner.gather(max_count - len(out), wait), ahead, max_count)
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
    def _current(self, held: List[Delivery]) -> List[Delivery]:
        """Held deliveries still acknowledgeable: after a reconnect the broker hands
        the old ones out again, so those are forgotten here."""
        generation = getattr(self.inner.broker, "generation", None)
        return [
            d
            for d in held
            if d.received is None or generation is None or d.received.generation == generation
        ]

    def _admit(self, batch: List[Delivery], ahead: Dict[str, float], room: int) -> List[Delivery]:
        """The deliveries of ``batch`` whose source may go now (at most ``room``); the
        others join :attr:`held`.  ``ahead``: seconds of each source's rate admitted so
        far in this gather, plus how far behind it already was."""
        out: List[Delivery] = []
        for d in batch:
            source = source_of(d, self.from_exchange)
            if len(out) >= room or (source is not None and not self._may_go(source, d, ahead)):
                self.held.append(d)
            else:
                out.append(d)
        return out

    def _may_go(self, source: str, d: Delivery, ahead: Dict[str, float]) -> bool:
        rate = self.bandwidth.source_rate(source)
        if rate <= 0:
            return True
        if source not in ahead:
            ahead[source] = self.bandwidth.backlog(source)
        if ahead[source] >= HORIZON:
            return False
        ahead[source] += announced_bytes(d) / rate
        return True

    def _soonest(self) -> float:
        """Seconds until the first held source may go again (inf with nothing held)."""
        waits = [
            self.bandwidth.backlog(s) - HORIZON
            for s in {source_of(d, self.from_exchange) for d in self.held}
            if s is not None
        ]
        return max(0.0, min(waits)) if waits else float("inf")
