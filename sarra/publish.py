"""Sinks that publish what a batch produced: downstream posts and report messages.

Both encode with ``sarra.message`` and publish through the broker adapter in one
confirmed batch (``publish_batch``): no round trip per message.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, Callable, List, Sequence, Tuple, Union

from sarra import message
from sarra.delivery import Delivery
from sarra.errors import MessageError

log = logging.getLogger(__name__)

Exchange = Union[str, Callable[[Delivery], str]]


def _outgoing(exchange: str, encoded: message.Encoded) -> Any:
    from sarra.broker import Outgoing  # the adapter stays the only pika importer

    return Outgoing(
        exchange=exchange, routing_key=encoded.topic, headers=encoded.headers, body=encoded.body
    )


class NoticePublisher:
    """Publishes each OK delivery's ``post_notice``; unconfirmed ones become FAILED."""

    def __init__(self, broker: Any, exchange: Exchange) -> None:
        self.broker = broker
        self.exchange = exchange

    def _exchange_for(self, d: Delivery) -> str:
        return self.exchange(d) if callable(self.exchange) else self.exchange

    def publish(self, deliveries: Sequence[Delivery]) -> None:
        pending: List[Tuple[Any, Delivery]] = []
        for d in deliveries:
            assert d.post_notice is not None
            try:
                enc = message.encode(d.post_notice)
            except MessageError as e:
                d.fail(f"cannot post {d.describe()}: {e}", code=417, permanent=True)
                continue
            pending.append((_outgoing(self._exchange_for(d), enc), d))
        if not pending:
            return
        failed = {id(o) for o in self.broker.publish_batch([o for o, _ in pending])}
        for out, d in pending:
            if id(out) in failed:
                d.fail(f"post of {d.describe()} not confirmed by the broker", code=503)


class Reporter:
    """Publishes one report message per delivery that has a ``report`` code.

    A report that cannot be published is logged; it never changes the outcome of the
    delivery it describes.
    """

    def __init__(self, broker: Any, exchange: str, user: str, host: str = "") -> None:
        self.broker = broker
        self.exchange = exchange
        self.user = user
        self.host = host or socket.getfqdn()

    def publish(self, deliveries: Sequence[Delivery]) -> None:
        outs = []
        for d in deliveries:
            if not d.report or not d.report[0]:
                continue
            code, text = d.report
            try:
                rep = message.make_report(d.notice, code, text, self.host, self.user, d.elapsed)
                outs.append(_outgoing(self.exchange, message.encode(rep)))
            except MessageError as e:
                log.warning("cannot report on %s: %s", d.describe(), e)
        if outs:
            for out in self.broker.publish_batch(outs):
                log.warning("report %s not confirmed by the broker", out.routing_key)
