"""dd_watch: watch directory trees and post what appears, changes, moves or goes.

Composition: a ``Watcher`` (inotify, or polling) feeds a ``WatchSource``, which makes
notices with dd_post's ``NoticeMaker``; the ``Flow`` publishes them in confirmed batches
to ``post_exchange`` (default ``xs_<post_broker user>``).  Nothing is consumed.
"""

from __future__ import annotations

import logging

from sarra.config.credentials import broker_user
from sarra.config.loader import Options
from sarra.core import message
from sarra.core.errors import ConfigError
from sarra.flow.context import Context
from sarra.flow.engine import Flow
from sarra.flow.sinks import NoticePublisher
from sarra.post.notices import NoticeMaker
from sarra.watch.source import WatchSource, mask_selector
from sarra.watch.watcher import Watcher

log = logging.getLogger(__name__)

PROGRAM = "dd_watch"
DEFAULTS: dict = {}


def post_exchange(ctx: Context) -> str:
    o = ctx.options
    exchange = o.post_exchange or f"xs_{broker_user(o.post_broker)}"
    return f"{exchange}_{o.post_exchange_suffix}" if o.post_exchange_suffix else exchange


def make_watcher(options: Options) -> Watcher:
    """The watcher for ``path``; ``inflight`` as a number is a minimum age in seconds.

    Raises:
        ConfigError: no ``path`` configured, or an ``inflight`` the watcher cannot use.
    """
    paths = list(options.path)
    if not paths:
        raise ConfigError("nothing to watch: add 'path DIRECTORY' to the configuration")
    inflight = options.inflight
    min_age = float(inflight) if isinstance(inflight, (int, float)) else 0.0
    return Watcher(
        paths,
        recursive=bool(options.recursive),
        force_polling=bool(options.force_polling),
        poll_interval=float(options.sleep),
        follow_symlinks=bool(options.follow_symlinks),
        inflight=inflight if isinstance(inflight, str) else "NONE",
        min_age=min_age,
    )


def run(ctx: Context) -> int:
    """Watch and post until stopped.

    Raises:
        WatchError, WatchLimitError: a directory cannot be watched (checked before the
            broker is contacted).
        ConfigError, BrokerError: bad options, or the post broker cannot be used.
    """
    o = ctx.options
    watcher = make_watcher(o)
    watcher.start()
    source = None
    try:
        broker = ctx.broker(o.post_broker, "post_broker")
        exchange = post_exchange(ctx)
        broker.declare_exchange(exchange)
        maker = NoticeMaker(
            o, broker_user=broker_user(o.post_broker), broker_host=ctx.host(o.post_broker)
        )
        source = WatchSource(
            watcher,
            maker,
            events=o.events,
            accepted=mask_selector(o),
            post_on_start=bool(o.post_on_start),
            retry_delay=float(o.retry_delay),
        )
        flow = Flow(
            source=source,
            publisher=NoticePublisher(
                broker, exchange, formats=message.post_formats(o.post_format, o.post_topic_prefix)
            ),
            hooks=ctx.hooks(),
            batch=o.batch,
            idle=1.0,
            housekeeping=o.housekeeping,
            stop=ctx.stop,
        )
        log.info("posting to exchange %s", exchange)
        ctx.run_flow(flow)
    finally:
        if source is not None:
            source.close()
        else:
            watcher.stop()
    log.info("posted %d notice(s); %d dropped", source.posted, source.failed)
    return 0


def declare(ctx: Context) -> None:
    broker = ctx.broker(ctx.options.post_broker, "post_broker")
    broker.declare_exchange(post_exchange(ctx))


def cleanup(ctx: Context) -> None:
    """dd_watch keeps no queue and no state: nothing to remove."""
