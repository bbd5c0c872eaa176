"""The ``dd`` command: every configuration of every daemon of a user (or of the system).

``dd start|stop|restart|status|sanity|list|log|cleanup|declare [program [config]]`` walks
``<config_dir>/<program>/*.conf`` for each daemon (sara, shovel, subscribe, log, watch;
started in that order, stopped in the reverse) and drives each config through the same
:class:`~sarra.service.instances.Instances` that ``dd_subscribe start`` uses (``programs``).

What this module owns:

* the *wanted* marker: ``<state>/<program>/<config>/wanted`` holds the instance count a
  config was started with.  ``start`` writes it, ``stop`` removes it.  ``sanity`` only
  ever touches configs that have it, so a stopped config, or one disabled by renaming it
  to ``.conf.off`` (not listed at all), is never restarted behind the operator's back; it
  restarts the count that was started (an edited ``instances`` applies on restart).
* ``status``: one row per config (expected vs running instances, queue depth from a
  passive declare on the broker, last log activity, retry backlog); exit 0 when every
  config runs all its instances, 3 otherwise (LSB init-script convention).
* ``sanity``: restarts dead instances of wanted configs, and restarts a config whose
  running instance has written nothing to its log for too long (hung).

The status data, the on-disk facts and the broker probe are in :mod:`sarra.service.health`.
Output goes through the ``out`` callable given to :class:`Service` (``print`` from
:func:`main`); errors raise :class:`~sarra.core.errors.SarraError` and :func:`main` turns them
into one line and an exit status, as ``cli.main`` does.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from sarra.config.loader import Options, load
from sarra.config.paths import Paths, config_stem, short_name
from sarra.core.errors import ConfigError, SarraError
from sarra.service import programs
from sarra.service.health import (
    ConfigStatus,
    QueueProbe,
    Target,
    format_table,
    hung_after,
    instance_facts,
    mtime,
    queue_of,
    retry_backlog,
    summed_interval,
    with_queue,
)
from sarra.service.instances import RUNNING, Instances, OSCalls, Report
from sarra.service.programs import clear_wanted, mark_wanted, wanted_count

log = logging.getLogger(__name__)

#: Daemons in start order: pumps before the subscribers that read what they post.
ORDER = ("sara", "shovel", "subscribe", "sender", "log", "watch", "poll")
ACTIONS = (
    "start", "stop", "restart", "status", "sanity", "list", "log", "cleanup", "declare",
    "check", "metrics",
)  # fmt: skip
Out = Callable[[str], None]


# ---------------------------------------------------------------- targets
def targets(paths: Paths, program: Optional[str] = None, config: Optional[str] = None) -> list:
    """Every config of ``program`` (or of every daemon), in start order.

    Raises:
        ConfigError: ``program`` is not a daemon, or ``config`` does not exist.
    """
    names: Sequence[str] = ORDER
    if program:
        names = (short_name(program),)
        if names[0] not in ORDER:
            raise ConfigError(f"{program} is not a daemon (one of: {', '.join(ORDER)})")
    if not config:
        return [Target(f"dd_{p}", c) for p in names for c in programs.configs(p, paths)]
    if not program:
        raise ConfigError("name the program before the config")
    if not paths.config_file(names[0], config).is_file():
        where = paths.program_config_dir(names[0])
        raise ConfigError(f"no configuration {config!r} in {where}")
    return [Target(f"dd_{names[0]}", config_stem(config))]


# ---------------------------------------------------------------- the service
class Service:
    """``dd``'s actions over a list of targets.

    ``os`` is the process-control seam handed to every :class:`Instances` (tests pass a
    fake); ``depths`` replaces the broker probe; ``now`` is the wall clock compared with
    log file times.
    """

    def __init__(
        self,
        paths: Paths,
        *,
        os: Optional[Any] = None,
        depths: Optional[Callable[[Dict[str, List[str]]], Dict]] = None,
        now: Callable[[], float] = time.time,
        out: Out = print,
    ) -> None:
        self.paths = paths
        self.os = os if os is not None else OSCalls()
        self.depths = depths if depths is not None else QueueProbe(paths).depths
        self.now = now
        self.out = out
        self.ns = argparse.Namespace(overrides=[])

    # -- helpers
    def available(self, t: Target) -> bool:
        return t.program in programs.ROLES

    def options(self, t: Target) -> Options:
        """The config's options (role defaults when the role exists).

        Raises:
            ConfigError: the config file is wrong.
        """
        if self.available(t):
            return programs.options(t.program, t.config, self.ns, self.paths)
        return load(t.program, t.config, (), self.paths)

    def instances(self, t: Target, o: Options, count: Optional[int] = None) -> Any:
        inst = programs.instances(t.program, t.config, o, self.paths, self.ns, os=self.os)
        if count is not None:
            inst.count = count
        return inst

    def state_dir(self, t: Target) -> Path:
        return self.paths.state(t.program, t.config)

    def _report(self, t: Target, report: Report) -> int:
        for oc in report.outcomes:
            pid = f" pid {oc.pid}" if oc.pid else ""
            detail = f": {oc.detail}" if oc.detail else ""
            self.out(f"{t.short} {t.config} instance {oc.n:02d}{pid}: {oc.action}{detail}")
        return int(report.exit_code)

    def _unavailable(self, t: Target) -> int:
        self.out(f"{t.short} {t.config}: skipped ({t.program} is not available yet)")
        return programs.EXIT_FAILURE

    # -- start / stop / restart
    def start(self, ts: Sequence[Target]) -> int:
        return self._launch(ts, "start")

    def _launch(self, ts: Sequence[Target], action: str) -> int:
        """``start`` or ``restart`` each target, marking it wanted for ``sanity``."""
        codes = [programs.EXIT_OK]
        for t in ts:
            if not self.available(t):
                codes.append(self._unavailable(t))
                continue
            o = self.options(t)
            mark_wanted(self.state_dir(t), int(o.instances))
            codes.append(self._report(t, getattr(self.instances(t, o), action)()))
        return max(codes)

    def stop(self, ts: Sequence[Target]) -> int:
        codes = [programs.EXIT_OK]
        for t in reversed(list(ts)):
            clear_wanted(self.state_dir(t))  # first, so a concurrent sanity leaves it alone
            o = self.options(t)
            codes.append(self._report(t, self.instances(t, o).stop()))
        return max(codes)

    def restart(self, ts: Sequence[Target]) -> int:
        return self._launch(ts, "restart")

    # -- status
    def probe(self, t: Target) -> ConfigStatus:
        """Everything ``dd status`` shows for ``t``, except the queue depth."""
        o = self.options(t)
        state = self.state_dir(t)
        count = wanted_count(state)
        expected = count if count is not None else int(o.instances)
        found = self.instances(t, o, expected).status()
        running = [s for s in found if s.state == RUNNING]
        logs = [mtime(self.paths.log_file(t.program, t.config, s.n)) for s in found]
        times = [m for m in logs if m is not None]
        limit = self.now() - hung_after(o)
        hung = tuple(
            s.n
            for s in running
            if (mtime(self.paths.log_file(t.program, t.config, s.n)) or 0.0) < limit
        )
        facts = instance_facts(state, range(1, expected + 1), [s.n for s in running])
        return ConfigStatus(
            t,
            expected=expected,
            running=len(running),
            wanted=count is not None,
            hung=hung,
            last_activity=max(times) if times else None,
            retry=retry_backlog(state),
            available=self.available(t),
            interval=summed_interval(facts),
            instances=facts,
        )

    def broken_row(self, t: Target, error: ConfigError) -> ConfigStatus:
        """The row of a config that cannot be read: its instances as their pidfiles say
        (started before the file was broken, they may still run)."""
        state = self.state_dir(t)
        count = wanted_count(state)
        found = Instances(
            t.program,
            t.config,
            count or 1,
            state,
            lambda n: self.paths.log_file(t.program, t.config, n),
            lambda n: [],
            os=self.os,
        ).status()
        running = [s.n for s in found if s.state == RUNNING]
        return ConfigStatus(
            t,
            expected=count or 0,
            running=len(running),
            wanted=count is not None,
            retry=retry_backlog(state),
            instances=instance_facts(state, [s.n for s in found if s.pid], running),
            error=str(error),
        )

    def status_rows(self, ts: Sequence[Target]) -> List[ConfigStatus]:
        """One row per target; a config that cannot be read is a "broken" row.

        Raises:
            SarraError: a pidfile holds garbage.
        """
        rows = []
        for t in ts:
            try:
                rows.append(self.probe(t))
            except ConfigError as e:
                rows.append(self.broken_row(t, e))
        asks: Dict[str, List[str]] = {}
        keys: List[Optional[Tuple[str, str]]] = []
        for row in rows:
            if row.error:
                keys.append(None)
                continue
            o = self.options(row.target)
            q = queue_of(o, self.state_dir(row.target))
            url = o.broker
            keys.append((url, q) if url and q else None)
            if url and q:
                asks.setdefault(url, []).append(q)
        depths = self.depths(asks) if asks else {}
        return [with_queue(row, depths.get(key) if key else None) for row, key in zip(rows, keys)]

    def status(self, ts: Sequence[Target]) -> int:
        """The table; exit 0 when every config runs, 2 when one is broken, else 3."""
        rows = self.status_rows(ts)
        for line in format_table(rows, self.now()):
            self.out(line)
        for r in rows:
            if r.error:
                self.out(f"{r.target.short} {r.target.config}: error: {r.error}")
        if not rows:
            self.out(f"no configurations in {self.paths.config_dir}")
        if any(r.error for r in rows):
            return programs.EXIT_USAGE
        ok = rows and all(r.ok for r in rows)
        return programs.EXIT_OK if ok else programs.EXIT_STOPPED

    # -- sanity
    def sanity(self, ts: Sequence[Target]) -> int:
        """Restart dead and hung instances of wanted configs; leave the others alone.
        A broken config is reported (exit 2) and the others are still seen to."""
        codes = [programs.EXIT_OK]
        for t in ts:
            if wanted_count(self.state_dir(t)) is None or not self.available(t):
                continue
            try:
                row = self.probe(t)
            except ConfigError as e:
                self.out(f"{t.short} {t.config}: error: {e}")
                codes.append(programs.EXIT_USAGE)
                continue
            inst = self.instances(t, self.options(t), row.expected)
            if row.hung:
                which = ", ".join(f"{n:02d}" for n in row.hung)
                self.out(f"{t.short} {t.config}: instance {which} hung (log idle), restarting")
                codes.append(self._report(t, inst.restart()))
            elif row.running < row.expected:
                self.out(f"{t.short} {t.config}: {row.running}/{row.expected} running, starting")
                codes.append(self._report(t, inst.start()))
        return max(codes)

    # -- list / log / cleanup / declare
    def list(self, ts: Sequence[Target], show: bool = False) -> int:
        for t in ts:
            if show:
                self.out(self.paths.config_file(t.program, t.config).read_text().rstrip("\n"))
                continue
            mark = "started" if wanted_count(self.state_dir(t)) is not None else "stopped"
            self.out(f"{t.short:<10} {t.config:<24} {mark}")
        return programs.EXIT_OK

    def log(self, t: Target, instance: int = 1, lines: int = 50, follow: bool = False) -> int:
        path = self.paths.log_file(t.program, t.config, instance)
        if not path.is_file():
            raise ConfigError(f"no log {path}")
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in deque(f, maxlen=lines):
                self.out(line.rstrip("\n"))
            while follow:
                line = f.readline()
                if line:
                    self.out(line.rstrip("\n"))
                else:
                    time.sleep(0.5)
        return programs.EXIT_OK

    def each(self, fn: Callable[..., int], ts: Sequence[Target]) -> int:
        codes = [programs.EXIT_OK]
        for t in ts:
            if self.available(t):
                codes.append(fn(t.program, t.config, self.ns, self.paths))
            else:
                codes.append(self._unavailable(t))
        return max(codes)


# ---------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dd",
        description="Run every sarra daemon configuration together: see man dd(8).",
    )
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("program", nargs="?", help="sara, shovel, subscribe, sender, log, watch or poll")
    p.add_argument("config", nargs="?", help="one configuration of that program")
    p.add_argument("instance", nargs="?", type=int, default=1, help="for log: instance number")
    p.add_argument("--system", action="store_true", help="the system's configs (/etc/sarra)")
    p.add_argument("-n", "--lines", type=int, default=50, help="for log: lines to show")
    p.add_argument("-f", "--follow", action="store_true", help="for log: keep reading")
    p.add_argument("-w", "--watch", action="store_true", help="for status: a live view")
    p.add_argument(
        "--interval", type=float, default=5.0, help="for status --watch: seconds between frames"
    )
    p.add_argument("--count", type=int, default=0, help="for status --watch: frames to draw")
    p.add_argument("--port", type=int, help="for metrics: serve on this port (0: any free)")
    p.add_argument("--bind", default="127.0.0.1", help="for metrics: address to serve on")
    return p


def run(ns: argparse.Namespace, service: Service) -> int:
    if ns.action == "log":
        if not (ns.program and ns.config):
            raise ConfigError("log: name the program and the config")
        (t,) = targets(service.paths, ns.program, ns.config)
        return service.log(t, ns.instance, ns.lines, ns.follow)
    if ns.action == "metrics":  # the configs read again at each scrape: new ones show up
        from sarra.service import metrics

        def every_row() -> List[ConfigStatus]:
            return service.status_rows(targets(service.paths, ns.program, ns.config))

        return metrics.run(every_row, ns.bind, ns.port, service.out)
    ts = targets(service.paths, ns.program, ns.config)
    if ns.action == "status" and ns.watch:
        from sarra.service import live

        return live.run(lambda: service.status_rows(ts), max(0.5, ns.interval), ns.count)
    table: Dict[str, Callable[[], int]] = {
        "start": lambda: service.start(ts),
        "stop": lambda: service.stop(ts),
        "restart": lambda: service.restart(ts),
        "status": lambda: service.status(ts),
        "sanity": lambda: service.sanity(ts),
        "list": lambda: service.list(ts, show=bool(ns.config)),
        "cleanup": lambda: service.each(programs.cleanup, ts),
        "declare": lambda: service.each(programs.declare, ts),
    }
    return table[ns.action]()


#: coreutils' dd(1): a ``dd`` that is ours must not break ``dd if=... of=...``
COREUTILS_DD = ("/usr/bin/dd", "/bin/dd")


def coreutils_call(args: Sequence[str]) -> bool:
    """True for coreutils dd operands (``if=x of=y bs=1M``), which none of ours look like."""
    return bool(args) and all("=" in a and not a.startswith("-") for a in args)


def _pass_to_coreutils(args: Sequence[str]) -> None:
    for path in COREUTILS_DD:
        if os.access(path, os.X_OK):
            os.execv(path, ["dd", *args])


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``dd`` (also installed as ``sarra``) itself; returns the exit status.

    Installed by pip as ``dd`` it comes before coreutils in a virtualenv's PATH, so a
    call with dd(1) operands is handed to coreutils unchanged.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    if argv is None and coreutils_call(args):
        _pass_to_coreutils(args)
    words = [a for a in args if not a.startswith("-")]
    if words and words[0] == "check":  # a plugin: its own grammar and exit statuses
        from sarra.service import check

        args.remove("check")
        return check.main(args, check_rows)
    ns = build_parser().parse_args(args)
    paths = Paths.system() if ns.system else Paths.from_env()
    try:
        return run(ns, Service(paths))
    except ConfigError as e:
        print(f"dd: error: {e}", file=sys.stderr)
        return programs.EXIT_USAGE
    except SarraError as e:
        print(f"dd: error: {e}", file=sys.stderr)
        log.debug("details", exc_info=True)
        return programs.EXIT_FAILURE
    except KeyboardInterrupt:
        return programs.EXIT_FAILURE


def entry() -> None:
    sys.exit(main())


def check_rows(ns: argparse.Namespace) -> List[ConfigStatus]:
    """The rows ``dd check`` evaluates (``ns``: its parsed arguments).

    Raises:
        ConfigError: no such program or config.  SarraError: a pidfile holds garbage.
    """
    paths = Paths.system() if ns.system else Paths.from_env()
    return Service(paths, out=lambda line: None).status_rows(targets(paths, ns.program, ns.config))


def check_entry() -> None:
    """``check_sarra``: ``dd check`` under the name Nagios configurations expect."""
    from sarra.service import check

    sys.exit(check.main(sys.argv[1:], check_rows, prog="check_sarra"))


if __name__ == "__main__":
    sys.exit(main())
