"""Killed workers: subscriber instances get SIGKILL mid-flow and are started again.

First a targeted kill: every instance of the HTTP subscriber is killed while a (rate
limited) MB-sized file is being downloaded, so a message is surely in hand at the kill.
Then random instances are killed every 0.3-1.5 s (fixed seed) until the flow is done.
Nothing may be missing, corrupt or partial, and no temp file may be left under a final
name: a message is acknowledged only after its file is renamed into place
(``prove_ack_order.py`` runs this same variant against a copy acking first: it fails).
"""

from __future__ import annotations

import collections
import os
import random
import signal
import threading

import pytest

from tests.fixtures.flowkit import stray_temps
from tests.fixtures.waiting import wait_for
from tests.flow.faults.scenario import SCHEMES, Flow, kill_loop

pytestmark = [pytest.mark.flow, pytest.mark.integration]


def kill_mid_download(flow: Flow, scheme: str = "http") -> int:
    """SIGKILL every instance of ``sub_<scheme>`` once a temp file shows it is writing."""
    stage = next(s for s in flow.subscribers() if s.scheme == scheme)
    wait_for(lambda: stray_temps(stage.dest), 60, f"a download in progress in {stage.dest}", 0.05)
    pids = flow.kit.pids(stage.program, stage.conf)
    for pid in pids.values():
        flow.kit.transcript.append(f"kill -9 {stage.conf} pid {pid} (mid-download)")

        os.kill(pid, signal.SIGKILL)
    flow.kit.start(stage.program, stage.conf)
    return len(pids)


def run_killed_workers(flow: Flow, dedup: bool, seed: int = 9, max_kills: int = 10) -> int:
    """The variant itself (prove_ack_order.py runs it against a patched copy too)."""
    flow.open_tap()
    flow.http.rate = 2_000_000  # bytes/s: the MB files are still moving when the kills come
    extra = "suppress_duplicates 300" if dedup else ""
    for scheme in SCHEMES:
        flow.add_subscriber(scheme, extra, instances=2)
    posting = threading.Thread(target=lambda: [flow.post(s) for _ in range(2) for s in SCHEMES])
    posting.start()
    kills = kill_mid_download(flow)
    kills += kill_loop(
        flow.kit,
        flow.subscribers(),
        random.Random(seed),
        until=lambda: not posting.is_alive() and not flow.backlog(),
        max_kills=max_kills,
    )
    posting.join()
    for s in flow.subscribers():  # whatever the last kill left down
        flow.kit.start(s.program, s.conf)
    flow.wait_settled(flow.expected, timeout=180)
    flow.counts(f"killed workers (dedup {dedup})", [("instances killed (SIGKILL)", kills)])
    return kills


def check_nothing_lost(flow: Flow) -> None:
    n = len(flow.expected)
    assert flow.posted == {"http": 2 * n, "sftp": 2 * n, "file": 2 * n}
    flow.check_trees(flow.expected)  # nothing missing, corrupt or partial; no temp left
    flow.check_queues_empty()
    for s in flow.subscribers():
        assert sorted(set(flow.tap.paths(201, s.base_scheme))) == sorted(flow.expected), s.conf
        assert flow.kit.errors(s.program, s.conf) == [], s.conf


def check_every_message_handled(flow: Flow) -> None:
    """Each of the two posts of every file was handled (201), none dropped by a kill.

    A message killed before its report comes back unacknowledged and is reported then,
    so under kills a path may be reported more than twice, never less.
    """
    for s in flow.subscribers():
        per_path = collections.Counter(flow.tap.paths(201, s.base_scheme))
        short = sorted(p for p in flow.expected if per_path[p] < 2)
        assert short == [], f"{s.conf}: {len(short)} posts never handled, e.g. {short[:3]}"


def test_instances_killed_mid_flow_lose_nothing_and_leave_no_partial_file(make_flow, main_rabbit):
    flow = make_flow(main_rabbit)
    assert run_killed_workers(flow, dedup=False) > 2
    check_nothing_lost(flow)
    check_every_message_handled(flow)


def test_instances_killed_mid_download_with_suppress_duplicates_lose_nothing(
    make_flow, main_rabbit
):
    flow = make_flow(main_rabbit)
    run_killed_workers(flow, dedup=True)
    check_nothing_lost(flow)
