"""dd_poll: list a server that announces nothing, post what appears or changes on it.

Composition: a ``PollSource`` (``sarra.poll``: listings of ``destination`` through its
transfer backend, every ``sleep`` seconds, remembered in the state directory) feeds a
``Flow`` that publishes its notices in confirmed batches to ``post_exchange`` (default
``xs_<post_broker user>``).  Nothing is consumed.  One instance per configuration: a
second process of the same config on this host refuses to start.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
from typing import Any, List

from sarra.config.credentials import broker_user
from sarra.config.loader import expand, required
from sarra.core import message
from sarra.core.errors import ConfigError, SarraError
from sarra.flow.context import Context
from sarra.flow.engine import Flow
from sarra.flow.sinks import NoticePublisher
from sarra.poll.notices import PollNotices
from sarra.poll.source import Polled, PollSource
from sarra.poll.state import PollState
from sarra.transfer import for_url, remote_base

log = logging.getLogger(__name__)

PROGRAM = "dd_poll"
DEFAULTS = {"sleep": 300.0, "sum": "z,d"}


def post_exchange(o: Any) -> str:
    exchange = o.post_exchange or f"xs_{broker_user(o.post_broker)}"
    return f"{exchange}_{o.post_exchange_suffix}" if o.post_exchange_suffix else exchange


def polled(o: Any) -> List[Polled]:
    """The polled directories, each with the accept/reject lines written under it.

    Raises:
        ConfigError: no destination, no accept line, or more than one instance.
    """
    if not o.destination:
        raise ConfigError("dd_poll needs a destination (pollUrl): the server to list")
    if not any(m.accept for m in o.masks):
        raise ConfigError("dd_poll posts nothing without accept lines (one per file pattern)")
    if int(o.instances) != 1:
        raise ConfigError("dd_poll runs one instance per configuration (instances 1)")
    groups: dict = {}
    for mask in o.masks:
        groups.setdefault(mask.directory or ".", []).append(mask)
    return [Polled(d, masks) for d, masks in groups.items()]


def server_directory(root: str) -> Any:
    """``directory`` -> its server path below ``root`` at the time of the pass
    (``${YYYYMMDD}``, ``${YYYY}``, ``${MM}``, ``${DD}``, ``${HH}``, ``${JJJ}``: UTC)."""

    def at_pass(directory: str) -> str:
        now = dt.datetime.now(dt.timezone.utc)
        values = {k: now.strftime(f) for k, f in _TIME_VARS.items()}
        path = "/".join(p for p in expand(directory, values).split("/") if p not in ("", "."))
        return root + path

    return at_pass


_TIME_VARS = {"YYYYMMDD": "%Y%m%d", "YYYY": "%Y", "MM": "%m", "DD": "%d", "HH": "%H", "JJJ": "%j"}


def run(ctx: Context) -> int:
    """Poll and post until stopped.

    Raises:
        ConfigError: see :func:`polled`.  SarraError: this config already runs here.
        BrokerError: the post broker cannot be used.
    """
    o = ctx.options
    groups = polled(o)
    destination = required(o.destination, "destination")
    at_pass = server_directory(remote_base(destination))
    for g in groups:
        at_pass(g.directory)  # an unknown variable is a configuration error, found now
    with open(ctx.state_dir / "poll.lock", "w") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SarraError(f"dd_poll {ctx.config} is already running on this host") from None
        broker = ctx.broker(o.post_broker, "post_broker")
        exchange = post_exchange(o)
        broker.declare_exchange(exchange)
        notices = PollNotices(
            o, broker_user=broker_user(o.post_broker), broker_host=ctx.host(o.post_broker)
        )
        source = PollSource(
            for_url(destination, credentials=ctx.credentials.lookup, timeout=float(o.timeout)),
            groups,
            PollState(ctx.state_dir / "seen.sqlite", horizon=max(o.file_time_limit, o.sleep * 4)),
            notices,
            interval=float(o.sleep),
            expand=at_pass,
            recursive=bool(o.recursive),
            accept_unmatch=bool(o.accept_unmatch),
            file_time_limit=float(o.file_time_limit),
            inflight=o.inflight,
        )
        flow = Flow(
            source=source,
            publisher=NoticePublisher(
                broker, exchange, formats=message.post_formats(o.post_format, o.post_topic_prefix)
            ),
            hooks=ctx.hooks(),
            batch=o.batch,
            housekeeping=o.housekeeping,
            stop=ctx.stop,
        )
        log.info("polling %s every %.0f s, posting to %s", notices.base_url, o.sleep, exchange)
        try:
            ctx.run_flow(flow)
        finally:
            source.close()
    return 0


def declare(ctx: Context) -> None:
    ctx.broker(ctx.options.post_broker, "post_broker").declare_exchange(post_exchange(ctx.options))


def cleanup(ctx: Context) -> None:
    """Forget what was posted: the next run posts every file the listings show."""
    from sarra.flow.consumer import forget_state

    forget_state(ctx.state_dir)
