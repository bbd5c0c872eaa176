"""Sinks that publish what a batch produced: downstream posts and report messages.

Both encode with ``sarra.core.message`` and publish through the broker adapter in one
confirmed batch (``publish_batch``): no round trip per message.  Posts go out in each
format the producer is configured for (``message.post_formats``: v02, v03 or both), or,
for a shovel with no ``post_format``, in the format each message came in; a report goes
out in the format of the post it answers.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

from sarra.core import message
from sarra.core.delivery import Delivery
from sarra.core.errors import AccessRefused, ConnectionLost, MessageError

log = logging.getLogger(__name__)

Exchange = Union[str, Callable[[Delivery], str]]


def _outgoing(exchange: str, encoded: message.Encoded, ref: Any = None) -> Any:
    from sarra.broker.connection import Outgoing  # the adapter stays the only pika importer

    return Outgoing(
        exchange=exchange,
        routing_key=encoded.topic,
        headers=encoded.headers,
        body=encoded.body,
        content_type=encoded.content_type,  # sr3 tells v03 from v02 by it
        ref=ref,
    )


Formats = Optional[Sequence[Tuple[str, str]]]


def received_format(d: Delivery) -> str:
    """The format ``d``'s message came in (v02 for a local source)."""
    if d.received is not None:
        return message.format_of(bytes(d.received.body))
    if d.retry is not None:
        return message.format_of(str(d.retry.body))
    return "v02"


def encode_all(notice: message.Notice, formats: Sequence[Tuple[str, str]]) -> List[Any]:
    """``notice`` encoded in each (format, topic prefix); v02 output leaves out what v02
    cannot carry (said once in the log).

    Raises:
        MessageError: one format cannot carry it: nothing of it is posted.
    """
    out = []
    for fmt, prefix in formats:
        n = notice.relayable() if fmt == "v02" else notice
        out.append(message.encode(n, fmt, topic_prefix=prefix))
    return out


class NoticePublisher:
    """Publishes each OK delivery's ``post_notice``; unconfirmed ones become FAILED.

    ``formats``: (format, topic prefix) pairs, each post published once per format;
    None: in the format its message came in, on its own topic (a shovel).

    ``window`` 0 (daemons): each batch waits for its confirms, so a delivery is settled
    (and its message acknowledged) only once its post is confirmed.  ``window`` N > 0
    (one-shot posting, nothing to acknowledge): a batch returns as soon as at most N
    posts await confirms, so the broker's disk writes overlap the reading of the next
    files; a post found unconfirmed later is handed to ``late(delivery, reason)``, and
    :meth:`finish` waits for the rest.
    """

    def __init__(
        self,
        broker: Any,
        exchange: Exchange,
        window: int = 0,
        late: Callable[[Delivery, str], None] | None = None,
        formats: Formats = (("v02", "v02.post"),),
    ) -> None:
        self.broker = broker
        self.exchange = exchange
        self.window = window
        self.late = late or (lambda d, reason: log.error("%s", reason))
        self.formats = formats

    def _exchange_for(self, d: Delivery) -> str:
        return self.exchange(d) if callable(self.exchange) else self.exchange

    def publish(self, deliveries: Sequence[Delivery]) -> None:
        pending: List[Tuple[Any, Delivery]] = []
        for d in deliveries:
            assert d.post_notice is not None
            formats = self.formats
            if formats is None:
                fmt = received_format(d)
                formats = [(fmt, message.prefix_for(fmt, d.post_notice.topic))]
            try:
                encoded = encode_all(d.post_notice, formats)
            except MessageError as e:
                d.fail(f"cannot post {d.describe()}: {e}", code=417, permanent=True)
                continue
            exchange = self._exchange_for(d)
            pending.extend((_outgoing(exchange, enc, d), d) for enc in encoded)
        if not pending:
            return
        if self.window:
            self._send([o for o, _ in pending])
            self._collect(self.window)
            return
        failed = {id(o) for o in self.broker.publish_batch([o for o, _ in pending])}
        for d in {id(d): d for out, d in pending if id(out) in failed}.values():
            d.fail(f"post of {d.describe()} not confirmed by the broker", code=503)

    def finish(self) -> None:
        """Wait for every confirm still due (``window`` mode)."""
        if self.window:
            self._collect(0)

    def _send(self, outs: List[Any]) -> None:
        try:
            self.broker.publish_nowait(outs)
        except ConnectionLost as e:
            self._lost(e)
            raise

    def _collect(self, window: int) -> None:
        try:
            failed = self.broker.confirmed(window)
        except ConnectionLost as e:
            self._lost(e)
            raise
        except AccessRefused as e:
            refused = e.refused
            if refused is None:  # not a publish (a login): nothing of ours to name
                raise
            # the broker closed the channel on a publish it refuses (no write or topic
            # permission on the exchange): every post then pending is not posted, and
            # each is named; the next batch opens a new channel and is judged alike
            for out in refused:
                if out.ref is not None:
                    self.late(out.ref, f"post of {out.ref.describe()} refused: {e}")
            return
        for out in failed:
            self.late(out.ref, f"post of {out.ref.describe()} not confirmed by the broker")

    def _lost(self, e: ConnectionLost) -> None:
        """Posts that were awaiting confirms went with the connection."""
        for out in e.unconfirmed:
            if out.ref is not None:
                self.late(out.ref, f"post of {out.ref.describe()} not confirmed (connection lost)")


class Reporter:
    """Publishes one report message per delivery that has a ``report`` code.

    A report that cannot be published is logged; it never changes the outcome of the
    delivery it describes, so a batch does not wait for its reports' confirms (with
    durable queues, the broker confirms only once they are on disk): they are read
    while the next batches are worked, at most ``window`` outstanding; :meth:`finish`
    waits for the rest.
    """

    def __init__(
        self, broker: Any, exchange: str, user: str, host: str = "", window: int = 1000
    ) -> None:
        self.broker = broker
        self.exchange = exchange
        self.user = user
        self.host = host or socket.getfqdn()
        self.window = window

    def publish(self, deliveries: Sequence[Delivery]) -> None:
        outs = []
        for d in deliveries:
            if not d.report or not d.report[0]:
                continue
            code, text = d.report
            try:
                rep = message.make_report(d.notice, code, text, self.host, self.user, d.elapsed)
                fmt = received_format(d)
                rep = rep if fmt == "v03" else rep.relayable()
                outs.append(_outgoing(self.exchange, message.encode(rep, fmt)))
            except MessageError as e:
                log.warning("cannot report on %s: %s", d.describe(), e)
        if outs:
            self._checked(lambda: self.broker.publish_nowait(outs) or [])
        self._checked(lambda: self.broker.confirmed(self.window))

    def finish(self) -> None:
        """Wait for the confirms of the reports still outstanding."""
        self._checked(lambda: self.broker.confirmed(0))

    def _checked(self, step: Callable[[], List[Any]]) -> None:
        try:
            failed = step()
        except ConnectionLost as e:
            lost = len(e.unconfirmed)
            if lost:
                log.warning("%d report(s) may be lost with the broker connection", lost)
            raise
        for out in failed:
            log.warning("report %s not confirmed by the broker", out.routing_key)
