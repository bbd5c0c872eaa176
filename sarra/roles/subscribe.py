"""dd_subscribe: select notices, download, verify, place atomically, trigger, report."""

from __future__ import annotations

from typing import Any, Optional

from sarra.config.credentials import broker_user
from sarra.config.loader import required
from sarra.core import message
from sarra.flow import consumer
from sarra.flow.context import Context
from sarra.flow.engine import Flow
from sarra.flow.sinks import NoticePublisher, Reporter

PROGRAM = "dd_subscribe"
DEFAULTS = {"exchange": "xpublic"}


def queue(ctx: Context) -> str:
    return consumer.queue_name(ctx.options, PROGRAM, ctx.state_dir, random_suffix=True)


def report_exchange(ctx: Context) -> str:
    o = ctx.options
    return o.report_exchange or f"xs_{broker_user(o.broker)}"


def build(ctx: Context, broker: Any, assembler: Optional[Any] = None) -> Flow:
    """The subscriber's flow on a connected ``broker`` (consumed, reported to)."""
    o = ctx.options
    ctx.reset_queue(broker, queue(ctx))
    consumer.setup_queue(broker, o, queue(ctx), required(o.exchange, "exchange"))
    locate = consumer.Locator(o)
    hooks = ctx.hooks(locate)
    work = ctx.downloader(broker, hooks, locate, assembler)
    reporter = None
    if o.report_back:
        reporter = Reporter(broker, report_exchange(ctx), broker_user(o.broker))
    publisher = None
    if o.post_broker and o.post_exchange:
        post_broker = ctx.broker(o.post_broker, "post_broker")
        post_broker.declare_exchange(o.post_exchange)
        formats = message.post_formats(o.post_format, o.post_topic_prefix)
        publisher = NoticePublisher(post_broker, o.post_exchange, formats=formats)
    return Flow(
        source=ctx.source(broker, queue(ctx)),
        select=consumer.Selector(o),
        work=work,
        publisher=publisher,
        reporter=reporter,
        hooks=hooks,
        retry=ctx.retry_queue(),
        dedup=ctx.dedup_cache(),
        batch=o.batch,
        housekeeping=o.housekeeping,
        stop=ctx.stop,
        threads=ctx.work_threads(broker, hooks, locate),
    )


def run(ctx: Context) -> int:
    broker = ctx.broker(ctx.options.broker)
    return ctx.run_flow(build(ctx, broker))


def declare(ctx: Context) -> None:
    broker = ctx.broker(ctx.options.broker)
    exchange = required(ctx.options.exchange, "exchange")
    consumer.setup_queue(broker, ctx.options, queue(ctx), exchange, consume=False)


def cleanup(ctx: Context) -> None:
    ctx.forget_queue(queue(ctx))
