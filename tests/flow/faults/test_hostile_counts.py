"""Issue 13, class 16 as an operator meets it: ``dd status`` after a crash, and a count
of processes that would fork-bomb the host.

* An instance killed with SIGKILL and started again: the counters of the new process
  restart at zero, so ``dd status`` used to show the old process's counts subtracted from
  the new ones (negative).  Now a restart begins a new interval.
* ``instances 999999`` (or 0, or -1, or 101): a configuration error, one line, exit 2,
  and no process started.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from tests.fixtures.waiting import wait_for
from tests.flow.conftest import count_files, make_small_files

pytestmark = [pytest.mark.flow, pytest.mark.integration]


def _pid(fe, config: str) -> int:
    path = fe.state_dir("subscribe", config) / "i01.pid"
    return int(path.read_text().split()[0]) if path.exists() else 0


def test_dd_status_after_a_crash_shows_no_negative_count(flowenv, http_server):
    fe, www = flowenv, http_server.root
    src, dst = www / "crash", fe.root / "dst"
    make_small_files(src, 40, size=256)
    fe.config(
        "subscribe", "counts",
        f"exchange xs_guest\ndirectory {dst}\nmirror True\nhousekeeping 3\n",
    )  # fmt: skip
    fe.run("dd_subscribe", "declare", "counts")
    fe.run("dd_subscribe", "start", "counts")
    stats = fe.state_dir("subscribe", "counts") / "stats.01.json"
    try:
        fe.post("-u", http_server.url, "-pbd", str(www), str(src))
        assert wait_for(lambda: count_files(dst) >= 40, 90, fail=False), count_files(dst)
        # a housekeeping save that holds the 40 files
        assert wait_for(lambda: stats.exists() and '"ok": 40' in stats.read_text(), 30, fail=False)
        old = _pid(fe, "counts")
        os.kill(old, signal.SIGKILL)
        assert wait_for(lambda: not os.path.exists(f"/proc/{old}"), 10, fail=False)
        saved = stats.stat().st_mtime_ns
        fe.run("dd_subscribe", "start", "counts")
        new = _pid(fe, "counts")
        assert new and new != old
        # the new process's first save (its counters start at 0): the one that came out
        # negative, asked for before its next save
        assert wait_for(lambda: stats.stat().st_mtime_ns != saved, 30, fail=False), (
            stats.read_text()
        )
        status = fe.run("dd_subscribe", "status", "counts", check=False)
        everything = subprocess.run(
            [sys.executable, "-m", "sarra.service.supervisor", "status"],
            env=fe.env,
            capture_output=True,
            text=True, timeout=60, cwd=fe.root,
        )  # fmt: skip
    finally:
        fe.run("dd_subscribe", "stop", "counts", check=False)
    assert status.returncode == 0 and "1/1 running" in status.stdout, status.stdout
    # the table: config, state, ..., the last interval's "N msgs, size"
    row = [ln for ln in everything.stdout.splitlines() if "counts" in ln]
    assert len(row) == 1 and "msgs" in row[0], everything.stdout + everything.stderr
    assert not re.search(r"-\d", row[0]), row[0]


@pytest.mark.parametrize("count", ["999999", "0", "-1", "101", "lots"])
def test_an_absurd_instance_count_is_a_config_error_and_starts_nothing(flowenv, count):
    fe = flowenv
    fe.config("subscribe", "bomb", f"exchange xs_guest\ndirectory {fe.root}/d\ninstances {count}\n")
    got = fe.run("dd_subscribe", "start", "bomb", check=False)
    assert got.returncode == 2, got.stdout + got.stderr
    lines = [ln for ln in got.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "instances" in lines[0] and count in lines[0], got.stderr
    assert "Traceback" not in got.stderr
    assert not list(fe.state_dir("subscribe", "bomb").glob("i*.pid"))
