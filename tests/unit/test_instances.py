"""Process control against a fake OS seam: no fork, no real signals, a fake clock."""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sarra.core.errors import SarraError
from sarra.service import instances as inst
from sarra.service.instances import Instances, InstanceStatus, Pidfile, run_foreground, status_code
from sarra.service.pidfile import AlreadyRunning
from sarra.service.signals import SignalReceiver


@dataclass
class FakeProc:
    argv: list[str]
    log_path: Path
    pidfile: Path | None
    alive: bool = True
    ignores_term: bool = False


@dataclass
class FakeOS:
    """Stands in for OSCalls, like Supervisor's DummyOptions.

    A spawned "child" writes its pidfile at once (unless told to crash), exits on
    SIGTERM removing its pidfile (unless it ignores TERM) and dies on SIGKILL leaving
    its pidfile behind.
    """

    state_dir: Path
    now: float = 1000.0
    next_pid: int = 500
    procs: dict[int, FakeProc] = field(default_factory=dict)
    spawned: list[tuple[list[str], Path]] = field(default_factory=list)
    kills: list[tuple[int, int, float]] = field(default_factory=list)
    crash_output: dict[int, str] = field(default_factory=dict)
    stubborn: set[int] = field(default_factory=set)

    def spawn(self, argv, log_path, env):
        n = int(argv[-1])
        pid = self.next_pid
        self.next_pid += 1
        self.spawned.append((list(argv), log_path))
        pidfile = self.state_dir / f"i{n:02d}.pid"
        proc = FakeProc(argv, log_path, pidfile, ignores_term=n in self.stubborn)
        self.procs[pid] = proc
        if n in self.crash_output:
            with open(log_path, "a") as f:
                f.write(self.crash_output[n])
            proc.alive = False
        else:
            pidfile.write_text(f"{pid}\n")
        return pid

    def kill(self, pid, sig):
        self.kills.append((pid, sig, self.now))
        proc = self.procs.get(pid)
        if proc is None or not proc.alive:
            return
        if sig == signal.SIGKILL:
            proc.alive = False
        elif sig == signal.SIGTERM and not proc.ignores_term:
            proc.alive = False
            proc.pidfile.unlink(missing_ok=True)

    def alive(self, pid):
        proc = self.procs.get(pid)
        return proc is not None and proc.alive

    def time(self):
        return self.now

    def sleep(self, s):
        self.now += s

    def add_running(self, n: int) -> int:
        """A child started earlier by someone else: its pidfile exists, it is alive."""
        pid = self.next_pid
        self.next_pid += 1
        pidfile = self.state_dir / f"i{n:02d}.pid"
        self.procs[pid] = FakeProc(["earlier", str(n)], Path("/dev/null"), pidfile)
        pidfile.write_text(f"{pid}\n")
        return pid


@pytest.fixture
def fake(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    return FakeOS(state)


def make(fake, tmp_path, count=3, **kw):
    return Instances(
        "dd_subscribe",
        "cfg",
        count,
        fake.state_dir,
        log_path=lambda n: tmp_path / f"dd_subscribe_cfg_{n:02d}.log",
        argv=lambda n: ["dd_subscribe", "foreground", "cfg", "--instance", str(n)],
        os=fake,
        stop_timeout=10,
        **kw,
    )


def actions(report):
    return [(o.n, o.action) for o in report.outcomes]


def test_start_spawns_each_instance_with_its_argv_and_log(fake, tmp_path):
    report = make(fake, tmp_path).start()

    assert report.ok and report.exit_code == inst.EXIT_OK
    assert actions(report) == [(n, inst.STARTED) for n in (1, 2, 3)]
    assert fake.spawned == [
        (
            ["dd_subscribe", "foreground", "cfg", "--instance", str(n)],
            tmp_path / f"dd_subscribe_cfg_{n:02d}.log",
        )
        for n in (1, 2, 3)
    ]
    assert sorted(p.name for p in fake.state_dir.glob("*.pid")) == [
        "i01.pid",
        "i02.pid",
        "i03.pid",
    ]


def test_start_twice_spawns_nothing_new(fake, tmp_path):
    instances = make(fake, tmp_path)
    instances.start()
    report = instances.start()

    assert len(fake.spawned) == 3
    assert actions(report) == [(n, inst.ALREADY_RUNNING) for n in (1, 2, 3)]


def test_start_fills_in_only_the_missing_instances(fake, tmp_path):
    running = fake.add_running(2)
    report = make(fake, tmp_path).start()

    assert [argv[-1] for argv, _ in fake.spawned] == ["1", "3"]
    assert report.outcomes[1] == inst.Outcome(2, running, inst.ALREADY_RUNNING, inst.RUNNING)


def test_start_reports_an_instance_that_exits_at_once_with_its_log_tail(fake, tmp_path):
    log = tmp_path / "dd_subscribe_cfg_02.log"
    log.write_text("old run, not shown\n")
    fake.crash_output[2] = "Traceback (most recent call last):\nConfigError: cfg.conf:3: bad\n"

    report = make(fake, tmp_path).start()

    assert not report.ok and report.exit_code == inst.EXIT_FAILURE
    failed = report.outcomes[1]
    assert (failed.n, failed.action, failed.state) == (2, inst.START_FAILED, inst.FAILED)
    assert "ConfigError: cfg.conf:3: bad" in failed.detail
    assert "old run" not in failed.detail


def test_start_reports_a_program_that_cannot_be_executed(fake, tmp_path):
    def refuse(argv, log_path, env):
        raise FileNotFoundError(2, "No such file or directory", argv[0])

    fake.spawn = refuse
    report = make(fake, tmp_path, count=1).start()

    assert actions(report) == [(1, inst.START_FAILED)]
    assert "No such file or directory" in report.outcomes[0].detail


def test_start_replaces_a_stale_pidfile(fake, tmp_path):
    (fake.state_dir / "i01.pid").write_text("99999\n")  # no such fake process

    report = make(fake, tmp_path, count=1).start()

    assert actions(report) == [(1, inst.STARTED)]
    assert (fake.state_dir / "i01.pid").read_text().strip() == str(report.outcomes[0].pid)


def test_stop_sends_term_and_removes_nothing_left_behind(fake, tmp_path):
    instances = make(fake, tmp_path)
    instances.start()
    report = instances.stop()

    assert actions(report) == [(n, inst.TERMINATED) for n in (1, 2, 3)]
    assert {sig for _, sig, _ in fake.kills} == {signal.SIGTERM}
    assert list(fake.state_dir.glob("*.pid")) == []


def test_stop_kills_survivors_only_after_the_stop_timeout(fake, tmp_path):
    fake.stubborn.add(2)
    instances = make(fake, tmp_path)
    instances.start()
    began = fake.now
    report = instances.stop()

    assert actions(report) == [(1, inst.TERMINATED), (2, inst.KILLED), (3, inst.TERMINATED)]
    stubborn_pid = report.outcomes[1].pid
    sent = [(sig, at) for pid, sig, at in fake.kills if pid == stubborn_pid]
    assert [sig for sig, _ in sent] == [signal.SIGTERM, signal.SIGKILL]
    assert sent[1][1] - began >= instances.stop_timeout
    assert list(fake.state_dir.glob("*.pid")) == []  # the killed one's pidfile too


def test_stop_twice_is_harmless(fake, tmp_path):
    instances = make(fake, tmp_path)
    instances.start()
    instances.stop()
    report = instances.stop()

    assert actions(report) == [(n, inst.NOT_RUNNING) for n in (1, 2, 3)]
    assert report.ok


def test_stop_reports_a_process_that_survives_sigkill(fake, tmp_path):
    instances = make(fake, tmp_path, count=1)
    instances.start()
    fake.kill = lambda pid, sig: fake.kills.append((pid, sig, fake.now))  # unkillable

    report = instances.stop()

    assert actions(report) == [(1, inst.STOP_FAILED)]
    assert not report.ok


def test_status_codes_follow_lsb(fake, tmp_path):
    instances = make(fake, tmp_path)
    assert status_code(instances.status()) == inst.STATUS_STOPPED

    instances.start()
    statuses = instances.status()
    assert [s.state for s in statuses] == [inst.RUNNING] * 3
    assert status_code(statuses) == inst.STATUS_RUNNING

    fake.procs[statuses[0].pid].alive = False  # died without cleaning up
    statuses = instances.status()
    assert statuses[0] == InstanceStatus(1, statuses[0].pid, inst.STALE)
    assert status_code(statuses) == inst.STATUS_DEAD_PIDFILE


def test_partially_running_is_status_one(fake, tmp_path):
    fake.add_running(1)
    assert status_code(make(fake, tmp_path).status()) == inst.STATUS_DEAD_PIDFILE


def test_cleanup_removes_stale_and_garbage_pidfiles_only(fake, tmp_path):
    live = fake.add_running(1)
    (fake.state_dir / "i02.pid").write_text("99999\n")
    (fake.state_dir / "i03.pid").write_text("not a pid\n")

    report = make(fake, tmp_path).cleanup()

    assert actions(report) == [(2, inst.STALE_REMOVED), (3, inst.STALE_REMOVED)]
    assert [p.name for p in fake.state_dir.glob("*.pid")] == ["i01.pid"]
    assert (fake.state_dir / "i01.pid").read_text().strip() == str(live)


def test_status_refuses_a_garbage_pidfile_naming_its_path(fake, tmp_path):
    (fake.state_dir / "i01.pid").write_text("garbage")
    with pytest.raises(SarraError, match="i01.pid"):
        make(fake, tmp_path).status()


def test_start_with_a_smaller_count_stops_the_extra_instances(fake, tmp_path):
    make(fake, tmp_path, count=4).start()
    report = make(fake, tmp_path, count=2).start()

    assert actions(report) == [
        (1, inst.ALREADY_RUNNING),
        (2, inst.ALREADY_RUNNING),
        (3, inst.TERMINATED),
        (4, inst.TERMINATED),
    ]
    assert sorted(p.name for p in fake.state_dir.glob("*.pid")) == ["i01.pid", "i02.pid"]


def test_restart_stops_then_starts_every_instance(fake, tmp_path):
    instances = make(fake, tmp_path, count=2)
    instances.start()
    first = [s.pid for s in instances.status()]
    report = instances.restart()

    assert actions(report) == [
        (1, inst.TERMINATED),
        (1, inst.STARTED),
        (2, inst.TERMINATED),
        (2, inst.STARTED),
    ]
    assert set(first).isdisjoint(s.pid for s in instances.status())


def test_instance_states_refuse_undefined_transitions():
    one = inst._Instance(1, None, inst.STOPPED)
    one.transition(inst.STARTING)
    with pytest.raises(inst.InvalidTransition, match="starting to stopping"):
        one.transition(inst.STOPPING)


def test_a_second_start_waits_for_the_first_to_finish(fake, tmp_path):
    instances = make(fake, tmp_path)
    entered = threading.Event()
    release = threading.Event()
    finished = {}

    def slow_spawn(argv, log_path, env, _spawn=fake.spawn):
        entered.set()
        release.wait(5)
        return _spawn(argv, log_path, env)

    fake.spawn = slow_spawn
    first = threading.Thread(target=lambda: finished.update(first=instances.start()))
    first.start()
    assert entered.wait(5)
    second = make(fake, tmp_path)
    blocked = threading.Event()
    watcher = logging.Handler()
    watcher.emit = lambda record: "waiting for another" in record.getMessage() and blocked.set()
    logger = logging.getLogger("sarra.service.instances")
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(watcher)
    try:
        racer = threading.Thread(target=lambda: finished.update(second=second.start()))
        racer.start()
        assert blocked.wait(5)  # the second start is queued behind the lock
    finally:
        logger.removeHandler(watcher)
        logger.setLevel(old_level)
    release.set()
    first.join(5)
    racer.join(5)

    assert len(fake.spawned) == 3
    assert actions(finished["first"]) == [(n, inst.STARTED) for n in (1, 2, 3)]
    assert actions(finished["second"]) == [(n, inst.ALREADY_RUNNING) for n in (1, 2, 3)]


# -- Pidfile, with real files -------------------------------------------------------------


def test_pidfile_acquire_writes_our_pid_and_release_removes_it(tmp_path):
    path = tmp_path / "run" / "i01.pid"
    with Pidfile(path):
        assert path.read_text().strip() == str(os.getpid())
    assert not path.exists()
    assert list((tmp_path / "run").iterdir()) == []  # no temp file left over


def test_pidfile_refuses_when_the_named_process_is_alive(tmp_path):
    path = tmp_path / "i01.pid"
    path.write_text("4242\n")
    with pytest.raises(AlreadyRunning, match="4242"):
        Pidfile(path, alive=lambda pid: True).acquire()
    assert path.read_text() == "4242\n"


def test_pidfile_replaces_a_stale_one(tmp_path):
    path = tmp_path / "i01.pid"
    path.write_text("4242\n")
    Pidfile(path, alive=lambda pid: False).acquire()
    assert path.read_text().strip() == str(os.getpid())


def test_pidfile_with_garbage_is_an_error_naming_the_path(tmp_path):
    path = tmp_path / "i01.pid"
    path.write_text("hello\n")
    with pytest.raises(SarraError, match=r"i01\.pid.*hello"):
        Pidfile(path).acquire()


def test_pidfile_release_leaves_someone_elses_pidfile_alone(tmp_path):
    path = tmp_path / "i01.pid"
    pidfile = Pidfile(path)
    pidfile.acquire()
    path.write_text("4242\n")  # taken over after we were declared dead
    pidfile.release()
    assert path.read_text() == "4242\n"


# -- SignalReceiver and run_foreground -----------------------------------------------------


def test_signal_receiver_records_sigterm_and_wakes_the_waiter():
    with SignalReceiver() as rx:
        assert not rx.stop_requested
        timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM))
        timer.start()
        woke = rx.wait(30)
        timer.join()
        assert woke and rx.stop_requested
        assert rx.received == [signal.SIGTERM]


def test_signal_receiver_sighup_requests_a_reload_not_a_stop():
    with SignalReceiver() as rx:
        os.kill(os.getpid(), signal.SIGHUP)
        assert rx.wait(30)
        assert rx.reload_requested and not rx.stop_requested
        rx.clear_reload()
        assert not rx.reload_requested


def test_signal_receiver_wait_times_out_without_a_signal():
    with SignalReceiver() as rx:
        assert rx.wait(0.01) is False


def test_signal_receiver_restores_previous_handlers():
    before = signal.getsignal(signal.SIGTERM)
    with SignalReceiver():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


def test_run_foreground_holds_the_pidfile_while_main_runs(tmp_path):
    path = tmp_path / "i01.pid"
    seen = []

    def main(rx):
        seen.append(path.read_text().strip())
        rx.request_stop()
        assert rx.wait(30)
        return 7

    assert run_foreground("dd_subscribe", "cfg", 1, path, main) == 7
    assert seen == [str(os.getpid())]
    assert not path.exists()


def test_run_foreground_releases_the_pidfile_when_main_raises(tmp_path):
    path = tmp_path / "i01.pid"

    def main(rx):
        raise SarraError("boom")

    with pytest.raises(SarraError, match="boom"):
        run_foreground("dd_subscribe", "cfg", 1, path, main)
    assert not path.exists()


def test_an_unreaped_zombie_counts_as_dead():
    import subprocess

    from sarra.service.pidfile import is_zombie, pid_alive
    from tests.fixtures.waiting import wait_for

    child = subprocess.Popen(["true"])
    wait_for(lambda: is_zombie(child.pid), 10, "the child to exit unreaped", every=0.01)
    assert not pid_alive(child.pid)
    child.wait()
    assert not pid_alive(child.pid)
    assert pid_alive(os.getpid())
