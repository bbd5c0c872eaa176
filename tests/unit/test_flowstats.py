"""``dd status``'s last interval is never negative (issue 13, class 16), and counts that
exhaust the machine (``instances 999999``) are configuration errors."""

from __future__ import annotations

import json

import pytest

from sarra.config import options
from sarra.flow.stats import Stats, interval
from sarra.service.health import last_interval


def _saves(path, stats, *times):
    for t in times:
        stats.save(path, t)
    return json.loads(path.read_text())


def test_the_interval_is_what_this_process_did_between_its_saves(tmp_path):
    f = tmp_path / "stats.01.json"
    s = Stats(started=100.0)
    s.ok, s.bytes = 10, 1000
    s.save(f, 200.0)
    s.ok, s.failed, s.bytes = 15, 2, 1500
    data = json.loads((s.save(f, 500.0), f.read_text())[1])
    assert interval(data) == (7, 500, 300.0)


@pytest.mark.parametrize("old_counts", [(5, 0), (10_000, 3), (0, 0)])
def test_after_a_restart_the_interval_starts_at_the_new_process(tmp_path, old_counts):
    f = tmp_path / "stats.01.json"
    old = Stats(pid=1, started=10.0)
    old.ok, old.failed = old_counts
    old.bytes = 123456
    _saves(f, old, 50.0, 90.0)  # then the process crashes
    new = Stats(pid=2, started=100.0)
    new.ok, new.bytes = 3, 30
    data = _saves(f, new, 400.0)
    assert interval(data) == (3, 30, 300.0)
    assert last_interval(tmp_path) == (3, 30, 300.0)


def test_the_same_pid_after_a_restart_is_another_process(tmp_path):
    f = tmp_path / "stats.01.json"
    _saves(f, Stats(pid=7, started=1.0, ok=50), 5.0)
    assert interval(_saves(f, Stats(pid=7, started=9.0, ok=1), 20.0)) == (1, 0, 11.0)


def test_a_file_of_an_older_version_with_counts_gone_down_is_not_negative(tmp_path):
    data = {
        "now": {"t": 20.0, "ok": 1, "rejected": 0, "failed": 0, "bytes": 5},
        "prev": {"t": 10.0, "ok": 900, "rejected": 4, "failed": 2, "bytes": 10**9},
    }
    (tmp_path / "stats.01.json").write_text(json.dumps(data))
    msgs, nbytes, span = last_interval(tmp_path)
    assert msgs >= 0 and nbytes >= 0 and span >= 0


@pytest.mark.parametrize("name", ["instances", "threads"])
@pytest.mark.parametrize("bad", ["0", "-1", "101", "999999", "10**9"])
def test_process_counts_out_of_range_are_refused(name, bad):
    conv = options.OPTIONS[name].converter
    with pytest.raises(ValueError, match="out of range|not an integer"):
        conv(bad)


@pytest.mark.parametrize("name, good", [("instances", "1"), ("instances", "100"),
                                        ("threads", "8"), ("batch", "100000"),
                                        ("prefetch", "65535")])  # fmt: skip
def test_counts_in_range_are_kept(name, good):
    conv = options.OPTIONS[name].converter
    assert conv(good) == int(good)


@pytest.mark.parametrize("value", ["999999", "0"])
def test_instances_out_of_range_in_a_config_file_exits_2_with_one_clear_line(tmp_path, value):
    import os
    import subprocess
    import sys
    from pathlib import Path

    conf = tmp_path / "config" / "sarra" / "subscribe"
    conf.mkdir(parents=True)
    (conf / "x.conf").write_text(f"broker amqp://guest@localhost/\ninstances {value}\n")
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_CACHE_HOME=str(tmp_path / "cache"), HOME=str(tmp_path),
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "sarra.cli", "dd_subscribe", "start", "x"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"x.conf:2: option 'instances': '{value}' is out of range (1 to 100)" in done.stderr
    assert not (tmp_path / "cache" / "sarra" / "subscribe" / "x" / "i01.pid").exists()
