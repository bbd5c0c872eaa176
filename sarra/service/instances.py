"""Instances of a daemon config: spawn, stop, status, pidfiles.

Owns the process-control side of ``start|stop|restart|status|cleanup|foreground``:

- :class:`OSCalls` is the one seam through which every spawn, kill and liveness check
  goes, so that tests swap in a fake and never fork (Supervisor routes the same calls
  through ``ServerOptions`` and tests with ``DummyOptions``).
- :class:`~sarra.service.pidfile.Pidfile` (re-exported here) is written by the *child* itself,
  atomically, and refuses to start over a live process.
- :class:`Instances` drives N children of one config from the parent (sr3 ``sr.py``
  ``_launch_instance``).  The parent never trusts its own memory: every operation reads
  the pidfiles, because ``start`` and ``status`` run in different short-lived processes.
- :func:`run_foreground` is what each child runs: pidfile, signal receiver, main loop.

States follow Supervisor ``states.py``: named constants and an explicit transition table.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import signal
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Callable

from sarra.core.errors import SarraError
from sarra.service.pidfile import AlreadyRunning, Pidfile, pid_alive, read_pid, remove_pidfile_if
from sarra.service.signals import SignalReceiver

if TYPE_CHECKING:
    import subprocess

log = logging.getLogger(__name__)

__all__ = [
    "AlreadyRunning",
    "InstanceStatus",
    "Instances",
    "InvalidTransition",
    "OSCalls",
    "Outcome",
    "Pidfile",
    "Report",
    "run_foreground",
    "status_code",
]

# Instance states.
STOPPED = "stopped"  # no pidfile
STARTING = "starting"  # spawned, pidfile not written yet
RUNNING = "running"  # pidfile names a live process
STOPPING = "stopping"  # SIGTERM sent, not gone yet
STALE = "stale"  # pidfile names a process that is gone
FAILED = "failed"  # spawned, exited before writing its pidfile

TRANSITIONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        STOPPED: (STARTING,),
        STARTING: (RUNNING, FAILED),
        RUNNING: (STOPPING,),
        STOPPING: (STOPPED,),
        STALE: (STOPPED,),
        FAILED: (STOPPED, STARTING),
    }
)

# `status` exit codes, as LSB init scripts (and Supervisor's LSBStatusExitStatuses).
STATUS_RUNNING = 0
STATUS_DEAD_PIDFILE = 1  # some instances stopped or stale
STATUS_STOPPED = 3

# What start/stop/cleanup did to one instance.
STARTED = "started"
ALREADY_RUNNING = "already running"
START_FAILED = "failed to start"
TERMINATED = "stopped"
KILLED = "killed"
NOT_RUNNING = "not running"
STALE_REMOVED = "stale pidfile removed"
STOP_FAILED = "failed to stop"

EXIT_OK = 0
EXIT_FAILURE = 1

_PIDFILE_RE = re.compile(r"^i(\d+)\.pid$")
_POLL_S = 0.1
_LOG_TAIL_LINES = 10


class InvalidTransition(SarraError):
    """An instance was asked to move between two states that are not connected."""


class OSCalls:
    """The real process-control calls; tests replace this object with a fake."""

    def __init__(self) -> None:
        # Keep our Popen objects so that their exit status is collected (no zombies,
        # no "still running" ResourceWarning when they are garbage-collected).
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def spawn(self, argv: list[str], log_path: Path, env: Mapping[str, str] | None) -> int:
        """Start ``argv`` in a new session, output appended to ``log_path``; return its pid.

        Raises:
            OSError: the program cannot be executed or the log cannot be opened.
        """
        import subprocess  # here: a one-shot command's start-up need not pay for it

        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as out:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                close_fds=True,
                start_new_session=True,
                env=dict(env) if env is not None else None,
            )
        self._children[child.pid] = child
        return child.pid

    def kill(self, pid: int, sig: int) -> None:
        """Send ``sig`` to ``pid``; a process that is already gone is not an error."""
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def alive(self, pid: int) -> bool:
        """True if ``pid`` exists and is not a zombie child of ours."""
        child = self._children.get(pid)
        if child is not None:
            return child.poll() is None
        try:
            reaped, _ = os.waitpid(pid, os.WNOHANG)
            if reaped == pid:
                return False
        except ChildProcessError:
            pass  # not our child: its parent reaps it
        return pid_alive(pid)

    def time(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class InstanceStatus:
    """What ``status`` found for instance ``n``."""

    n: int
    pid: int | None
    state: str


@dataclass(frozen=True)
class Outcome:
    """What an operation did to instance ``n``; ``detail`` explains failures."""

    n: int
    pid: int | None
    action: str
    state: str
    detail: str = ""


@dataclass
class Report:
    """The outcomes of one start/stop/restart/cleanup, in instance order."""

    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(o.action in (START_FAILED, STOP_FAILED) for o in self.outcomes)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_FAILURE


def status_code(statuses: list[InstanceStatus]) -> int:
    """LSB-style exit code: 0 all running, 3 none running and no stale pidfile, else 1."""
    states = {s.state for s in statuses}
    if states == {RUNNING}:
        return STATUS_RUNNING
    if not states or states == {STOPPED}:
        return STATUS_STOPPED
    return STATUS_DEAD_PIDFILE


class _Instance:
    """One instance during an operation: number, pid and state with checked moves."""

    def __init__(self, n: int, pid: int | None, state: str) -> None:
        self.n = n
        self.pid = pid
        self.state = state

    def transition(self, new: str) -> None:
        if new not in TRANSITIONS[self.state]:
            raise InvalidTransition(f"instance {self.n}: cannot go from {self.state} to {new}")
        self.state = new


class Instances:
    """The ``count`` instances of one config of ``program``.

    ``state_dir`` holds ``i<NN>.pid`` for each instance and the lock file that
    serialises start/stop/restart/cleanup of this config across processes.
    ``argv(n)`` is the command that runs instance ``n`` in foreground mode (it writes its
    own pidfile through :func:`run_foreground`); ``log_path(n)`` receives its output.
    """

    def __init__(
        self,
        program: str,
        config: str,
        count: int,
        state_dir: Path,
        log_path: Callable[[int], Path],
        argv: Callable[[int], list[str]],
        os: OSCalls | None = None,
        stop_timeout: float = 10.0,
        start_timeout: float = 5.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.program = program
        self.config = config
        self.count = count
        self.state_dir = Path(state_dir)
        self.log_path = log_path
        self.argv = argv
        self._os = os if os is not None else OSCalls()
        self.stop_timeout = stop_timeout
        self.start_timeout = start_timeout
        self.env = env

    @property
    def name(self) -> str:
        return f"{self.program}/{self.config}"

    def pidfile(self, n: int) -> Path:
        return self.state_dir / f"i{n:02d}.pid"

    # -- public operations --------------------------------------------------------------
    def status(self) -> list[InstanceStatus]:
        """Check every instance (and any left over beyond ``count``).

        Raises:
            SarraError: a pidfile holds garbage.
        """
        return [InstanceStatus(i.n, i.pid, i.state) for i in map(self._probe, self._numbers())]

    def start(self) -> Report:
        """Spawn each instance that is not running; stop those beyond ``count``.

        Running instances are left alone, so starting twice spawns nothing new.
        Raises:
            SarraError: a pidfile holds garbage.
        """
        with self._locked():
            return self._start()

    def stop(self) -> Report:
        """SIGTERM every instance, SIGKILL those alive after ``stop_timeout``."""
        with self._locked():
            return Report(self._stop(self._numbers()))

    def restart(self) -> Report:
        """Stop everything, then start ``count`` instances, under one lock."""
        with self._locked():
            stopped = self._stop(self._numbers())
            started = self._start()
            return Report(sorted(stopped + started.outcomes, key=lambda o: o.n))

    def cleanup(self) -> Report:
        """Remove pidfiles of dead instances, and pidfiles holding garbage."""
        with self._locked():
            report = Report()
            for n in self._on_disk():
                path = self.pidfile(n)
                try:
                    pid = read_pid(path)
                except SarraError as e:
                    log.warning("%s; removing it", e)
                    path.unlink(missing_ok=True)
                    report.outcomes.append(Outcome(n, None, STALE_REMOVED, STOPPED, "garbage"))
                    continue
                if pid is not None and not self._os.alive(pid):
                    remove_pidfile_if(path, pid)
                    report.outcomes.append(Outcome(n, pid, STALE_REMOVED, STOPPED))
            return report

    # -- helpers ------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "instances.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                log.info("%s: waiting for another start/stop to finish", self.name)
                fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _on_disk(self) -> list[int]:
        if not self.state_dir.is_dir():
            return []
        found = (_PIDFILE_RE.match(p.name) for p in self.state_dir.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def _numbers(self) -> list[int]:
        return sorted(set(range(1, self.count + 1)) | set(self._on_disk()))

    def _probe(self, n: int) -> _Instance:
        pid = read_pid(self.pidfile(n))
        if pid is None:
            return _Instance(n, None, STOPPED)
        return _Instance(n, pid, RUNNING if self._os.alive(pid) else STALE)

    def _remove_stale(self, inst: _Instance) -> None:
        assert inst.pid is not None
        log.info("%s: instance %d: removing stale pidfile (pid %d)", self.name, inst.n, inst.pid)
        remove_pidfile_if(self.pidfile(inst.n), inst.pid)
        inst.transition(STOPPED)
        inst.pid = None

    def _start(self) -> Report:
        extra = [n for n in self._on_disk() if n > self.count]
        outcomes = self._stop(extra) if extra else []
        starting: list[tuple[_Instance, int]] = []
        for n in range(1, self.count + 1):
            inst = self._probe(n)
            if inst.state == RUNNING:
                outcomes.append(Outcome(n, inst.pid, ALREADY_RUNNING, RUNNING))
                continue
            if inst.state == STALE:
                self._remove_stale(inst)
            offset = _file_size(self.log_path(n))
            inst.transition(STARTING)
            try:
                inst.pid = self._os.spawn(self.argv(n), self.log_path(n), self.env)
            except OSError as e:
                inst.transition(FAILED)
                outcomes.append(Outcome(n, None, START_FAILED, FAILED, f"cannot spawn: {e}"))
                continue
            log.info("%s: instance %d: spawned pid %d", self.name, n, inst.pid)
            starting.append((inst, offset))
        outcomes += self._await_started(starting)
        return Report(sorted(outcomes, key=lambda o: o.n))

    def _await_started(self, starting: list[tuple[_Instance, int]]) -> list[Outcome]:
        """Wait for each spawned child to write its pidfile, or to die trying."""
        outcomes = []
        deadline = self._os.time() + self.start_timeout
        pending = list(starting)
        while pending:
            for inst, offset in list(pending):
                written = read_pid(self.pidfile(inst.n))
                if written is not None and self._os.alive(written):
                    inst.transition(RUNNING)
                    outcomes.append(Outcome(inst.n, written, STARTED, RUNNING))
                elif inst.pid is not None and not self._os.alive(inst.pid):
                    inst.transition(FAILED)
                    tail = _log_tail(self.log_path(inst.n), offset)
                    outcomes.append(Outcome(inst.n, inst.pid, START_FAILED, FAILED, tail))
                else:
                    continue
                pending.remove((inst, offset))
            if not pending or self._os.time() >= deadline:
                break
            self._os.sleep(_POLL_S)
        for inst, _ in pending:
            note = f"alive, but no pidfile after {self.start_timeout:g}s"
            outcomes.append(Outcome(inst.n, inst.pid, STARTED, STARTING, note))
        return outcomes

    def _stop(self, numbers: list[int]) -> list[Outcome]:
        outcomes = []
        stopping = []
        for inst in map(self._probe, numbers):
            if inst.state == STOPPED:
                outcomes.append(Outcome(inst.n, None, NOT_RUNNING, STOPPED))
            elif inst.state == STALE:
                pid = inst.pid
                self._remove_stale(inst)
                outcomes.append(Outcome(inst.n, pid, STALE_REMOVED, STOPPED))
            else:
                assert inst.pid is not None
                inst.transition(STOPPING)
                log.info("%s: instance %d: sending SIGTERM to %d", self.name, inst.n, inst.pid)
                self._os.kill(inst.pid, signal.SIGTERM)
                stopping.append(inst)
        survivors = self._wait_gone(stopping, self.stop_timeout, TERMINATED, outcomes)
        for inst in survivors:
            assert inst.pid is not None
            log.warning(
                "%s: instance %d: pid %d still alive after %gs, sending SIGKILL",
                *(self.name, inst.n, inst.pid, self.stop_timeout),
            )
            self._os.kill(inst.pid, signal.SIGKILL)
        for inst in self._wait_gone(survivors, self.stop_timeout, KILLED, outcomes):
            outcomes.append(
                Outcome(inst.n, inst.pid, STOP_FAILED, STOPPING, "still alive after SIGKILL")
            )
        return sorted(outcomes, key=lambda o: o.n)

    def _wait_gone(
        self, insts: list[_Instance], timeout: float, action: str, outcomes: list[Outcome]
    ) -> list[_Instance]:
        """Poll until each instance's process is gone; return those still alive."""
        deadline = self._os.time() + timeout
        pending = list(insts)
        while pending:
            for inst in list(pending):
                assert inst.pid is not None
                if self._os.alive(inst.pid):
                    continue
                # A clean exit removes its own pidfile; a killed one cannot.
                remove_pidfile_if(self.pidfile(inst.n), inst.pid)
                inst.transition(STOPPED)
                outcomes.append(Outcome(inst.n, inst.pid, action, STOPPED))
                pending.remove(inst)
            if not pending or self._os.time() >= deadline:
                break
            self._os.sleep(_POLL_S)
        return pending


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _log_tail(path: Path, offset: int, lines: int = _LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines written to ``path`` after ``offset`` (for start failures)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError as e:
        return f"(cannot read {path}: {e.strerror})"
    text = data.decode("utf-8", errors="replace").rstrip("\n")
    if not text:
        return f"exited at once without output (see {path})"
    return "\n".join(text.splitlines()[-lines:])


def run_foreground(
    program: str,
    config: str,
    instance: int,
    pidfile_path: Path | None,
    main: Callable[[SignalReceiver], int],
) -> int:
    """Run one instance in this process: pidfile, signal receiver, ``main``; return its code.

    The pidfile (skipped when ``pidfile_path`` is None) is released in a ``finally``, so
    a clean exit or an exception both remove it; only SIGKILL leaves it behind.
    Raises:
        AlreadyRunning: the pidfile names another live process.
        SarraError: the pidfile holds garbage or cannot be written.
    """
    pidfile = Pidfile(pidfile_path) if pidfile_path is not None else None
    if pidfile is not None:
        pidfile.acquire()
    try:
        with SignalReceiver() as receiver:
            log.info("%s %s instance %d running as pid %d", program, config, instance, os.getpid())
            code = main(receiver)
            log.info("%s %s instance %d exiting (code %d)", program, config, instance, code)
            return code
    finally:
        if pidfile is not None:
            pidfile.release()
