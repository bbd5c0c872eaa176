"""``dd check`` (also ``check_sarra``): a Nagios/Icinga plugin over what ``dd status`` knows.

It follows the monitoring-plugins conventions (their *Development Guidelines*), through
the nagiosplugin library, which implements them (threshold ranges, perfdata, states):

* one status line, ``SARRA OK - 3 configs running`` (``-v``: one more line per problem),
  performance data after ``|``: per config its running instances, lag, retry backlog and
  queue depth, each with its thresholds;
* exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; UNKNOWN also for bad arguments and for
  anything that stops the check itself (no configuration, a pidfile holding garbage);
* thresholds in the plugins' range syntax (``300``: alert above 300; ``10:``: below 10;
  ``@10:20``: inside): ``--lag-warning/--lag-critical`` (seconds, the worst instance's
  mean lag over its last interval), ``--backlog-*`` (retry queue entries),
  ``--queue-*`` (messages ready on the broker).

A config started with ``dd start`` whose instances are dead or hung, or only partly
running, is CRITICAL; one stopped on purpose is OK; a config file that cannot be read is
CRITICAL if it was started, WARNING otherwise.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, NoReturn, Sequence, Tuple

import nagiosplugin

from sarra.service.health import ConfigStatus

EXIT_UNKNOWN = 3
NAME = "SARRA"
#: states of a started config that page someone
DOWN = ("dead", "partial", "hung")


@dataclass(frozen=True)
class Thresholds:
    """Warning and critical ranges (monitoring-plugins syntax; "" for none)."""

    lag_warning: str = "300"
    lag_critical: str = "1800"
    backlog_warning: str = "100"
    backlog_critical: str = "1000"
    queue_warning: str = "10000"
    queue_critical: str = "100000"

    def contexts(self) -> List[nagiosplugin.Context]:
        """One ScalarContext per measured value, and the state context.

        Raises:
            ValueError: a range cannot be parsed.
        """
        fmt = "{name} {valueunit}"
        return [
            StateContext(),
            nagiosplugin.ScalarContext("lag", self.lag_warning, self.lag_critical, fmt),
            nagiosplugin.ScalarContext("backlog", self.backlog_warning, self.backlog_critical, fmt),
            nagiosplugin.ScalarContext("queue", self.queue_warning, self.queue_critical, fmt),
        ]


def label(row: ConfigStatus) -> str:
    """``subscribe/amis``: a perfdata label may hold neither ``'`` nor ``=``, and the
    plugin output no ``|``."""
    text = f"{row.target.short}/{row.target.config}"
    return "".join("_" if c in "'=|" or not c.isprintable() else c for c in text)


class Configs(nagiosplugin.Resource):
    """The configs' status rows as metrics: one state metric each, and its lag, retry
    backlog and queue depth when known."""

    def __init__(self, rows: Sequence[ConfigStatus]) -> None:
        self.rows = rows

    @property
    def name(self) -> str:
        return NAME

    def probe(self) -> Iterator[nagiosplugin.Metric]:
        for row in self.rows:
            name = label(row)
            yield nagiosplugin.Metric(name, row, context="state")
            if row.error:
                continue
            if row.lag is not None:
                yield nagiosplugin.Metric(f"{name} lag", round(row.lag, 1), "s", 0, context="lag")
            yield nagiosplugin.Metric(f"{name} backlog", row.retry, None, 0, context="backlog")
            if row.queue is not None:
                yield nagiosplugin.Metric(f"{name} queue", row.queue, None, 0, context="queue")


def severity(row: ConfigStatus) -> Any:
    """The state of one config (see the module docstring)."""
    state = row.state
    if state in DOWN:
        return nagiosplugin.Critical
    if state == "broken":
        return nagiosplugin.Critical if row.wanted else nagiosplugin.Warn
    if state == "n/a" and row.wanted:
        return nagiosplugin.Warn
    return nagiosplugin.Ok


class StateContext(nagiosplugin.Context):
    """Running, stopped, dead, hung, broken: a config's state as a plugin state."""

    def __init__(self) -> None:
        super().__init__("state")

    def evaluate(self, metric: nagiosplugin.Metric, resource: Any) -> nagiosplugin.Result:
        return nagiosplugin.Result(severity(metric.value), metric=metric)

    def describe(self, metric: nagiosplugin.Metric) -> str:
        row: ConfigStatus = metric.value
        if row.error:
            return f"{metric.name} broken: {row.error[:120]}"
        hung = f", {len(row.hung)} hung" if row.hung else ""
        return f"{metric.name} {row.state} ({row.running}/{row.expected} running{hung})"

    def performance(self, metric: nagiosplugin.Metric, resource: Any) -> Any:
        row: ConfigStatus = metric.value
        if row.error:
            return None
        return nagiosplugin.Performance(
            f"{metric.name} running", row.running, "", "", "", 0, row.expected
        )


class Summary(nagiosplugin.Summary):
    """The status line: counts when all is well, else every problem, worst first."""

    def ok(self, results: nagiosplugin.Results) -> str:
        states = [r.metric.value.state for r in results if r.metric and r.metric.context == "state"]
        counts = {s: states.count(s) for s in dict.fromkeys(states)}
        what = "config" if len(states) == 1 else "configs"
        return f"{len(states)} {what}: " + ", ".join(f"{n} {s}" for s, n in counts.items())

    def problem(self, results: nagiosplugin.Results) -> str:
        bad = sorted(
            (r for r in results if r.state != nagiosplugin.Ok), key=lambda r: -int(r.state)
        )
        shown = "; ".join(str(r) for r in bad[:4])
        return shown + (f"; and {len(bad) - 4} more" if len(bad) > 4 else "")

    def empty(self) -> str:
        return "no configurations"


def evaluate(
    rows: Sequence[ConfigStatus], thresholds: Thresholds, verbose: int = 0
) -> Tuple[int, str]:
    """``(exit status, plugin output)`` for ``rows``: no configuration is UNKNOWN.

    Raises:
        ValueError: a threshold range cannot be parsed.
    """
    check = nagiosplugin.Check(Configs(rows), *thresholds.contexts(), Summary(), name=NAME)
    check()
    status = f"{NAME} {str(check.state).upper()} - {check.summary_str}".replace("|", "/")
    lines = [status + (" | " + " ".join(check.perfdata) if check.perfdata else "")]
    if verbose:
        lines += [line.replace("|", "/") for line in check.verbose_str]
    return check.exitcode, "\n".join(lines)


# ---------------------------------------------------------------- command line
class _PluginParser(argparse.ArgumentParser):
    """A usage error is UNKNOWN (3) for a plugin, never argparse's 2 (CRITICAL)."""

    def error(self, message: str) -> NoReturn:
        print(f"{NAME} UNKNOWN - {self.prog}: {message}")  # stdout: what Nagios shows
        raise SystemExit(EXIT_UNKNOWN)


def build_parser(prog: str = "dd check") -> argparse.ArgumentParser:
    p = _PluginParser(
        prog=prog,
        description="Nagios/Icinga check of every sarra daemon configuration: see dd(8).",
    )
    p.add_argument("program", nargs="?", help="sara, shovel, subscribe, sender, log, watch or poll")
    p.add_argument("config", nargs="?", help="one configuration of that program")
    p.add_argument("--system", action="store_true", help="the system's configs (/etc/sarra)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="one line per problem")
    d = Thresholds()
    for what, unit in (("lag", "seconds"), ("backlog", "retry entries"), ("queue", "messages")):
        for level in ("warning", "critical"):
            default = getattr(d, f"{what}_{level}")
            p.add_argument(
                f"--{what}-{level}",
                default=default,
                metavar="RANGE",
                help=f"{level} range of the {what} ({unit}; default {default})",
            )
    return p


def thresholds_of(ns: argparse.Namespace) -> Thresholds:
    return Thresholds(
        **{f"{w}_{lv}": getattr(ns, f"{w}_{lv}") for w in ("lag", "backlog", "queue")
           for lv in ("warning", "critical")}
    )  # fmt: skip


def main(
    argv: Sequence[str],
    rows_for: Callable[[argparse.Namespace], Sequence[ConfigStatus]],
    prog: str = "dd check",
    out: Callable[[str], None] = print,
) -> int:
    """Parse ``argv``, collect the rows (``rows_for(ns)``), print the plugin output;
    return its exit status.  Anything raised on the way is UNKNOWN, on one line."""
    ns = build_parser(prog).parse_args(list(argv))
    try:
        th = thresholds_of(ns)
        th.contexts()  # ranges checked before anything is probed
    except ValueError as e:
        out(f"{NAME} UNKNOWN - bad threshold: {e}")
        return EXIT_UNKNOWN
    try:
        rows = rows_for(ns)
        code, text = evaluate(rows, th, ns.verbose)
    except Exception as e:  # noqa: BLE001 - the plugin's boundary: anything is UNKNOWN
        out(f"{NAME} UNKNOWN - {type(e).__name__}: {str(e)[:200]}".replace("|", "/"))
        return EXIT_UNKNOWN
    out(text)
    return code
