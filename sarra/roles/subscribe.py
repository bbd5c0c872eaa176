"""dd_subscribe: select notices, download, verify, place atomically, trigger, report.

The modes of v2's sr_subscribe and sr3's subscribe:

* with ``post_broker``, each file in place is announced as *this* copy
  (``sarra.flow.repost.LocalCopy``: ``post_base_url`` + its path below ``post_base_dir``)
  on ``post_exchange`` (default ``xs_<post broker user>``, ``post_exchange_suffix``);
* ``download off`` (``notify_only``, ``no_download``): nothing is fetched; with
  ``post_broker`` the notices are posted on as they came (reported 201 Published);
* ``discard``: each file is deleted once its ``on_file`` hooks ran; nothing is posted;
* ``delete``: the source file is deleted once the copy is in place (``flow.download``).
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from sarra.config.credentials import broker_user
from sarra.config.loader import required
from sarra.core import message
from sarra.flow import consumer
from sarra.flow.context import Context
from sarra.flow.engine import Flow
from sarra.flow.repost import LocalCopy, followed_by, post_exchange
from sarra.flow.sinks import NoticePublisher, Reporter

log = logging.getLogger(__name__)

PROGRAM = "dd_subscribe"
DEFAULTS = {"exchange": "xpublic"}


def queue(ctx: Context) -> str:
    return consumer.queue_name(ctx.options, PROGRAM, ctx.state_dir, random_suffix=True)


def report_exchange(ctx: Context) -> str:
    o = ctx.options
    return o.report_exchange or f"xs_{broker_user(o.broker)}"


def publisher(ctx: Context) -> Optional[NoticePublisher]:
    """The sink of the posts downstream: only with ``post_broker`` and without ``discard``."""
    o = ctx.options
    if not o.post_broker:
        return None
    if o.discard:
        log.warning("discard: the files are deleted, so nothing is posted to post_broker")
        return None
    post_broker = ctx.broker(o.post_broker, "post_broker")
    post_broker.declare_exchange(post_exchange(o))
    formats = message.post_formats(o.post_format, o.post_topic_prefix)
    return NoticePublisher(post_broker, post_exchange(o), formats=formats)


def build(ctx: Context, broker: Any, assembler: Optional[Any] = None) -> Flow:
    """The subscriber's flow on a connected ``broker`` (consumed, reported to)."""
    o = ctx.options
    ctx.reset_queue(broker, queue(ctx))
    consumer.setup_queue(broker, o, queue(ctx), required(consumer.exchange(o), "exchange"))
    locate = consumer.Locator(o)
    hooks = ctx.hooks(locate)
    posts = publisher(ctx)
    local_copy = None
    if posts is not None and o.download:
        local_copy = LocalCopy(o.post_base_url, o.post_base_dir, o.post_topic_prefix)
    work, threads = None, None
    if o.download:
        work = followed_by(ctx.downloader(broker, hooks, locate, assembler), local_copy)
        threads = ctx.work_threads(broker, hooks, locate, then=local_copy)
    reporter = None
    if o.report_back and (o.download or posts is not None):  # v2: 201 Published if posted
        reporter = Reporter(broker, report_exchange(ctx), broker_user(o.broker))
    return Flow(
        source=ctx.source(broker, queue(ctx)),
        select=consumer.Selector(o),
        work=work,
        publisher=posts,
        reporter=reporter,
        hooks=hooks,
        retry=ctx.retry_queue(),
        dedup=ctx.dedup_cache(),
        batch=o.batch,
        housekeeping=o.housekeeping,
        stop=ctx.stop,
        threads=threads,
    )


def run(ctx: Context) -> int:
    broker = ctx.broker(ctx.options.broker)
    return ctx.run_flow(build(ctx, broker))


def declare(ctx: Context) -> None:
    broker = ctx.broker(ctx.options.broker)
    exchange = required(consumer.exchange(ctx.options), "exchange")
    consumer.setup_queue(broker, ctx.options, queue(ctx), exchange, consume=False)
    if ctx.options.post_broker:
        ctx.broker(ctx.options.post_broker, "post_broker").declare_exchange(
            post_exchange(ctx.options)
        )


def cleanup(ctx: Context) -> None:
    ctx.forget_queue(queue(ctx))
