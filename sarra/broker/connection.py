"""The AMQP connection of a ``Broker``: connecting, consuming, publishing.

Owns one ``pika.BlockingConnection`` per ``Broker`` with three channels: a consuming
channel (manual acks, ``basic_qos(prefetch)``), a publishing channel in confirm mode, and
a throwaway "admin" channel for declares, binds and deletes, so that a 403 on a declare
never kills the channels that carry messages.

Connection generations: each successful (re)connect increments ``generation``, and every
``Received`` carries the generation it came from.  Delivery tags are only valid on the
channel that delivered them, so ``ack``/``nack`` of a message from an older generation
is dropped (RabbitMQ redelivers it), never sent (that would be a channel error).

Reconnect: when the connection drops during ``get``/``ack``/``publish_batch``/
``keepalive``, the next of ``get``/``publish_batch``/``declare_*`` raises
``ConnectionLost`` once, so the caller knows the messages in hand are void; the call after
that reconnects (capped exponential backoff, one WARNING per failed attempt) and replays
the remembered topology: exchanges, queues, bindings and consumers.

Split out: declaring (``declare_*``, ``bind``, ``delete_queue``, ``consume``, remembered
and replayed) in ``sarra.broker.topology``, the Broker's base class ``Declaring``;
publisher confirms in ``sarra.broker.confirms``; URL parsing (vhost rule:
``amqp://h/name`` is vhost ``name``), TLS and backoff in ``sarra.broker.urls``; pika's
private API, for batched confirms and acks, behind ``sarra.broker.pika_seam``.

Errors raised: ``ConfigError`` (bad URL), ``AccessRefused`` (login, vhost or permission
refused; never retried), ``ConnectionLost``, ``BrokerError``.  No pika exception leaves
this module.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any, Callable, Sequence

import pika
import pika.exceptions as pe

from sarra.broker import pika_seam
from sarra.broker.confirms import Outgoing, publisher
from sarra.broker.topology import Declaring, Topology
from sarra.broker.urls import (
    Endpoint,
    Received,
    backoff_delays,
    certificate_refused,
    connection_parameters,
    is_current,
    parse_url,
)
from sarra.core.errors import AccessRefused, BrokerError, ConnectionLost
from sarra.core.redaction import redact_url

log = logging.getLogger(__name__)

__all__ = [
    "Broker",
    "Endpoint",
    "Outgoing",
    "Received",
    "backoff_delays",
    "is_current",
    "parse_url",
]

_AUTH_ERRORS = (
    pe.AuthenticationError,
    pe.ProbableAuthenticationError,
    pe.ProbableAccessDeniedError,
)
_LOSS_ERRORS = (pe.AMQPConnectionError, pe.AMQPChannelError, OSError)
_ACCESS_REFUSED = 403


class Broker(Declaring):
    """One AMQP connection: consume with manual acks, publish with batched confirms.

    Not thread-safe: use it from one thread (pika's BlockingConnection is not either).
    """

    def __init__(
        self,
        url: str,
        *,
        heartbeat: int = 60,
        prefetch: int = 25,
        name: str = "",
        tls_ca: str | None = None,
        tls_verify: bool = True,
        max_backoff: float = 60.0,
        stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self._endpoint = parse_url(url)
        self._safe_url = redact_url(url)
        self._params = connection_parameters(
            self._endpoint, heartbeat=heartbeat, name=name, tls_ca=tls_ca, tls_verify=tls_verify
        )
        self._prefetch = prefetch
        self._max_backoff = max_backoff
        self._stop = stop
        self._keepalive_every = min(1.0, heartbeat / 4) if heartbeat else 1.0
        self._last_keepalive = 0.0
        self._conn: Any = None
        self._consume_ch: Any = None
        #: what acks: the consuming channel, or the asynchronous one under it (pika_seam)
        self._acker: Any = None
        self._admin_ch: Any = None
        self._publisher: Any = None
        self._orphans: list[Outgoing] = []
        self._generation = 0
        self._pending_loss: BaseException | None = None
        self._buffer: deque[Received] = deque()
        self._topology = Topology()

    def __repr__(self) -> str:
        return f"<Broker {self._safe_url} generation={self._generation}>"

    @property
    def generation(self) -> int:
        """Increments on every successful (re)connect; 0 before the first."""
        return self._generation

    @property
    def is_connected(self) -> bool:
        """True while the connection and the consuming channel are open."""
        conn, ch = self._conn, self._consume_ch
        return bool(conn is not None and ch is not None and conn.is_open and ch.is_open)

    def connect(self) -> None:
        """Connect (if not connected), retrying with capped exponential backoff.

        Re-establishes every exchange, queue, binding and consumer declared before.

        Raises:
            AccessRefused: login, vhost or a queue declare/bind refused; never retried.
            ConnectionLost: ``stop()`` became true before a connection was made.
        """
        if self.is_connected:
            return
        self._drop_connection()
        for attempt, delay in enumerate(backoff_delays(self._max_backoff), 1):
            if self._stop():
                raise ConnectionLost(f"stop requested while connecting to {self._safe_url}")
            try:
                self._open()
                return
            except _AUTH_ERRORS as e:
                self._drop_connection()
                raise AccessRefused(
                    f"broker {self._safe_url} refused the login or the vhost "
                    f"{self._endpoint.vhost!r} (check user, password and permissions): {e}"
                ) from e
            except (*_LOSS_ERRORS, ConnectionLost) as e:
                self._drop_connection()
                if certificate_refused(e):
                    raise AccessRefused(
                        f"broker {self._safe_url}: TLS certificate verification failed "
                        f"(check broker_ca, or the host name in the URL): {e}"
                    ) from e
                log.warning(
                    "cannot connect to %s (attempt %d): %s; retrying in %.0f s",
                    self._safe_url, attempt, e or type(e).__name__, delay,
                )  # fmt: skip
            except BrokerError:  # replaying the topology was refused: a config problem
                self._drop_connection()
                raise
            self._sleep(delay)

    def _open(self) -> None:
        self._conn = pika.BlockingConnection(self._params)
        self._consume_ch = self._conn.channel()
        self._consume_ch.basic_qos(prefetch_count=self._prefetch)
        self._consume_ch.add_on_cancel_callback(self._topology.on_cancel)
        self._topology.new_channel()
        # on the asynchronous channel, an ack frame is queued, not flushed: the next
        # get/publish/close sends it with whatever else is pending (one flush per batch)
        impl = pika_seam.async_channel(self._consume_ch)
        self._acker = impl or self._consume_ch
        self._publisher = publisher(self._conn, self._safe_url, batched=impl is not None)
        self._publisher.open()
        self._orphans.clear()  # a new connection: losses before it were reported
        self._generation += 1
        self._pending_loss = None
        self._replay_topology()
        log.info("connected to %s (generation %d)", self._safe_url, self._generation)
        log.debug("%s", pika_seam.describe())

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stop() and time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def close(self) -> None:
        """Close the connection; unacked messages go back to their queue. Never raises."""
        self._drop_connection()
        self._pending_loss = None

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        self._consume_ch = self._acker = self._admin_ch = self._publisher = None
        self._buffer.clear()
        if conn is not None and conn.is_open:
            try:
                conn.close()
            except (pe.AMQPError, OSError) as e:
                log.debug("closing %s: %r", self._safe_url, e)

    def _lost(self, e: BaseException) -> ConnectionLost:
        """Forget the connection after ``e``; return the error for the caller to raise."""
        log.warning("connection to %s lost: %s", self._safe_url, e or type(e).__name__)
        if self._publisher is not None:  # for publish_nowait's caller to hear of
            self._orphans.extend(self._publisher.abandon())
        self._drop_connection()
        return ConnectionLost(f"connection to {self._safe_url} lost: {e!r}")

    def _ensure(self) -> None:
        if self._pending_loss is not None:
            e, self._pending_loss = self._pending_loss, None
            raise ConnectionLost(f"connection to {self._safe_url} lost: {e!r}") from e
        if not self.is_connected:
            if self._conn is not None:
                raise self._lost(ConnectionLost("consuming channel closed"))
            self.connect()

    def keepalive(self) -> None:
        """Let pika answer heartbeats; cheap, safe to call often (rate-limited). Never raises.

        A connection loss seen here is reported by the next ``get``/``publish_batch``.
        """
        now = time.monotonic()
        if self._conn is None or now - self._last_keepalive < self._keepalive_every:
            return
        self._last_keepalive = now
        try:
            self._conn.process_data_events(time_limit=0)
        except _LOSS_ERRORS as e:
            self._lost(e)
            self._pending_loss = e

    def flush(self) -> None:
        """Send queued frames (acks) now.  Never raises; a loss shows on the next call."""
        if self._conn is None:
            return
        try:
            self._conn.process_data_events(time_limit=0)
        except _LOSS_ERRORS as e:
            self._lost(e)
            self._pending_loss = e

    def _admin(self) -> Any:
        if self._admin_ch is None or not self._admin_ch.is_open:
            self._admin_ch = self._conn.channel()
        return self._admin_ch

    def _run_admin(self, what: str, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(admin_channel)``; map a broker refusal or a loss to sarra errors."""
        try:
            return fn(self._admin())
        except pe.ChannelClosedByBroker as e:
            if e.reply_code == _ACCESS_REFUSED:
                raise AccessRefused(f"{what} refused by {self._safe_url}: {e.reply_text}") from e
            raise BrokerError(f"{what} failed on {self._safe_url}: {e.reply_text}") from e
        except _LOSS_ERRORS as e:
            raise self._lost(e) from e

    def _do_consume(self, queue: str) -> None:
        generation = self._generation

        def on_message(_ch: Any, m: Any, props: Any, body: bytes) -> None:
            headers = dict(props.headers or {})
            self._buffer.append(
                Received(m.exchange, m.routing_key, headers, body, m.delivery_tag,
                         bool(m.redelivered), generation, props.content_type, props.expiration)
            )  # fmt: skip

        try:
            tag = self._consume_ch.basic_consume(queue, on_message, auto_ack=False)
            self._topology.consumers[str(tag)] = queue
        except pe.ChannelClosedByBroker as e:
            # The consuming channel is gone: start over on the next call.
            self._drop_connection()
            if e.reply_code == _ACCESS_REFUSED:
                raise AccessRefused(f"consume of {queue!r} refused: {e.reply_text}") from e
            raise BrokerError(f"consume of {queue!r} failed: {e.reply_text}") from e
        except _LOSS_ERRORS as e:
            raise self._lost(e) from e

    def get(self, max_count: int, timeout: float) -> list[Received]:
        """Up to ``max_count`` messages: waits up to ``timeout`` s for the first one, then
        returns what is immediately available.  Returns [] on timeout or when ``stop()``.
        A queue deleted under a consumer is declared again first (``_recover_cancelled``).

        Raises:
            ConnectionLost: the connection dropped; messages in hand are void.
            AccessRefused: while reconnecting, or declaring a deleted queue again.
        """
        self._ensure()
        if self._topology.cancelled:
            self._recover_cancelled()
        deadline = time.monotonic() + timeout
        try:
            self._conn.process_data_events(time_limit=0)
            while not self._buffer and not self._stop() and not self._topology.cancelled:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._conn.process_data_events(time_limit=min(remaining, 1.0))
            if 0 < len(self._buffer) < max_count:
                self._conn.process_data_events(time_limit=0)
        except _LOSS_ERRORS as e:
            raise self._lost(e) from e
        if not self.is_connected:
            raise self._lost(ConnectionLost("consuming channel closed"))
        self._last_keepalive = time.monotonic()
        return [self._buffer.popleft() for _ in range(min(max_count, len(self._buffer)))]

    def ack(self, r: Received) -> None:
        """Acknowledge ``r``; dropped (debug log) if it came from an older connection.

        Raises:
            ConnectionLost: the connection dropped while acking.
        """
        # queued, not flushed (see _open): a crash before the flush means a redelivery
        self._settle(r, "ack", lambda: self._acker.basic_ack(r.delivery_tag))

    def nack(self, r: Received, requeue: bool) -> None:
        """Reject ``r``: back to the queue if ``requeue``, else dropped (or dead-lettered).

        Raises:
            ConnectionLost: the connection dropped while nacking.
        """
        self._settle(
            r, "nack", lambda: self._consume_ch.basic_nack(r.delivery_tag, requeue=requeue)
        )

    def _settle(self, r: Received, what: str, fn: Callable[[], None]) -> None:
        if not is_current(r, self._generation, self.is_connected):
            log.debug(
                "not sending %s of tag %d from generation %d (now %d): broker will redeliver",
                what, r.delivery_tag, r.generation, self._generation,
            )  # fmt: skip
            return
        try:
            fn()
        except _LOSS_ERRORS as e:
            raise self._lost(e) from e

    def publish(self, msg: Outgoing) -> list[Outgoing]:
        """``publish_batch([msg])``: [] when confirmed, else ``[msg]``."""
        return self.publish_batch([msg])

    def publish_batch(self, msgs: Sequence[Outgoing]) -> list[Outgoing]:
        """Publish all of ``msgs``, then wait for their confirms (one wait per batch).

        Every message goes out persistent (unless ``persistent=False``), mandatory only
        when ``Outgoing.mandatory``.
        Returns the messages NOT confirmed: nacked, returned as unroutable, left
        unconfirmed when ``stop()`` became true, or lost with the publishing channel
        (e.g. exchange not found).  An empty list means all were confirmed.

        Raises:
            ConnectionLost: the connection dropped; republish the whole batch later.
            AccessRefused: the broker refused the publish (write or topic permission).
        """
        if not msgs:
            return []
        self._ensure()
        try:
            failed = self._publisher.publish_batch(msgs, self._stop)
        except _LOSS_ERRORS as e:
            lost = self._lost(e)
            self._orphans.clear()  # this batch: the caller republishes it
            raise lost from e
        self._last_keepalive = time.monotonic()
        return failed

    def publish_nowait(self, msgs: Sequence[Outgoing]) -> None:
        """Publish ``msgs`` without waiting for their confirms; :meth:`confirmed` reads
        them.  For one-shot posting: the broker's disk writes (persistent messages
        are confirmed once on disk) overlap the reading of the next files.

        Raises:
            ConnectionLost: the connection dropped (``e.unconfirmed``: every message
                published since the last complete :meth:`confirmed`).
            AccessRefused: the broker refused the publish.
        """
        if not msgs:
            return
        try:
            self._ensure()
            self._publisher.send(msgs)
        except _LOSS_ERRORS as e:
            raise self._lost_with_unconfirmed(e) from e
        except ConnectionLost as e:  # seen earlier (keepalive): publishes went with it
            e.unconfirmed = self._take_orphans()
            raise

    def confirmed(self, max_outstanding: int = 0) -> list[Outgoing]:
        """Wait until at most ``max_outstanding`` published messages await a confirm;
        return the ones that failed since the last call (with 0: also those left
        unconfirmed because a stop was requested).

        Raises:
            ConnectionLost: as :meth:`publish_nowait`.  AccessRefused: as ``publish_batch``.
        """
        if self._publisher is None:
            if self._orphans or self._pending_loss is not None:  # lost while idle
                self._pending_loss = None
                raise ConnectionLost(f"connection to {self._safe_url} lost", self._take_orphans())
            return []
        try:
            failed = self._publisher.wait(max_outstanding, self._stop)
        except _LOSS_ERRORS as e:
            raise self._lost_with_unconfirmed(e) from e
        self._last_keepalive = time.monotonic()
        return failed

    def _lost_with_unconfirmed(self, e: BaseException) -> ConnectionLost:
        lost = self._lost(e)  # first: it moves the abandoned publishes into the orphans
        lost.unconfirmed = self._take_orphans()
        return lost

    def _take_orphans(self) -> list[Outgoing]:
        """Publishes that were awaiting confirms when the connection was lost."""
        orphans, self._orphans = self._orphans, []
        return orphans
