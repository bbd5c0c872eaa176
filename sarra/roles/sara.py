"""dd_sara, the switch's pump: validate, download into the switch's tree, re-announce.

Two ways to run, chosen by ``source_from_exchange`` (default on):

* **ingest** (on): consume the declared sources' ``xs_<source>`` exchanges (or the
  configured ``exchange``); every post is validated by ``sarra.core.routing.ingest`` (source
  forced to the exchange owner, ``from_cluster`` to this ``cluster``; ``to_clusters``
  must name a destination this switch knows: ``cluster``, ``cluster_aliases``,
  ``gateway_for``, ``to``, ``ALL`` or a host name of the switch), refused ones are
  reported (403/417) and acknowledged without being fetched; accepted ones are downloaded below
  ``post_base_dir`` (default layout ``${YYYYMMDD}/${SOURCE}/<relpath>``), verified, and
  re-announced on ``post_exchange`` (``xpublic``) with ``post_base_url``.
* **relay** (off): consume another switch's ``xpublic``; ``sarra.core.routing.relay`` keeps
  only posts addressed to this switch (``cluster``, ``cluster_aliases``,
  ``gateway_for``) and drops loops; ``source`` and ``from_cluster`` are kept.

Duplicates (``suppress_duplicates``; basis ``suppress_basis``, default path + sum) go
through the flow's ``sarra.flow.dedup`` cache, whose claims survive a crash.  Reports go to
``xreport`` on the post broker.  The Flow orders work -> confirmed post -> settle, so a
message is acked only once its file is in place and its re-announcement confirmed.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any, List

from sarra.config.credentials import broker_user
from sarra.config.loader import Options, required
from sarra.core import message, routing
from sarra.core.delivery import Delivery
from sarra.core.errors import ConfigError
from sarra.flow import consumer
from sarra.flow.context import Context
from sarra.flow.download import Downloader
from sarra.flow.engine import Flow
from sarra.flow.repost import LocalCopy
from sarra.flow.sinks import NoticePublisher, Reporter

log = logging.getLogger(__name__)

PROGRAM = "dd_sara"
DEFAULTS = {
    "source_from_exchange": True,
    "mirror": True,
    "directory": "${PBD}/${YYYYMMDD}/${SOURCE}",
    "post_exchange": "xpublic",
    "report_exchange": routing.REPORT_EXCHANGE,
    # a switch stores blocks as part files and re-announces them (spec 7.5, 7.7):
    # no switch ever has to hold a whole partitioned file
    "inplace": False,
}


def queue(ctx: Context) -> str:
    return consumer.queue_name(ctx.options, PROGRAM, ctx.state_dir, random_suffix=False)


def exchanges(o: Options) -> List[str]:
    """Exchanges to consume: ``exchange``, else every declared source's ``xs_<source>``.

    Raises:
        ConfigError: nothing to consume.
    """
    exchange = consumer.exchange(o)
    if exchange:
        return [exchange]
    names = [f"xs_{n}" for kind, n in o.declare if kind == "source"]
    if not names:
        raise ConfigError("dd_sara: set exchange, or declare source <user> lines")
    return names


class Gate:
    """The select step: validation (ingest or relay), then accept/reject masks."""

    def __init__(self, o: Options, sw: routing.Switch) -> None:
        self.validate = bool(o.source_from_exchange)
        self.sw = sw
        self.masks = consumer.Selector(o)

    def __call__(self, d: Delivery) -> bool:
        if d.received is not None:
            exchange = d.received.exchange
            try:
                if self.validate:
                    d.notice = routing.ingest(d.notice, exchange, self.sw)
                else:
                    d.notice = routing.relay(d.notice, self.sw)
            except routing.Refused as e:
                if self.validate:
                    d.notice = routing.stamp_refused(d.notice, exchange, self.sw)
                    d.reject(str(e), code=e.code, text=e.text)
                else:
                    d.reject(str(e))  # not for us: no report to the source
                return False
        return self.masks(d)


class Repost:
    """Work step: download with ``Downloader``, then announce the switch's copy
    (``sarra.flow.repost.LocalCopy``: ``post_base_url`` + its path below ``post_base_dir``)."""

    def __init__(self, o: Options, download: Downloader) -> None:
        self.download = download
        base_url, base_dir = required(o.post_base_url, "post_base_url"), o.post_base_dir
        self.local_copy = LocalCopy(
            base_url, required(base_dir, "post_base_dir"), o.post_topic_prefix
        )

    def __call__(self, d: Delivery) -> None:
        # the SSRF policy of the pool applies to the source of this notice (set on ingest)
        self.download.transfers.source = d.notice.headers.get("source") or None
        self.download(d)
        self.local_copy(d)


def hosts(ctx: Context) -> List[str]:
    """Host names sources may reach this switch by, for ingest: those of its broker URLs
    and of this machine (dd_post and v2 sr_post put the post broker's host in
    ``to_clusters`` when the poster names no cluster)."""
    o = ctx.options
    if not o.source_from_exchange:
        return []
    names = [ctx.host(o.broker), ctx.host(o.post_broker or o.broker)]
    return names + [socket.gethostname().lower(), socket.getfqdn().lower()]


def build(ctx: Context, broker: Any, post_broker: Any, assembler: Any = None) -> Flow:
    """The switch's flow: ``broker`` consumed, ``post_broker`` posted and reported to."""
    o = ctx.options
    if not o.post_base_url or not o.post_base_dir:
        raise ConfigError("dd_sara needs post_base_url and post_base_dir (its served tree)")
    ctx.reset_queue(broker, queue(ctx))
    consumer.setup_queue(broker, o, queue(ctx), exchanges(o), exchange_mode=consumer.DECLARE)
    sw = routing.Switch.from_options(o, ctx.host(o.post_broker or o.broker), hosts=hosts(ctx))
    base_dir = os.path.abspath(os.path.expanduser(o.post_base_dir))
    locate = consumer.Locator(o, {"PBD": base_dir})
    hooks = ctx.hooks(locate)
    download = ctx.downloader(broker, hooks, locate, assembler)
    post_exchange = required(o.post_exchange, "post_exchange")
    post_broker.declare_exchange(post_exchange)
    reporter = None
    if o.report_back:
        user = broker_user(o.post_broker or o.broker)
        report_exchange = required(o.report_exchange, "report_exchange")
        post_broker.declare_exchange(report_exchange)
        reporter = Reporter(post_broker, report_exchange, user)
    return Flow(
        source=ctx.source(broker, queue(ctx)),
        select=Gate(o, sw),
        work=Repost(o, download),
        publisher=NoticePublisher(
            post_broker,
            post_exchange,
            formats=message.post_formats(o.post_format, o.post_topic_prefix),
        ),
        dedup=ctx.dedup_cache(),
        dedup_basis=o.suppress_basis,
        reporter=reporter,
        hooks=hooks,
        retry=ctx.retry_queue(),
        batch=o.batch,
        housekeeping=o.housekeeping,
        stop=ctx.stop,
    )


def run(ctx: Context) -> int:
    broker, post_broker = ctx.brokers()
    return ctx.run_flow(build(ctx, broker, post_broker))


def declare(ctx: Context) -> None:
    o = ctx.options
    broker, post_broker = ctx.brokers()
    consumer.setup_queue(
        broker, o, queue(ctx), exchanges(o), exchange_mode=consumer.DECLARE, consume=False
    )
    post_broker.declare_exchange(o.post_exchange)
    post_broker.declare_exchange(o.report_exchange)


def cleanup(ctx: Context) -> None:
    ctx.forget_queue(queue(ctx))
