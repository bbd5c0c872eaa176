"""Publishing with publisher confirms (pika), and their bookkeeping.

Owns ``Outgoing`` (re-exported by ``sarra.broker.connection``), ``ConfirmTracker`` and
the two publishers that :func:`publisher` chooses between.  Only
``sarra.broker.connection`` uses this module; it is split from it for size.  Callers use
``Broker.publish_batch``.

Why not just ``BlockingChannel.confirm_delivery``: it waits one round trip per message.
``BatchPublisher`` instead puts the publishing channel's underlying asynchronous channel
(``sarra.broker.pika_seam.async_channel``: pika's SelectConnection layer that
BlockingConnection is built on) in confirm mode with an ack/nack callback, publishes the
whole batch (its frames corked by the seam), then drives ``process_data_events`` until
every confirm is in.  The callback wakes the wait with ``call_later(0, ...)``: a ready
timer ends ``process_data_events`` at once.  Where the seam says no (a pika version the
trick was not verified on, or ``SARRA_PUBLIC_APIS=1``), ``PublicPublisher`` does the same
through ``BlockingChannel.confirm_delivery``, a message at a time.

``ConfirmTracker`` (no pika): AMQP numbers the publishes on a confirm channel 1, 2, 3,
... from ``Confirm.Select`` on, so a tracker lives exactly as long as its channel.  A
``Basic.Return`` carries no sequence number; RabbitMQ sends it before the ack of the same
message, so the tracker marks the oldest still pending message with the same exchange,
routing key and body.  Identical messages are interchangeable, so any one will do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Sequence, TypeVar

import pika
import pika.exceptions as pe

from sarra.broker import pika_seam
from sarra.core.errors import AccessRefused

log = logging.getLogger(__name__)

#: Messages handed to the socket at once; between slices, confirms are read.
_SLICE = 200


@dataclass(frozen=True)
class Outgoing:
    """One message to publish (persistent by default, with confirms)."""

    exchange: str
    routing_key: str
    headers: dict = field(hash=False)
    body: bytes
    content_type: str = "text/plain"
    persistent: bool = True
    expiration_ms: int | None = None
    content_encoding: str | None = "utf-8"
    #: A notice nobody is bound to receive is normal in a pub/sub pump (no subscriber
    #: yet), so notices go out non-mandatory; set True where "no route" is a failure.
    mandatory: bool = False
    #: the caller's own reference (e.g. the delivery it announces), never sent
    ref: Any = field(default=None, compare=False, repr=False)


T = TypeVar("T")


class ConfirmTracker(Generic[T]):
    """Pending publishes of one confirm-mode channel, keyed by sequence number."""

    def __init__(self) -> None:
        self._next_seq = 1
        self._pending: dict[int, tuple[T, tuple[str, str, bytes]]] = {}
        self._returned: set[int] = set()
        self._failed: list[T] = []

    @property
    def outstanding(self) -> int:
        """Number of published messages not yet acked or nacked."""
        return len(self._pending)

    def sent(self, msg: T, exchange: str, routing_key: str, body: bytes) -> int:
        """Record one basic_publish; returns its sequence number."""
        seq = self._next_seq
        self._next_seq += 1
        self._pending[seq] = (msg, (exchange, routing_key, body))
        return seq

    def returned(self, exchange: str, routing_key: str, body: bytes) -> bool:
        """Record a Basic.Return; False if no pending message matches it."""
        key = (exchange, routing_key, body)
        for seq in sorted(self._pending):
            if seq not in self._returned and self._pending[seq][1] == key:
                self._returned.add(seq)
                return True
        return False

    def confirmed(self, tag: int, multiple: bool, ack: bool) -> None:
        """Record a Basic.Ack (ack=True) or Basic.Nack for ``tag`` (and below if multiple).

        A nacked message, or an acked one that was returned as unroutable, counts as failed.
        Tags that are not pending (already settled, or from before) are ignored.
        """
        seqs = [s for s in self._pending if s <= tag] if multiple else [tag]
        for seq in sorted(seqs):
            entry = self._pending.pop(seq, None)
            if entry is None:
                continue
            if not ack or seq in self._returned:
                self._failed.append(entry[0])
            self._returned.discard(seq)

    def take_failed(self) -> list[T]:
        """Return and forget the messages that failed (nacked or returned) so far."""
        failed, self._failed = self._failed, []
        return failed

    def abandon(self) -> list[T]:
        """Give up on every pending message: return them (in publish order) and forget them."""
        left = [self._pending[s][0] for s in sorted(self._pending)]
        self._pending.clear()
        self._returned.clear()
        return left


class _Publisher:
    """The publishing channel of one BlockingConnection, in confirm mode: what both
    ways of publishing share (the bookkeeping, the wait, the outcome).

    Raises pika's connection/channel errors for ``sarra.broker.connection`` to map; raises
    ``AccessRefused`` itself when the broker refuses a publish.
    """

    def __init__(self, conn: Any, where: str) -> None:
        self._conn = conn
        self._where = where
        self._ch: Any = None
        self._tracker: ConfirmTracker[Outgoing] = ConfirmTracker()
        self._closed_by: Any = None

    @property
    def is_open(self) -> bool:
        return bool(self._ch is not None and self._ch.is_open)

    def open(self) -> None:
        """Open a fresh channel in confirm mode (one round trip)."""
        raise NotImplementedError

    def send(self, msgs: Sequence[Outgoing]) -> None:
        """Publish ``msgs``; :meth:`wait` reads their confirms.

        Raises:
            pika.exceptions.AMQPError: the connection dropped.
        """
        raise NotImplementedError

    def publish_batch(self, msgs: Sequence[Outgoing], stop: Callable[[], bool]) -> list[Outgoing]:
        """Publish ``msgs``, wait for their confirms; return those not confirmed.

        Raises:
            AccessRefused: the broker refused the publish (write or topic permission).
            pika.exceptions.AMQPError: the connection dropped.
        """
        self.send(msgs)
        return self.wait(0, stop)

    def wait(self, max_outstanding: int, stop: Callable[[], bool]) -> list[Outgoing]:
        """Read confirms until at most ``max_outstanding`` publishes await theirs.

        Returns the messages that failed so far (nacked, returned); with
        ``max_outstanding`` 0, or once the channel is closed, also those left
        unconfirmed (stop requested, channel lost).

        Raises:
            AccessRefused: the broker refused a publish (write or topic permission);
                its ``refused`` lists every publish that was then pending on the channel
                (none of them confirmed).
            pika.exceptions.AMQPError: the connection dropped.
        """
        try:
            while (
                self._ch is not None
                and self._tracker.outstanding > max_outstanding
                and self._ch.is_open
                and not stop()
            ):
                self._conn.process_data_events(time_limit=1.0)
        except pe.ChannelClosedByBroker:
            pass  # handled below, from self._closed_by
        if self._ch is None:
            return self._tracker.take_failed() + self._tracker.abandon()
        if max_outstanding and self._ch.is_open:
            return self._tracker.take_failed()
        return self._outcome()

    def abandon(self) -> list[Outgoing]:
        """Forget every publish still awaiting its confirm (the connection is gone)."""
        return self._tracker.take_failed() + self._tracker.abandon()

    def _outcome(self) -> list[Outgoing]:
        failed = self._tracker.take_failed()
        left = self._tracker.abandon()
        if not self._ch.is_open:
            self._ch = None
            reason = self._closed_by
            text = getattr(reason, "reply_text", str(reason))
            if getattr(reason, "reply_code", None) == 403:
                # the publishes that went down with the channel: the caller names them
                raise AccessRefused(f"publish refused by {self._where}: {text}", failed + left)
            log.warning("publishing channel closed by %s: %s", self._where, text)
        elif left:
            log.warning("%d published messages left unconfirmed (stop requested)", len(left))
        return failed + left

    def _on_close(self, _ch: Any, reason: Any) -> None:
        self._closed_by = reason

    def _on_return(self, _ch: Any, method: Any, _props: Any, body: bytes) -> None:
        if not self._tracker.returned(method.exchange, method.routing_key, body):
            log.debug("Basic.Return for an unknown message to %s", method.exchange)
        log.warning(
            "broker returned a message to exchange %r key %r: %s %s",
            method.exchange, method.routing_key, method.reply_code, method.reply_text,
        )  # fmt: skip


class BatchPublisher(_Publisher):
    """Publishes a whole batch, then reads the confirms as they come, on the
    asynchronous channel under the BlockingChannel (``pika_seam.async_channel``: see the
    module docstring).  :func:`publisher` builds one when the seam allows it."""

    def open(self) -> None:
        self._tracker = ConfirmTracker()
        self._closed_by = None
        ch = self._conn.channel()
        impl = pika_seam.async_channel(ch)
        if impl is None:  # pika_seam checked the version; this pika lacks the attribute
            raise pe.ChannelWrongStateError("no asynchronous channel under the channel")
        selected: list[bool] = []
        impl.add_on_close_callback(self._on_close)
        impl.add_on_return_callback(self._on_return)

        def on_selected(_frame: Any) -> None:
            selected.append(True)
            self._conn.call_later(0, _wake)  # ends process_data_events at once

        impl.confirm_delivery(ack_nack_callback=self._on_confirm, callback=on_selected)
        while not selected:
            if not ch.is_open:
                raise pe.ChannelWrongStateError(f"publishing channel closed: {self._closed_by}")
            self._conn.process_data_events(time_limit=0.1)
        self._ch = ch
        self._async_ch = impl

    def _on_confirm(self, frame: Any) -> None:
        m = frame.method
        self._tracker.confirmed(m.delivery_tag, bool(m.multiple), m.NAME == "Basic.Ack")
        if not self._tracker.outstanding:
            self._conn.call_later(0, _wake)  # ends the process_data_events of the wait

    def send(self, msgs: Sequence[Outgoing]) -> None:
        if not self.is_open:
            self.open()
        impl = self._async_ch
        try:
            for start in range(0, len(msgs), _SLICE):
                with pika_seam.corked(impl.connection):
                    for msg in msgs[start : start + _SLICE]:
                        impl.basic_publish(
                            msg.exchange,
                            msg.routing_key,
                            msg.body,
                            _properties(msg),
                            mandatory=msg.mandatory,
                        )
                        self._tracker.sent(msg, msg.exchange, msg.routing_key, msg.body)
                # sends the slice; confirms of earlier slices come in meanwhile
                self._conn.process_data_events(time_limit=0)
        except pe.ChannelClosedByBroker:
            pass  # reported by wait(), from self._closed_by


class PublicPublisher(_Publisher):
    """pika's public API: ``BlockingChannel.confirm_delivery``, then each
    ``basic_publish`` waits for its own confirm (a round trip per message).

    The outcomes of :class:`BatchPublisher`, message by message: a nack or a return
    fails that message; a channel closed by the broker leaves that message and the rest
    of the call unconfirmed (refused, for a 403).
    """

    def open(self) -> None:
        self._tracker = ConfirmTracker()
        self._closed_by = None
        ch = self._conn.channel()
        ch.confirm_delivery()
        self._ch = ch

    def send(self, msgs: Sequence[Outgoing]) -> None:
        if not self.is_open:
            self.open()
        for i, msg in enumerate(msgs):
            seq = self._tracker.sent(msg, msg.exchange, msg.routing_key, msg.body)
            try:
                self._ch.basic_publish(
                    msg.exchange, msg.routing_key, msg.body, _properties(msg), msg.mandatory
                )
            except pe.UnroutableError as e:
                for returned in e.messages:
                    self._on_return(None, returned.method, returned.properties, returned.body)
                self._tracker.confirmed(seq, False, True)
            except pe.NackError:
                self._tracker.confirmed(seq, False, False)
            except pe.ChannelClosedByBroker as e:
                self._closed_by = e
                for rest in msgs[i + 1 :]:  # not sent: unconfirmed, as on the batch path
                    self._tracker.sent(rest, rest.exchange, rest.routing_key, rest.body)
                return
            else:
                self._tracker.confirmed(seq, False, True)


def publisher(conn: Any, where: str, batched: bool) -> _Publisher:
    """A :class:`BatchPublisher` when ``batched`` (``pika_seam.async_channel`` found the
    asynchronous channel under the connection's channels), else a :class:`PublicPublisher`."""
    return BatchPublisher(conn, where) if batched else PublicPublisher(conn, where)


def _wake() -> None:
    """Timer callback whose only effect is to end ``process_data_events``."""


def _properties(msg: Outgoing) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=msg.content_type,
        content_encoding=msg.content_encoding,
        delivery_mode=2 if msg.persistent else 1,
        headers={str(k): str(v) for k, v in msg.headers.items()},
        expiration=str(msg.expiration_ms) if msg.expiration_ms is not None else None,
    )
