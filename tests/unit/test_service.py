"""``dd`` (sarra.service.supervisor) against a fake OS seam: no fork, no broker, in tmp_path."""

from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sarra.config.paths import Paths
from sarra.core.errors import ConfigError
from sarra.service import programs
from sarra.service import supervisor as service
from sarra.service.health import ConfigStatus, Target, format_table, retry_backlog

BROKER = "amqp://feeder@localhost/"


@dataclass
class FakeOS:
    """Spawned children write their pidfile at once, exit on SIGTERM, die on SIGKILL."""

    paths: Paths
    next_pid: int = 700
    alive_pids: set = field(default_factory=set)
    spawned: list = field(default_factory=list)
    kills: list = field(default_factory=list)
    now: float = 0.0

    def spawn(self, argv, log_path, env):
        program, config = argv[3], argv[-1]
        n = int(argv[argv.index("--instance") + 1])
        pid = self.next_pid
        self.next_pid += 1
        self.spawned.append((program, config, n))
        self.alive_pids.add(pid)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text("started\n")
        self.paths.pid_file(program, config, n).write_text(f"{pid}\n")
        return pid

    def kill(self, pid, sig):
        self.kills.append((pid, sig))
        self.alive_pids.discard(pid)

    def alive(self, pid):
        return pid in self.alive_pids

    def die(self, pid):
        """The process crashes: gone, its pidfile left behind."""
        self.alive_pids.discard(pid)

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths.under(tmp_path)


def add_config(paths: Paths, program: str, name: str, extra: str = "") -> None:
    d = paths.program_config_dir(program)
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.conf").write_text(f"broker {BROKER}\nexchange xpublic\n{extra}")


class Rig:
    def __init__(self, paths: Paths, depths=None) -> None:
        self.paths = paths
        self.os = FakeOS(paths)
        self.lines: list = []
        self.asked: list = []

        def fake_depths(wanted):
            self.asked.append(wanted)
            return depths(wanted) if depths else {}

        self.svc = service.Service(paths, os=self.os, depths=fake_depths, out=self.lines.append)

    def targets(self, program=None, config=None):
        return service.targets(self.paths, program, config)

    def pid(self, program: str, config: str, n: int = 1) -> int:
        return int(self.paths.pid_file(program, config, n).read_text())


def test_targets_list_every_daemon_config_pumps_first(paths):
    add_config(paths, "subscribe", "b")
    add_config(paths, "subscribe", "a")
    add_config(paths, "sara", "pump")
    add_config(paths, "post", "one_shot")
    got = service.targets(paths)
    assert [(t.program, t.config) for t in got] == [
        ("dd_sara", "pump"),
        ("dd_subscribe", "a"),
        ("dd_subscribe", "b"),
    ]


def test_targets_refuse_a_non_daemon_and_a_missing_config(paths):
    with pytest.raises(ConfigError, match="not a daemon"):
        service.targets(paths, "post")
    with pytest.raises(ConfigError, match="no configuration 'nope'"):
        service.targets(paths, "subscribe", "nope")


def test_disabled_config_renamed_off_is_not_a_target(paths):
    add_config(paths, "subscribe", "a")
    (paths.program_config_dir("subscribe") / "a.conf").rename(
        paths.program_config_dir("subscribe") / "a.conf.off"
    )
    assert service.targets(paths) == []


def test_start_marks_the_config_wanted_and_stop_clears_it(paths):
    add_config(paths, "subscribe", "a", "instances 2\n")
    rig = Rig(paths)
    assert rig.svc.start(rig.targets()) == 0
    state = paths.state("subscribe", "a")
    assert programs.wanted_count(state) == 2
    assert sorted(n for _, _, n in rig.os.spawned) == [1, 2]
    assert rig.svc.stop(rig.targets()) == 0
    assert programs.wanted_count(state) is None
    assert not rig.os.alive_pids


def test_start_twice_spawns_nothing_new(paths):
    add_config(paths, "subscribe", "a")
    rig = Rig(paths)
    rig.svc.start(rig.targets())
    rig.svc.start(rig.targets())
    assert len(rig.os.spawned) == 1
    assert any("already running" in line for line in rig.lines)


def test_status_table_shows_instances_queue_activity_and_retry_backlog(paths):
    add_config(paths, "subscribe", "a")
    add_config(paths, "subscribe", "b", "queue_name q_feeder.b\n")
    rig = Rig(paths, depths=lambda wanted: {(BROKER, "q_feeder.b"): 42})
    rig.svc.start(rig.targets("subscribe", "a"))
    retry = paths.state("subscribe", "a") / "retry.01"
    retry.mkdir()
    for i in range(3):
        (retry / f"entry{i}.json").write_text("{}")
    (retry / ".x.tmp").write_text("")
    rig.lines.clear()

    code = rig.svc.status(rig.targets())

    assert code == programs.EXIT_STOPPED  # b is stopped
    header, row_a, row_b = rig.lines
    assert header.split()[:4] == ["program", "config", "instances", "state"]
    assert row_a.split()[:5] == ["subscribe", "a", "1/1", "running", "-"]
    assert row_a.split()[-1] == "3"
    assert "ago" in row_a
    assert row_b.split() == ["subscribe", "b", "0/1", "stopped", "42", "-", "-", "-", "0"]
    assert rig.asked == [{BROKER: ["q_feeder.b"]}]


def test_status_exits_0_when_every_config_runs(paths):
    add_config(paths, "subscribe", "a")
    add_config(paths, "subscribe", "b")
    rig = Rig(paths)
    rig.svc.start(rig.targets())
    rig.lines.clear()
    assert rig.svc.status(rig.targets()) == 0


def test_status_with_no_configs_exits_3(paths):
    rig = Rig(paths)
    assert rig.svc.status(rig.targets()) == 3
    assert "no configurations" in rig.lines[0]


def test_status_lists_a_broken_config_as_broken_and_exits_2(paths):
    add_config(paths, "subscribe", "a", "no_such_option 1\nqueue_name q_feeder.a\n")
    add_config(paths, "subscribe", "b", "queue_name q_feeder.b\n")
    rig = Rig(paths)
    assert rig.svc.status(rig.targets()) == 2
    header, row_a, row_b, error = rig.lines
    assert row_a.split()[:4] == ["subscribe", "a", "0/-", "broken"]
    assert row_b.split()[:4] == ["subscribe", "b", "0/1", "stopped"]
    assert error.startswith("subscribe a: error:") and "no_such_option" in error
    assert rig.asked == [{BROKER: ["q_feeder.b"]}]  # not a's: its file cannot be read


def test_every_config_broken_is_no_longer_no_configurations(paths):
    add_config(paths, "subscribe", "a", "no_such_option 1\n")
    rig = Rig(paths)
    assert rig.svc.status(rig.targets()) == 2
    assert not any("no configurations" in line for line in rig.lines)
    assert "broken" in rig.lines[1]


def test_a_broken_config_still_shows_the_instances_that_run(paths):
    add_config(paths, "subscribe", "a")
    rig = Rig(paths)
    rig.svc.start(rig.targets())
    (paths.program_config_dir("subscribe") / "a.conf").write_text("instances many\n")
    row = rig.svc.status_rows(rig.targets())[0]
    assert (row.state, row.running, row.expected, row.wanted) == ("broken", 1, 1, True)


def test_status_after_a_crash_shows_no_negative_count(paths):
    """The dead process saved big counters; the new one a few: the interval is the new
    process's, and no cell of the table is negative."""
    import json

    from sarra.flow.stats import Stats

    add_config(paths, "subscribe", "a")
    rig = Rig(paths)
    rig.svc.start(rig.targets())
    f = paths.state("subscribe", "a") / "stats.01.json"
    old = Stats(pid=rig.pid("dd_subscribe", "a"), started=time.time() - 100)
    old.ok, old.bytes = 5000, 10**9
    old.save(f, time.time() - 50)
    old.save(f, time.time() - 20)
    rig.os.die(rig.pid("dd_subscribe", "a"))
    rig.svc.sanity(rig.targets())  # the new process
    new = Stats(pid=rig.pid("dd_subscribe", "a"), started=time.time() - 5)
    new.ok, new.bytes = 3, 300
    new.save(f, time.time())
    assert json.loads(f.read_text())["prev"]["ok"] == 0
    rig.lines.clear()
    assert rig.svc.status(rig.targets()) == 0
    row = rig.lines[1]
    assert "3 msgs, 300 Bytes in " in row, row
    assert not re.search(r"(^|\s)-\d", row), row


def test_dead_wanted_config_is_shown_dead_and_sanity_restarts_it(paths):
    add_config(paths, "subscribe", "a")
    rig = Rig(paths)
    rig.svc.start(rig.targets())
    rig.os.die(rig.pid("dd_subscribe", "a"))
    assert rig.svc.probe(Target("dd_subscribe", "a")).state == "dead"

    assert rig.svc.sanity(rig.targets()) == 0

    assert len(rig.os.spawned) == 2
    assert rig.svc.probe(Target("dd_subscribe", "a")).state == "running"


def test_sanity_goes_on_past_a_broken_config_and_exits_2(paths):
    add_config(paths, "sara", "bad")
    add_config(paths, "subscribe", "a")
    rig = Rig(paths)
    rig.svc.start(rig.targets())
    for program, config in (("dd_sara", "bad"), ("dd_subscribe", "a")):
        rig.os.die(rig.pid(program, config))
    (paths.program_config_dir("sara") / "bad.conf").write_text("no_such_option 1\n")
    rig.lines.clear()

    assert rig.svc.sanity(rig.targets()) == 2

    assert rig.lines[0].startswith("sara bad: error:")
    assert rig.svc.probe(Target("dd_subscribe", "a")).state == "running"


def test_sanity_never_restarts_a_stopped_config(paths):
    add_config(paths, "subscribe", "a")
    add_config(paths, "subscribe", "never")
    rig = Rig(paths)
    rig.svc.start(rig.targets("subscribe", "a"))
    rig.svc.stop(rig.targets("subscribe", "a"))
    # A crash after stop leaves a stale pidfile: still not wanted, still left alone.
    paths.pid_file("subscribe", "never", 1).parent.mkdir(parents=True)
    paths.pid_file("subscribe", "never", 1).write_text("99999\n")

    assert rig.svc.sanity(rig.targets()) == 0

    assert len(rig.os.spawned) == 1
    assert rig.lines[-1].endswith("stopped")


def test_sanity_keeps_the_started_instance_count_until_restart(paths):
    add_config(paths, "subscribe", "a")
    rig = Rig(paths)
    rig.svc.start(rig.targets())
    add_config(paths, "subscribe", "a", "instances 3\n")
    rig.os.die(rig.pid("dd_subscribe", "a"))

    rig.svc.sanity(rig.targets())

    assert [n for _, _, n in rig.os.spawned] == [1, 1]
    rig.svc.restart(rig.targets())
    assert programs.wanted_count(paths.state("subscribe", "a")) == 3
    assert sorted(n for _, _, n in rig.os.spawned[2:]) == [1, 2, 3]


def test_sanity_restarts_a_running_instance_whose_log_is_idle_too_long(paths):
    add_config(paths, "subscribe", "a", "heartbeat 60\nhousekeeping 60\n")
    rig = Rig(paths)
    rig.svc.start(rig.targets())
    old_pid = rig.pid("dd_subscribe", "a")
    log = paths.log_file("subscribe", "a", 1)
    idle = time.time() - 6 * 60
    os.utime(log, (idle, idle))
    assert rig.svc.probe(Target("dd_subscribe", "a")).hung == (1,)

    rig.svc.sanity(rig.targets())

    assert (old_pid, signal.SIGTERM) in rig.os.kills
    assert rig.pid("dd_subscribe", "a") != old_pid
    assert any("hung" in line for line in rig.lines)


def test_recent_log_activity_is_not_hung(paths):
    add_config(paths, "subscribe", "a", "heartbeat 60\nhousekeeping 60\n")
    rig = Rig(paths)
    rig.svc.start(rig.targets())
    recent = time.time() - 4 * 60
    os.utime(paths.log_file("subscribe", "a", 1), (recent, recent))
    rig.svc.sanity(rig.targets())
    assert len(rig.os.spawned) == 1


def test_hung_threshold_is_never_shorter_than_two_housekeeping_intervals(paths):
    add_config(paths, "subscribe", "a", "heartbeat 10\nhousekeeping 300\n")
    rig = Rig(paths)
    o = rig.svc.options(Target("dd_subscribe", "a"))
    assert service.hung_after(o) == 600


def test_program_not_available_yet_is_shown_na_and_skipped_by_start(paths, monkeypatch):

    monkeypatch.delitem(programs.ROLES, "dd_shovel", raising=False)
    add_config(paths, "shovel", "s")
    rig = Rig(paths)
    assert rig.svc.start(rig.targets()) == 1
    assert rig.os.spawned == []
    assert "not available yet" in rig.lines[0]
    rig.lines.clear()
    rig.svc.status(rig.targets())
    assert rig.lines[1].split()[3] == "n/a"


def test_log_prints_the_last_lines_of_an_instance_log(paths):
    add_config(paths, "subscribe", "a")
    log = paths.log_file("subscribe", "a", 2)
    log.parent.mkdir(parents=True)
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    rig = Rig(paths)
    rig.svc.log(Target("dd_subscribe", "a"), instance=2, lines=3)
    assert rig.lines == ["line 97", "line 98", "line 99"]


def test_list_shows_each_config_started_or_stopped(paths):
    add_config(paths, "subscribe", "a")
    add_config(paths, "subscribe", "b")
    rig = Rig(paths)
    rig.svc.start(rig.targets("subscribe", "a"))
    rig.lines.clear()
    rig.svc.list(rig.targets())
    assert [line.split() for line in rig.lines] == [
        ["subscribe", "a", "started"],
        ["subscribe", "b", "stopped"],
    ]


def test_retry_backlog_counts_entries_of_every_instance(tmp_path):
    for n, count in ((1, 2), (2, 1)):
        d = tmp_path / f"retry.{n:02d}"
        d.mkdir()
        for i in range(count):
            (d / f"e{i}.json").write_text("{}")
    assert retry_backlog(tmp_path) == 3
    assert retry_backlog(tmp_path / "missing") == 0


def test_format_table_aligns_columns():
    rows = [
        ConfigStatus(Target("dd_subscribe", "a_long_name"), 2, 1, True, queue=5, retry=0),
        ConfigStatus(Target("dd_sara", "p"), 1, 1, True, last_activity=95.0),
    ]
    header, first, second = format_table(rows, now=100.0)
    assert first.index("1/2") == header.index("instances") == second.index("1/1")
    assert "partial" in first and "5 seconds ago" in second


def test_main_refuses_log_without_a_config(paths, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(paths.config_dir))
    assert service.main(["log", "subscribe"]) == 2
    assert "name the program and the config" in capsys.readouterr().err


def test_coreutils_dd_operands_are_recognised_and_ours_are_not():
    from sarra.service.supervisor import coreutils_call

    assert coreutils_call(["if=/dev/zero", "of=/tmp/x", "bs=1M", "count=1"])
    assert not coreutils_call([])
    assert not coreutils_call(["status"])
    assert not coreutils_call(["start", "subscribe", "x=y"])
    assert not coreutils_call(["--help"])
