"""Real children: spawn, pidfiles written by the children, SIGTERM, SIGKILL, status.

No broker needed, but these fork real processes, so they live with the integration tests.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from sarra.service import instances as inst
from sarra.service.instances import Instances, status_code

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

# argv: pidfile, instance number, log file, behaviour (normal | stubborn | crash)
CHILD = """
import signal, sys, time
from pathlib import Path
from sarra.service.instances import run_foreground
from sarra.logs.setup import setup_logging

pidfile, n, log_file, how = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
setup_logging(level="info", log_file=log_file, backups=1, rotate_s=86400,
              program="dd_test", instance=n)
print("child", n, "stderr reaches the log", file=sys.stderr, flush=True)
if how == "crash":
    raise SystemExit("dd_test: error: cfg.conf:3: unknown option 'bogus'")

def main(rx):
    if how == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:  # the point: a child that ignores SIGTERM and must be killed
            time.sleep(0.05)
    while not rx.stop_requested:
        rx.wait(30)
    return 0

sys.exit(run_foreground("dd_test", "cfg", n, pidfile, main))
"""


def make(tmp_path: Path, count: int, behaviour: dict[int, str], stop_timeout: float = 10.0):
    state = tmp_path / "state"
    logs = tmp_path / "logs"

    def log_path(n: int) -> Path:
        return logs / f"dd_test_cfg_{n:02d}.log"

    def argv(n: int) -> list[str]:
        pidfile = state / f"i{n:02d}.pid"
        how = behaviour.get(n, "normal")
        return [sys.executable, "-c", CHILD, str(pidfile), str(n), str(log_path(n)), how]

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return Instances(
        "dd_test",
        "cfg",
        count,
        state,
        log_path=log_path,
        argv=argv,
        stop_timeout=stop_timeout,
        start_timeout=20.0,
        env=env,
    )


@pytest.fixture
def cleanup_pids():
    pids: list[int] = []
    yield pids
    for pid in pids:  # never leave a stray child behind, whatever the test did
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_three_real_children_start_run_and_stop(tmp_path, cleanup_pids):
    instances = make(tmp_path, 3, {})
    report = instances.start()
    cleanup_pids.extend(o.pid for o in report.outcomes if o.pid)

    assert report.ok, report.outcomes
    statuses = instances.status()
    assert [s.state for s in statuses] == [inst.RUNNING] * 3
    assert status_code(statuses) == inst.STATUS_RUNNING
    for s in statuses:
        assert (tmp_path / "state" / f"i{s.n:02d}.pid").read_text().strip() == str(s.pid)

    assert [o.action for o in instances.start().outcomes] == [inst.ALREADY_RUNNING] * 3

    report = instances.stop()
    assert [o.action for o in report.outcomes] == [inst.TERMINATED] * 3
    assert status_code(instances.status()) == inst.STATUS_STOPPED
    assert list((tmp_path / "state").glob("*.pid")) == []
    log = (tmp_path / "logs" / "dd_test_cfg_02.log").read_text()
    assert "child 2 stderr reaches the log" in log
    assert "[INFO] sarra.service.instances: dd_test cfg instance 2 running as pid" in log
    assert "instance 2 exiting (code 0)" in log


def test_a_child_ignoring_sigterm_is_killed_after_the_stop_timeout(tmp_path, cleanup_pids):
    instances = make(tmp_path, 2, {2: "stubborn"}, stop_timeout=1.0)
    report = instances.start()
    cleanup_pids.extend(o.pid for o in report.outcomes if o.pid)
    assert report.ok, report.outcomes

    report = instances.stop()

    assert [(o.n, o.action) for o in report.outcomes] == [
        (1, inst.TERMINATED),
        (2, inst.KILLED),
    ]
    assert status_code(instances.status()) == inst.STATUS_STOPPED
    assert list((tmp_path / "state").glob("*.pid")) == []


def test_a_child_that_exits_at_once_is_reported_with_its_log(tmp_path, cleanup_pids):
    instances = make(tmp_path, 2, {1: "crash"})
    report = instances.start()
    cleanup_pids.extend(o.pid for o in report.outcomes if o.pid)

    assert not report.ok
    failed = report.outcomes[0]
    assert (failed.n, failed.action) == (1, inst.START_FAILED)
    assert "unknown option 'bogus'" in failed.detail
    assert report.outcomes[1].action == inst.STARTED
    assert status_code(instances.status()) == inst.STATUS_DEAD_PIDFILE
    instances.stop()
