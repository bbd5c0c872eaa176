"""Deliveries from a broker queue: the source of every broker-fed flow.

Split from ``sarra.flow.engine`` for size (``sarra.flow.engine`` re-exports ``BrokerSource``).
Undecodable messages are dropped here, with one line each, and never requeued: a
message that cannot even be decoded cannot poison the queue or the daemon.
"""

from __future__ import annotations

import logging
from typing import Any, List

from sarra.core import message
from sarra.core.delivery import Delivery
from sarra.core.errors import MessageError, escape

log = logging.getLogger("sarra.flow.engine")


class BrokerSource:
    """Deliveries from a broker queue.  Undecodable messages are dropped here.

    ``broker`` is a ``sarra.broker.connection.Broker`` (already consuming).
    """

    done = False

    def __init__(self, broker: Any, queue: str = "") -> None:
        self.broker = broker
        self.queue = queue

    def gather(self, max_count: int, timeout: float) -> List[Delivery]:
        out = []
        for r in self.broker.get(max_count, timeout):
            try:
                notice = message.decode(r.routing_key, r.headers, r.body)
            except message.IgnoredMessage as e:
                log.debug("ignoring %s: %s", escape(r.routing_key, 80), e)
                self.broker.ack(r)
                continue
            except MessageError as e:
                log.error(
                    "dropping undecodable message (topic %r): %s",
                    r.routing_key[:80],
                    escape(e, 300),
                )
                self.broker.nack(r, requeue=False)
                continue
            except Exception as e:  # noqa: BLE001 - a bug in decoding: never a crash loop
                log.error(
                    "dropping undecodable message (topic %r): unexpected %s",
                    r.routing_key[:80],
                    escape(repr(e), 300),
                    exc_info=e,
                )
                self.broker.nack(r, requeue=False)
                continue
            out.append(Delivery(notice, received=r))
        return out

    def settle(self, d: Delivery) -> None:
        if d.received is not None:
            self.broker.ack(d.received)

    def flush(self) -> None:
        """Send the batch's acks in one go."""
        self.broker.flush()

    def keepalive(self) -> None:
        """Let the broker connection answer heartbeats while the flow pauses."""
        self.broker.keepalive()

    def requeue(self, d: Delivery) -> None:
        if d.received is not None:
            self.broker.nack(d.received, requeue=True)
