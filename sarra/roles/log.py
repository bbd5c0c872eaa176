"""dd_log: show a source the reports about its own data (spec 9), live or after the fact.

A flow like every consumer's: ``BrokerSource`` on
``q_<user>.dd_log.<config>.<8 digits>.<8 digits>``, bound to ``xr_<user>``
(``exchange``: ``xreport`` for admins) with ``v02.report.<subtopic>`` and
``v02.log.<subtopic>``; its select step admits reports (anything else is rejected, one
log line) that pass the accept/reject masks; no work step; its sink
(``sarra.report.printer.ReportPrinter``) appends every report to
``<state>/journal.jsonl`` (``keep_journal``) and prints one line per report the
filters (``path_match``, ``consumer_match``, ``code``, ``since``, ``until``) let through,
or with ``summary`` one block per file when it stops.  The flow acknowledges a batch
once it is shown and journaled.  Without ``follow`` the flow stops after ``idle_exit``
seconds without a report; with ``follow`` it runs until stopped.  ``journal`` reads
the journal instead of the broker, so ``dd_log --journal --summary foreground <config>``
answers "where did my file go" later.  The exchange is never declared here (the
switch's admin does), so a user without read permission on it gets exactly one error:
the refused bind.
"""

from __future__ import annotations

import sys
import time
from typing import Any, List, Optional, TextIO

from sarra.config.credentials import broker_user
from sarra.config.loader import Options
from sarra.flow import consumer
from sarra.flow.context import Context
from sarra.flow.engine import BrokerSource, Flow
from sarra.report import view as rv
from sarra.report.printer import ReportPrinter, showable

PROGRAM = "dd_log"
DEFAULTS = {"topic_prefix": "v02.report", "report_back": False, "expire": 86400.0}


def queue(ctx: Context) -> str:
    """The remembered queue name (kept per broker user)."""
    return consumer.queue_name(ctx.options, PROGRAM, ctx.state_dir, random_suffix=True)


def exchange(ctx: Context) -> str:
    return ctx.options.exchange or f"xr_{broker_user(ctx.options.broker)}"


def binding_keys(o: Options) -> List[str]:
    """``<topic_prefix>.<subtopic>``, plus the 2015 ``v02.log.<subtopic>`` for reports."""
    prefix = o.topic_prefix
    keys = consumer.topic_keys(prefix, o.subtopic)
    if prefix == "v02.report":
        keys += consumer.topic_keys("v02.log", o.subtopic)
    return keys


def journal(ctx: Context) -> rv.Journal:
    return rv.Journal(ctx.state_dir / "journal.jsonl")


def setup(ctx: Context, broker: Any, consume: bool = True) -> str:
    """Declare and bind this config's queue, start consuming (unless ``consume`` is
    False: the ``declare`` action); returns the queue name.

    Raises:
        AccessRefused: the user may not read the exchange (or own the queue).
    """
    q = queue(ctx)
    keys = binding_keys(ctx.options)
    consumer.setup_queue(
        broker,
        ctx.options,
        q,
        exchange(ctx),
        keys,
        exchange_mode=consumer.EXISTING,
        consume=consume,
    )
    return q


def build(ctx: Context, broker: Any, printer: ReportPrinter) -> Flow:
    """dd_log's flow on a connected ``broker``: its queue's reports, admitted by the
    accept/reject masks, shown and journaled by ``printer`` before they are acknowledged."""
    o = ctx.options
    ctx.reset_queue(broker, queue(ctx))
    setup(ctx, broker)
    masks = consumer.Selector(o)
    return Flow(
        source=BrokerSource(broker),
        select=lambda d: showable(d) and masks(d),
        sinks=[printer],
        batch=o.batch,
        idle=0.5,
        idle_exit=None if o.follow else o.idle_exit,
        housekeeping=o.housekeeping,
        stop=ctx.stop,
    )


def printer(ctx: Context, out: TextIO) -> ReportPrinter:
    """The sink the options ask for: filters, summary, journal kept or not."""
    o = ctx.options
    return ReportPrinter(
        out,
        rv.Filter.from_options(o, time.time()),
        journal=journal(ctx) if o.keep_journal else None,
        summary=o.summary,
    )


def run(ctx: Context, out: Optional[TextIO] = None) -> int:
    """The dd_log command: reports from the broker (or the journal) to ``out`` (stdout)."""
    sink = printer(ctx, out or sys.stdout)
    if ctx.options.journal:
        sink.show(journal(ctx).read())
        sink.finish()
        return 0
    return ctx.run_flow(build(ctx, ctx.broker(ctx.options.broker), sink))


def declare(ctx: Context) -> None:
    setup(ctx, ctx.broker(ctx.options.broker), consume=False)


def cleanup(ctx: Context) -> None:
    ctx.forget_queue(queue(ctx))
