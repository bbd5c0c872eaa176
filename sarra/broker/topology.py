"""What a ``Broker`` declared, and the declaring half of the Broker itself.

A reconnect loses every consumer, and a queue deleted under a consumer (by an
administrator, or when it expired) cancels that consumer: either way a daemon must not
go deaf while it looks alive.  ``Topology`` remembers, in order, every exchange, queue,
binding and consumer the roles asked for, so that they are declared again on each new
connection (``ops``) and, for one cancelled consumer, its queue is declared again with
its bindings and consumed again (``recovery_ops``).

``Declaring`` is the base class of ``sarra.broker.connection.Broker`` that does it:
``declare_exchange``, ``declare_queue``, ``bind``, ``delete_queue``, ``consume``.  Split
from the connection (connecting, consuming, publishing) for size, along that line.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Optional

from sarra.broker.urls import concerns_queue
from sarra.core.errors import AccessRefused, BrokerError, ConnectionLost

log = logging.getLogger(__name__)

__all__ = ["Declaring", "Topology"]

#: After a failed recovery of a cancelled consumer (e.g. its exchange is gone too).
RECOVERY_PAUSE = 5.0


class Topology:
    """The declares, binds and consumes a Broker was asked for (``("declare_queue",
    name, ...)``, ``("bind", queue, exchange, key)``, ``("consume", queue)``, ...), and the
    consumers of the live consuming channel."""

    def __init__(self) -> None:
        self._ops: list[tuple] = []
        #: consumer tag -> queue, of the live consuming channel
        self.consumers: dict[str, str] = {}
        #: queues whose consumer the broker cancelled (queue deleted), to declare again
        self.cancelled: list[str] = []
        self._next_recovery = 0.0

    def remember(self, op: tuple) -> None:
        if op not in self._ops:
            self._ops.append(op)

    def knows(self, op: tuple) -> bool:
        return op in self._ops

    def forget_queue(self, queue: str) -> None:
        """Forget every declare, bind and consume of ``queue`` (it was deleted)."""
        self._ops = [op for op in self._ops if not concerns_queue(op, queue)]

    def ops(self) -> list[tuple]:
        """Everything to declare again on a new connection, in the order asked for."""
        return list(self._ops)

    def new_channel(self) -> None:
        """A new consuming channel: no consumer on it yet, none cancelled."""
        self.consumers.clear()
        self.cancelled.clear()

    def on_cancel(self, *args: Any) -> None:
        """pika's callback: the broker cancelled a consumer (its queue was deleted)."""
        method = getattr(args[-1], "method", None)
        queue = self.consumers.pop(str(getattr(method, "consumer_tag", "")), None)
        if queue is not None and queue not in self.cancelled:
            self.cancelled.append(queue)

    def due(self) -> Optional[str]:
        """The next cancelled queue to recover now, if any (none during a pause)."""
        if not self.cancelled or time.monotonic() < self._next_recovery:
            return None
        return self.cancelled[0]

    def recovery_ops(self, queue: str) -> list[tuple]:
        """What recovers ``queue``: the exchanges, then its declare, binds and consume."""
        log.warning(
            "the broker cancelled the consumer of queue %r (queue deleted?): "
            "declaring it again with its bindings",
            queue,
        )
        return [op for op in self._ops if op[0] == "declare_exchange" or concerns_queue(op, queue)]

    def recovered(self, queue: str) -> None:
        self.cancelled.remove(queue)

    def pause(self, queue: str, why: Exception) -> None:
        """Recovering ``queue`` failed for now (e.g. its exchange is gone too)."""
        log.warning("cannot recover queue %r yet: %s", queue, why)
        self._next_recovery = time.monotonic() + RECOVERY_PAUSE


class Declaring:
    """The declaring half of ``sarra.broker.connection.Broker`` (its base class): declare,
    bind, delete and consume, each remembered in a :class:`Topology` and replayed on the
    next connection; a queue deleted under its consumer recovered in ``get``.

    The Broker provides the connection: ``_ensure`` (connect or raise the loss),
    ``_run_admin`` (run on the admin channel, pika's errors mapped) and ``_do_consume``.
    """

    _topology: Topology

    def _ensure(self) -> None:
        raise NotImplementedError

    def _run_admin(self, what: str, fn: Callable[[Any], Any]) -> Any:
        raise NotImplementedError

    def _do_consume(self, queue: str) -> None:
        raise NotImplementedError

    def _replay(self, op: tuple) -> None:
        kind, *args = op
        getattr(self, f"_do_{kind}")(*args)

    def _replay_topology(self) -> None:
        for op in self._topology.ops():
            self._replay(op)

    def declare_exchange(self, name: str, passive: bool = False) -> bool:
        """Declare a durable topic exchange; False (logged) if the broker refuses it.

        Raises:
            ConnectionLost: the connection dropped (now or before this call).
        """
        self._ensure()
        ok = self._do_declare_exchange(name, passive)
        if ok:
            self._topology.remember(("declare_exchange", name, passive))
        return ok

    def _do_declare_exchange(self, name: str, passive: bool) -> bool:
        try:
            self._run_admin(
                f"declare of exchange {name!r}",
                lambda ch: ch.exchange_declare(name, "topic", passive=passive, durable=True),
            )
        except ConnectionLost:
            raise
        except BrokerError as e:
            # a passive declare is a question ("does it exist?"): its "no" is not news
            (log.debug if passive else log.warning)("%s", e)
            return False
        return True

    def declare_queue(
        self,
        name: str,
        durable: bool = True,
        expire_s: float | None = None,
        message_ttl_s: float | None = None,
        passive: bool = False,
    ) -> int:
        """Declare a queue; returns the number of messages ready in it.

        Raises:
            AccessRefused: no configure permission on the queue.
            BrokerError: refused otherwise (e.g. passive and missing, or other arguments).
            ConnectionLost: the connection dropped.
        """
        self._ensure()
        count = self._do_declare_queue(name, durable, expire_s, message_ttl_s, passive)
        self._topology.remember(("declare_queue", name, durable, expire_s, message_ttl_s, passive))
        return count

    def _do_declare_queue(
        self, name: str, durable: bool, expire_s: Any, message_ttl_s: Any, passive: bool
    ) -> int:
        args = {}
        if expire_s:
            args["x-expires"] = int(expire_s * 1000)
        if message_ttl_s:
            args["x-message-ttl"] = int(message_ttl_s * 1000)

        def declare(ch: Any) -> int:
            ok = ch.queue_declare(
                name, passive=passive, durable=durable, auto_delete=False, arguments=args or None
            )
            return int(ok.method.message_count)

        return self._run_admin(f"declare of queue {name!r}", declare)

    def consumers(self, queue: str) -> int:
        """The number of consumers of ``queue`` now (a passive declare: nothing changes);
        every instance of a config, on every host, is one.

        Raises:
            BrokerError: the queue is missing or refused.  ConnectionLost: as above.
        """
        self._ensure()
        return self._run_admin(
            f"passive declare of queue {queue!r}",
            lambda ch: int(ch.queue_declare(queue, passive=True).method.consumer_count),
        )

    def bind(self, queue: str, exchange: str, routing_key: str) -> None:
        """Bind ``queue`` to ``exchange`` with ``routing_key``.

        Raises:
            AccessRefused, BrokerError, ConnectionLost: as for ``declare_queue``.
        """
        self._ensure()
        self._do_bind(queue, exchange, routing_key)
        self._topology.remember(("bind", queue, exchange, routing_key))

    def _do_bind(self, queue: str, exchange: str, routing_key: str) -> None:
        self._run_admin(
            f"bind of queue {queue!r} to exchange {exchange!r} with {routing_key!r}",
            lambda ch: ch.queue_bind(queue, exchange, routing_key),
        )

    def delete_queue(self, name: str) -> None:
        """Delete a queue and forget every declare/bind/consume of it.

        Raises:
            AccessRefused, BrokerError, ConnectionLost: as for ``declare_queue``.
        """
        self._ensure()
        self._topology.forget_queue(name)
        self._run_admin(f"delete of queue {name!r}", lambda ch: ch.queue_delete(name))

    def consume(self, queue: str) -> None:
        """Start consuming ``queue`` with manual acks; messages then come from ``get``.

        Raises:
            AccessRefused, BrokerError, ConnectionLost: as for ``declare_queue``.
        """
        already = self._topology.knows(("consume", queue))
        self._ensure()
        if not already:  # else the consumer exists, or the reconnect above recreated it
            self._do_consume(queue)
            self._topology.remember(("consume", queue))

    def _recover_cancelled(self) -> None:
        """Declare again, bind again and consume again each queue whose consumer the
        broker cancelled, from the remembered topology (what the role declared).

        Raises:
            AccessRefused: the queue may not be declared again (no configure permission).
            ConnectionLost: the connection dropped.
        """
        while True:
            queue = self._topology.due()
            if queue is None:
                return
            try:
                for op in self._topology.recovery_ops(queue):
                    self._replay(op)
            except (AccessRefused, ConnectionLost):
                raise
            except BrokerError as e:  # e.g. its exchange is gone too: try again later
                self._topology.pause(queue, e)
                return
            self._topology.recovered(queue)
