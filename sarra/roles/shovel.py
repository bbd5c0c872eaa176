"""dd_shovel: move notices between exchanges or brokers, no download.

Plain shovel: consume ``exchange`` on ``broker``, keep what the accept/reject masks
select, publish it unchanged (confirmed) on ``post_exchange`` of ``post_broker``.

Report router (``report_router on``, spec 9.1): consume ``v02.report.#`` from every
declared user's ``xs_<user>`` and from ``xreport``; ``sarra.core.routing.report_target``
decides each hop: a user's own reports into ``xreport``; reports on ``xreport`` into
``xr_<source>`` when the source is declared here and the data entered here, otherwise
to ``xreport`` on the broker named by ``report_route <from_cluster> <url>`` (or
``report_route * <url>``), one switch nearer to the source.  Everything else is
rejected with one log line, so reports never reach another user's ``xr_`` exchange.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, Callable, Dict, List, Optional, Sequence

from sarra.config.loader import Options
from sarra.core import message, routing
from sarra.core.delivery import Delivery
from sarra.core.errors import ConfigError
from sarra.flow import consumer
from sarra.flow.context import Context
from sarra.flow.engine import BrokerSource, Flow
from sarra.flow.sinks import NoticePublisher

log = logging.getLogger(__name__)

PROGRAM = "dd_shovel"
DEFAULTS: dict = {"report_back": False}


def queue(ctx: Context) -> str:
    return consumer.queue_name(ctx.options, PROGRAM, ctx.state_dir, random_suffix=False)


def consumed(o: Options) -> List[str]:
    """Exchanges the shovel reads.

    Raises:
        ConfigError: a plain shovel without ``exchange``.
    """
    if o.report_router:
        users = [n for kind, n in o.declare if kind in ("source", "subscriber")]
        return [f"xs_{u}" for u in users] + [routing.REPORT_EXCHANGE]
    if not o.exchange:
        raise ConfigError("dd_shovel: set exchange (or report_router on)")
    return [o.exchange]


class ReportGate:
    """Select step of the report router: remembers each accepted report's next hop."""

    def __init__(self, o: Options, sw: routing.Switch) -> None:
        self.sw = sw
        self.masks = consumer.Selector(o)
        self.targets: Dict[int, routing.Target] = {}

    def __call__(self, d: Delivery) -> bool:
        if d.received is None:
            return False
        try:
            target = routing.report_target(d.notice, d.received.exchange, self.sw)
        except routing.Refused as e:
            d.reject(str(e))
            return False
        if not self.masks(d):
            return False
        self.targets[id(d)] = target
        return True


class RoutedPublisher:
    """Publishes each delivery to its target (exchange, broker); brokers opened lazily."""

    def __init__(self, local: Any, gate: ReportGate, connect: Callable[[str], Any]) -> None:
        self.local = local
        self.gate = gate
        self.connect = connect
        self.remote: Dict[str, Any] = {}

    def _broker(self, url: Optional[str]) -> Any:
        if url is None:
            return self.local
        if url not in self.remote:
            b = self.connect(url)
            b.declare_exchange(routing.REPORT_EXCHANGE)
            self.remote[url] = b
        return self.remote[url]

    def publish(self, deliveries: Sequence[Delivery]) -> None:
        groups: Dict[Optional[str], List[Delivery]] = defaultdict(list)
        targets = {id(d): self.gate.targets.pop(id(d)) for d in deliveries}
        for d in deliveries:
            groups[targets[id(d)].broker].append(d)
        for url, ds in groups.items():
            for d in ds:
                t = targets[id(d)]
                log.info(
                    "report %s -> %s%s", d.describe(), t.exchange, " (next switch)" * bool(url)
                )
            exchange = lambda d: targets[id(d)].exchange  # noqa: E731
            NoticePublisher(self._broker(url), exchange, formats=None).publish(ds)


def binding_keys(o: Options) -> List[str]:
    """A report router reads ``v02.report`` and ``v03.report`` whatever ``topic_prefix``
    says (sarra's v03 reports; sr3's own go to ``xr_<user>``, not through the router)."""
    prefix = "v02.report,v03.report" if o.report_router else o.topic_prefix
    return consumer.topic_keys(prefix, o.subtopic)


def build(ctx: Context, broker: Any, post_broker: Any) -> Flow:
    o = ctx.options
    ctx.reset_queue(broker, queue(ctx))
    keys = binding_keys(o)
    consumer.setup_queue(broker, o, queue(ctx), consumed(o), keys, exchange_mode=consumer.DECLARE)
    publisher: Any
    if o.report_router:
        sw = routing.Switch.from_options(o, ctx.host(o.broker))
        for name in [routing.REPORT_EXCHANGE] + [f"xr_{s}" for s in sw.sources]:
            post_broker.declare_exchange(name)
        select: Any = ReportGate(o, sw)
        publisher = RoutedPublisher(post_broker, select, lambda u: ctx.broker(u, "report_route"))
    else:
        if not o.post_exchange:
            raise ConfigError("dd_shovel: set post_exchange")
        post_broker.declare_exchange(o.post_exchange)
        select = consumer.Selector(o)
        # as received unless post_format (or a v03 post_topic_prefix) says otherwise
        named = o.post_format or str(o.post_topic_prefix or "").startswith("v03")
        formats = message.post_formats(o.post_format, o.post_topic_prefix) if named else None
        publisher = NoticePublisher(post_broker, o.post_exchange, formats=formats)
    return Flow(
        source=BrokerSource(broker),
        select=select,
        work=None,
        publisher=publisher,
        hooks=ctx.hooks(),
        retry=ctx.retry_queue(),  # an unconfirmed copy is retried, never dropped
        batch=o.batch,
        housekeeping=o.housekeeping,
        stop=ctx.stop,
    )


def run(ctx: Context) -> int:
    broker, post_broker = ctx.brokers()
    return ctx.run_flow(build(ctx, broker, post_broker))


def declare(ctx: Context) -> None:
    o = ctx.options
    broker, _ = ctx.brokers()
    keys = binding_keys(o)
    consumer.setup_queue(
        broker, o, queue(ctx), consumed(o), keys, exchange_mode=consumer.DECLARE, consume=False
    )


def cleanup(ctx: Context) -> None:
    ctx.forget_queue(queue(ctx))
