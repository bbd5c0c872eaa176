"""The flow under test, built stage by stage: source tree -> dd_post -> dd_subscribe (x3).

One sample tree (the HTTP server's root) is announced three times by dd_post, once per
transport, to ``xs_guest_<scheme>`` with a base URL of that scheme (http, sftp, file);
one dd_subscribe config per scheme downloads it to ``<tmp>/dest/<scheme>``.  Reports go
to ``xs_guest`` (the subscribers' default), read by a :class:`ReportTap`; the scheme of
a report's baseurl tells which subscriber sent it.

Adding a stage is a few lines: see :meth:`Flow.add_sara` and :meth:`Flow.add_watch`.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from tests.fixtures.flowkit import (
    Kit,
    Rabbit,
    ReportTap,
    diff_listings,
    md5_listing,
    print_counts,
    stray_temps,
)
from tests.fixtures.waiting import wait_for

SCHEMES = ("http", "sftp", "file")
GAVE_UP = r"sarra\.flow\.engine: giving up|\[ERROR\] sarra\.flow\.engine: failed "
#: ERROR lines pika itself logs while the broker is down and sarra reconnects (sarra's own
#: lines about it are WARNINGs).  Allowed only in tests that stop the broker.
PIKA_RECONNECT_NOISE = (
    r"\[ERROR\] pika\.adapters\.[a-z_.]+: .*(Connection|connect|Socket|Stream|"
    r"_create_connection)"
)


@dataclass
class Stage:
    """One daemon config of the flow, and what it is expected to produce."""

    program: str
    conf: str
    queue: str
    dest: Optional[Path] = None
    scheme: str = ""

    @property
    def base_scheme(self) -> str:
        """How the baseurls of this stage's reports start."""
        return "file:" if self.scheme == "file" else f"{self.scheme}://"


@dataclass
class Flow:
    kit: Kit
    rabbit: Rabbit
    vhost: str
    tree: Path
    base_urls: Dict[str, str]
    stages: List[Stage] = field(default_factory=list)
    posted: Dict[str, int] = field(default_factory=dict)
    tap: Optional[ReportTap] = None
    expected: Dict[str, str] = field(default_factory=dict)
    http: Any = None  # tests.fixtures.servers.HttpServer: fail_next(n, status)

    @property
    def url(self) -> str:
        return self.rabbit.url(self.vhost)

    def open_tap(self) -> ReportTap:
        self.tap = ReportTap(self.url, "xs_guest")
        return self.tap

    # -- stages
    def add_subscriber(
        self,
        scheme: str,
        extra: str = "",
        instances: int = 1,
        start: bool = True,
        exchange: str = "",
    ) -> Stage:
        """A dd_subscribe config ``sub_<scheme>`` fed by ``xs_guest_<scheme>``; declared,
        and started unless ``start`` is False (then ``kit.start`` it later)."""
        conf = f"sub_{scheme}"
        dest = self.kit.tmp / "dest" / scheme
        queue = f"q_guest.dd_subscribe.{conf}"
        # file: notices are read only below file_sources (issue 13): the trees posted here
        local = "" if scheme in ("http", "sftp") else f"file_sources {self.tree},{self.kit.tmp}\n"
        self.kit.write_config(
            "dd_subscribe",
            conf,
            f"broker {self.url}\nexchange {exchange or f'xs_guest_{scheme}'}\nqueue_name {queue}\n"
            f"directory {dest}\nmirror True\naccept .*\ninstances {instances}\n"
            f"heartbeat 10\nretry_delay 1\nhousekeeping 5\n{local}{extra}\n",
        )
        self.kit.run("dd_subscribe", "declare", conf)
        if start:
            self.kit.start("dd_subscribe", conf)
        stage = Stage("dd_subscribe", conf, queue, dest, scheme)
        self.stages.append(stage)
        return stage

    def add_sara(self, extra: str = "") -> Stage:
        """dd_sara ingesting ``xs_guest_http`` into ``<tmp>/pump``, re-announcing on xpublic."""
        pump = self.kit.tmp / "pump"
        self.base_urls.setdefault("pump", f"file://{pump}/")
        queue = "q_guest.dd_sara.pump"
        self.kit.write_config(
            "dd_sara",
            "pump",
            f"broker {self.url}\nexchange xs_guest_http\nqueue_name {queue}\n"
            f"post_broker {self.url}\npost_exchange xpublic\npost_base_dir {pump}\n"
            f"post_base_url {self.base_urls['pump']}\ndirectory {pump}\nmirror True\n"
            f"declare source guest\nsuppress_duplicates 300\nretry_delay 1\n"
            f"source_hosts * 127.0.0.1\n{extra}\n",  # servers on loopback: listed (SSRF)
        )
        self.kit.run("dd_sara", "declare", "pump")
        self.kit.start("dd_sara", "pump")
        stage = Stage("dd_sara", "pump", queue, pump, "pump")
        self.stages.append(stage)
        return stage

    def add_watch(self, watched: Path, extra: str = "") -> Stage:
        """dd_watch re-posting what lands below ``watched`` to ``xs_guest_watch``."""
        self.kit.write_config(
            "dd_watch",
            "rewatch",
            f"post_broker {self.url}\npost_exchange xs_guest_watch\npath {watched}\n"
            f"post_base_dir {watched}\npost_base_url file://{watched}/\ninflight .tmp\n{extra}\n",
        )
        self.kit.start("dd_watch", "rewatch")
        stage = Stage("dd_watch", "rewatch", "", watched, "watch")
        self.stages.append(stage)
        return stage

    # -- source
    def post(self, scheme: str, paths: Optional[List[Path]] = None, extra=()) -> None:
        """One ``dd_post`` run announcing ``paths`` (default the whole tree) over ``scheme``."""
        args = [
            "-pb", self.url, "-u", self.base_urls[scheme], "-pbd", str(self.tree),
            "--post_exchange_suffix", scheme, *extra,
            *[str(p) for p in (paths or [self.tree])],
        ]  # fmt: skip
        p = self.kit.run("dd_post", *args, timeout=300)
        n = sum(int(x) for x in _posted_counts(p.stderr + p.stdout))
        self.posted[scheme] = self.posted.get(scheme, 0) + n

    # -- settling
    def subscribers(self) -> List[Stage]:
        return [s for s in self.stages if s.program == "dd_subscribe"]

    def backlog(self) -> Dict[str, object]:
        """What is still moving: queue (ready, unacked) and retry entries per stage."""
        queues = self.rabbit.queues(self.vhost)
        out: Dict[str, object] = {}
        for s in self.stages:
            if s.queue:
                r, u = queues.get(s.queue, (0, 0))
                if r or u:
                    out[s.queue] = (r, u)
            n = self.kit.retry_backlog(s.program, s.conf)
            if n:
                out[f"retry {s.conf}"] = n
        return out

    def wait_settled(
        self,
        expected: Dict[str, str],
        timeout: float = 180,
        done: Callable[[], bool] = lambda: True,
    ) -> None:
        """Every destination has ``expected``, no queue or retry backlog, twice in a row."""
        quiet = [0]

        def settled() -> bool:
            if self.tap is not None:
                self.tap.drain()
            idle = not self.backlog() and done()
            complete = all(set(expected) <= set(md5_listing(s.dest)) for s in self.subscribers())
            quiet[0] = quiet[0] + 1 if idle else 0
            # complete and quiet; or quiet for long: then the checks say what is missing
            return (complete and quiet[0] >= 3) or quiet[0] >= 15

        wait_for(settled, timeout, f"flow to settle; backlog {self.backlog()}", every=1.0)

    # -- checks
    def check_trees(self, expected: Dict[str, str]) -> None:
        """Identical md5 listings and no temp file at every subscriber."""
        for s in self.subscribers():
            assert s.dest is not None
            got = md5_listing(s.dest)
            assert not diff_listings(expected, got), f"{s.conf}: {diff_listings(expected, got)}"
            assert stray_temps(s.dest) == [], f"{s.conf}: temps left {stray_temps(s.dest)}"

    def check_queues_empty(self) -> None:
        queues = self.rabbit.queues(self.vhost)
        for s in self.stages:
            if s.queue:
                assert queues.get(s.queue) == (0, 0), f"{s.queue}: {queues.get(s.queue)}"

    def counts(self, title: str, extra=()) -> str:
        """Print the counts table: posted, downloaded per path, reports, dups, retries."""
        tap = self.tap.drain() if self.tap is not None else []
        rows = [(f"posted via {k}", v) for k, v in sorted(self.posted.items())]
        for s in self.subscribers():
            codes = self.tap.codes(s.base_scheme) if self.tap else {}
            assert s.dest is not None
            rows += [
                (f"{s.conf}: files placed", len(md5_listing(s.dest)) - len(stray_temps(s.dest))),
                (f"{s.conf}: temp files left", len(stray_temps(s.dest))),
                (f"{s.conf}: reports by code", dict(sorted(codes.items()))),
                (f"{s.conf}: duplicates suppressed", codes.get(304, 0)),
                (f"{s.conf}: downloads logged", len(self.kit.log_lines(
                    s.program, s.conf, "INFO", r"\] sarra\.flow\.context: downloaded ")))
                 ,
                (f"{s.conf}: retries queued", len(self.kit.log_lines(
                    s.program, s.conf, "WARNING", "will retry"))),
                (f"{s.conf}: gave up", len(self.kit.log_lines(
                    s.program, s.conf, "", GAVE_UP))),
                (f"{s.conf}: log levels", self.kit.level_counts(s.program, s.conf)),
            ]  # fmt: skip
        rows.append(("reports seen in all", len(tap)))
        rows += list(extra)
        return print_counts(title, rows)


def _posted_counts(text: str) -> List[str]:
    import re

    return re.findall(r"posted (\d+) notices", text)


def kill_loop(
    kit: Kit,
    targets: List[Stage],
    rng: random.Random,
    until: Callable[[], bool],
    every=(0.3, 1.5),
    max_kills: int = 12,
) -> int:
    """SIGKILL random instances and start them again until ``until()``; returns kills."""
    kills = 0
    while not until() and kills < max_kills:
        time.sleep(rng.uniform(*every))  # the point: kills at random moments of the flow
        s = rng.choice(targets)
        if kit.kill(s.program, s.conf, rng) is not None:
            kills += 1
            time.sleep(rng.uniform(0, 0.5))  # and down for a random while
            kit.start(s.program, s.conf)
    return kills
