"""dd_sender: select notices, deliver their files to a server that runs no sarra, report.

Composition: a broker queue (like dd_subscribe, shared by the ``instances``) feeds the
flow; the work step is ``sarra.flow.send.Sender`` (the file from ``base_dir`` or fetched,
written on ``destination`` under its inflight name, renamed into place); with
``post_broker`` the delivered copy is announced on ``post_exchange`` with
``post_base_url`` (default: the destination), so a pump beyond can subscribe to it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sarra.config.credentials import broker_user
from sarra.config.loader import required
from sarra.core import message
from sarra.core.errors import ConfigError
from sarra.flow import consumer
from sarra.flow.context import Context
from sarra.flow.engine import Flow
from sarra.flow.repost import post_exchange
from sarra.flow.send import Sender
from sarra.flow.sinks import NoticePublisher, Reporter
from sarra.transfer.pool import TransferPool

PROGRAM = "dd_sender"
DEFAULTS = {"exchange": "xpublic", "mirror": True}
#: the backends that write files (http(s) PUT is not there yet)
SCHEMES = ("sftp", "ftp", "ftps", "file")


def queue(ctx: Context) -> str:
    return consumer.queue_name(ctx.options, PROGRAM, ctx.state_dir, random_suffix=False)


def check(o: Any) -> None:
    """Raises ConfigError: no ``destination``, or one no backend can write to."""
    if not o.destination:
        raise ConfigError("dd_sender needs a destination (sendTo): the server to send to")
    scheme = urlsplit(o.destination).scheme.lower()
    if scheme not in SCHEMES:
        raise ConfigError(f"dd_sender sends over {', '.join(SCHEMES)}, not {scheme}")


def build(ctx: Context, broker: Any, destination: TransferPool) -> Flow:
    """The sender's flow on a connected ``broker``, sending through ``destination``.

    Raises:
        ConfigError: no ``destination``, or one no backend can write to.
    """
    o = ctx.options
    check(o)
    ctx.reset_queue(broker, queue(ctx))
    consumer.setup_queue(broker, o, queue(ctx), required(consumer.exchange(o), "exchange"))
    publisher = None
    if o.post_broker:
        post_broker = ctx.broker(o.post_broker, "post_broker")
        post_broker.declare_exchange(post_exchange(o))
        formats = message.post_formats(o.post_format, o.post_topic_prefix)
        publisher = NoticePublisher(post_broker, post_exchange(o), formats=formats)
    work = Sender(
        o,
        destination=destination,
        fetch=ctx.transfers(total=False),  # the config's total is for what it sends
        spool=ctx.state_dir / f"spool.{ctx.instance:02d}",
        progress=ctx.progress(broker),
        post_base_url=(o.post_base_url or o.destination) if publisher else None,
    )
    reporter = None
    if o.report_back:
        exchange = o.report_exchange or f"xs_{broker_user(o.broker)}"
        reporter = Reporter(broker, exchange, broker_user(o.broker))
    return Flow(
        source=ctx.source(broker, queue(ctx)),
        select=consumer.Selector(o),
        work=work,
        publisher=publisher,
        reporter=reporter,
        hooks=ctx.hooks(),
        retry=ctx.retry_queue(),
        dedup=ctx.dedup_cache(),
        batch=o.batch,
        housekeeping=o.housekeeping,
        stop=ctx.stop,
    )


def run(ctx: Context) -> int:
    o = ctx.options
    check(o)  # before the broker: a configuration error is not retried
    # no SSRF policy: the destination is the config's own; its bandwidth limits apply
    destination = ctx.transfers(policy=False)
    return ctx.run_flow(build(ctx, ctx.broker(o.broker), destination))


def declare(ctx: Context) -> None:
    o = ctx.options
    exchange = required(consumer.exchange(o), "exchange")
    consumer.setup_queue(ctx.broker(o.broker), o, queue(ctx), exchange, consume=False)
    if o.post_broker:
        ctx.broker(o.post_broker, "post_broker").declare_exchange(post_exchange(o))


def cleanup(ctx: Context) -> None:
    ctx.forget_queue(queue(ctx))
