"""dd_log: show a source the reports about its own data (spec 9), live or after the fact.

Binds ``q_<user>.dd_log.<config>.<8 digits>.<8 digits>`` to ``xr_<user>`` (``exchange``:
``xreport`` for admins) with ``v02.report.<subtopic>`` and ``v02.log.<subtopic>``,
and prints one line per report (``sarra.report.view.format_line``), or with ``summary``
one block per file when it stops.  Without ``follow`` it stops after ``idle_exit``
seconds without a report; with ``follow`` it runs until stopped.  ``keep_journal``
appends every report to ``<state>/journal.jsonl``; ``journal`` reads that file instead
of the broker, so ``dd_log --journal --summary foreground <config>`` answers "where did
my file go" later.  The exchange is never declared here (the switch's admin does), so a
user without read permission on it gets exactly one error: the refused bind.

Reports are acknowledged once shown and journaled; a message that is not a v02 report is
logged and dropped (nack without requeue).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Callable, List, Optional, TextIO

from sarra.config.credentials import broker_user
from sarra.core import message
from sarra.core.errors import ConnectionLost, MessageError
from sarra.flow import consumer
from sarra.flow.context import Context
from sarra.report import view as rv

log = logging.getLogger(__name__)

PROGRAM = "dd_log"
DEFAULTS = {"topic_prefix": "v02.report", "report_back": False, "expire": 86400.0}


def queue(ctx: Context) -> str:
    """The remembered queue name (kept per broker user)."""
    return consumer.queue_name(ctx.options, PROGRAM, ctx.state_dir, random_suffix=True)


def exchange(ctx: Context) -> str:
    return ctx.options.exchange or f"xr_{broker_user(ctx.options.broker)}"


def binding_keys(o: Any) -> List[str]:
    """``<topic_prefix>.<subtopic>``, plus the 2015 ``v02.log.<subtopic>`` for reports."""
    prefix = o.topic_prefix or "v02.report"
    keys = consumer.topic_keys(prefix, o.subtopic)
    if prefix == "v02.report":
        keys += consumer.topic_keys("v02.log", o.subtopic)
    return keys


def make_filter(o: Any, now: float) -> rv.Filter:
    """The filter the options ask for.

    Raises:
        ValueError: a bad ``since``/``until`` (already checked by the option converter).
    """
    return rv.Filter(
        path=o.path_match,
        consumer=o.consumer_match,
        codes=tuple(o.code or ()),
        since=rv.parse_when(o.since, now) if o.since else None,
        until=rv.parse_when(o.until, now) if o.until else None,
    )


def journal(ctx: Context) -> rv.Journal:
    return rv.Journal(ctx.state_dir / "journal.jsonl")


def setup(ctx: Context, broker: Any) -> str:
    """Declare and bind this config's queue, start consuming; returns the queue name.

    Raises:
        AccessRefused: the user may not read the exchange (or own the queue).
    """
    q = queue(ctx)
    keys = binding_keys(ctx.options)
    consumer.setup_queue(
        broker, ctx.options, q, exchange(ctx), keys, exchange_mode=consumer.EXISTING
    )
    return q


def _decode(r: Any, received: float) -> rv.Entry:
    notice = message.decode(r.routing_key, r.headers, r.body)
    return rv.entry_from_notice(notice, received)


def receive(ctx: Context, broker: Any, show: Callable[[rv.Entry], None]) -> None:
    """Show reports until stopped (``follow``) or idle for ``idle_exit`` seconds."""
    o = ctx.options
    jr = journal(ctx) if o.keep_journal else None
    idle_since = time.monotonic()
    while not ctx.stop():
        try:
            batch = broker.get(int(o.batch), timeout=0.5)
        except ConnectionLost as e:
            log.warning("%s; reconnecting", e)
            continue
        if not batch:
            if not o.follow and time.monotonic() - idle_since >= float(o.idle_exit):
                return
            continue
        idle_since = time.monotonic()
        good, entries = [], []
        for r in batch:
            try:
                entries.append(_decode(r, time.time()))
                good.append(r)
            except MessageError as e:
                log.warning("dropping a message that is not a v02 report: %s", e)
                broker.nack(r, requeue=False)
        if jr is not None:
            jr.append(entries)
        for entry in entries:
            show(entry)
        for r in good:
            broker.ack(r)


def run(ctx: Context, out: Optional[TextIO] = None) -> int:
    """The dd_log command: user output goes to ``out`` (stdout)."""
    o, out = ctx.options, out or sys.stdout
    keep = make_filter(o, time.time())
    collected: List[rv.Entry] = []

    def show(e: rv.Entry) -> None:
        if not keep(e):
            return
        if o.summary:
            collected.append(e)
        else:
            out.write(rv.format_line(e) + "\n")
            out.flush()

    if o.journal:
        for e in journal(ctx).read():
            show(e)
    else:
        broker = ctx.broker(o.broker)
        ctx.reset_queue(broker, queue(ctx))
        setup(ctx, broker)
        receive(ctx, broker, show)
    for s in rv.summarize(collected):
        out.write("\n".join(rv.format_summary(s)) + "\n")
    return 0


def declare(ctx: Context) -> None:
    setup(ctx, ctx.broker(ctx.options.broker))


def cleanup(ctx: Context) -> None:
    ctx.forget_queue(queue(ctx))
