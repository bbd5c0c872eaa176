"""dd_log's sink: each batch of reports journaled, then shown, before it is acknowledged.

:class:`ReportPrinter` is one of the ``sinks`` of ``sarra.flow.engine.Flow``: the flow
hands it every batch once the outcomes are decided and acknowledges the batch only
after :meth:`ReportPrinter.publish` returned, so a report is acknowledged once it is in
the journal and on the screen.  An error writing either (the reader of stdout gone, a
full disk) goes up and voids the batch: the broker keeps those reports for the next
run, as it did when dd_log had a loop of its own.

The journal keeps every report received; the filter (``path_match``, ``code``,
``since``...) only chooses what is shown, so the journal can be asked again with other
filters.  Journal replay (``journal``) feeds :meth:`ReportPrinter.show` directly.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, List, Optional, Sequence, TextIO

from sarra.core.delivery import OK, Delivery
from sarra.report.view import (
    Entry,
    Filter,
    Journal,
    entry_from_notice,
    format_line,
    format_summary,
    summarize,
)


def showable(d: Delivery) -> bool:
    """The select step of a flow that shows reports: True for a report that makes an
    entry and a line.  Anything else (a post) is rejected, with its reason logged by the
    flow, and acknowledged: it can never be shown.

    The entry and line are made here, and made again by the sink, so that a report they
    fail on is settled by the flow's boundary (logged, acknowledged) instead of making
    the sink raise, which would void the batch and stop dd_log on the same queued
    report at every run.
    """
    if d.notice.report is None:
        d.reject("not a v02 report")
        return False
    format_line(entry_from_notice(d.notice, 0.0))
    return True


class ReportPrinter:
    """Prints the reports ``keep`` lets through, one line each to ``out``, or with
    ``summary`` keeps them for one block per file printed by :meth:`finish`; appends
    every report to ``journal`` (if given) first."""

    def __init__(
        self,
        out: TextIO,
        keep: Filter,
        *,
        journal: Optional[Journal] = None,
        summary: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.out = out
        self.keep = keep
        self.journal = journal
        self.summary = summary
        self.clock = clock
        self.collected: List[Entry] = []

    def publish(self, deliveries: Sequence[Delivery]) -> None:
        """Journal and show the reports of one batch (those the flow admitted).

        Raises:
            OSError: the journal or ``out`` cannot be written; nothing may be acknowledged.
        """
        now = self.clock()
        entries = [
            entry_from_notice(d.notice, now)
            for d in deliveries
            if d.outcome == OK and d.notice.report is not None
        ]
        if self.journal is not None:
            self.journal.append(entries)
        self.show(entries)

    def show(self, entries: Iterable[Entry]) -> None:
        """Print (or keep for the summary) each entry the filter lets through.

        Raises:
            OSError: ``out`` cannot be written.
        """
        for e in entries:
            if not self.keep(e):
                continue
            if self.summary:
                self.collected.append(e)
            else:
                self.out.write(format_line(e) + "\n")
        self.out.flush()

    def finish(self) -> None:
        """At the end (idle, stopped, journal read): the per-file summaries, if asked."""
        for s in summarize(self.collected):
            self.out.write("\n".join(format_summary(s)) + "\n")
        self.out.flush()
