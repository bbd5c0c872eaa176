"""README's first command, ``tools/demo``, run as it is: a private vhost and user names.

The demo runs with ``DEMO_DIR`` in the test's tmp dir, ``DEMO_VHOST``/``DEMO_USER_PREFIX``
of its own (users are broker-wide), free ports, and ``DEMO_SETUP=0`` (the test machine
already went through ``tools/dev-setup``, which made ``.venv``).  It needs ``.venv/bin/dd``
(the pip-installed commands the README promises) and root for ``rabbitmqctl``.

:class:`DemoSwitch` is also the switch that ``tests/flow/test_user_guide.py`` runs the
guide against.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from tests.fixtures import rabbit as rmq
from tests.fixtures.require import require
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.flow, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
USERS = ("demo-admin", "feeder", "alice", "bob", "anonymous")
FILES = 13  # the sample tree of tools/demo


def free_port_pair() -> int:
    """A port p such that p and p + 1 are both free on 127.0.0.1 (the demo's two servers)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no two consecutive free ports")


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


class DemoSwitch:
    """One run of tools/demo in ``root`` with its own vhost, users and ports."""

    def __init__(self, root: Path) -> None:
        tag = f"t_demo_{uuid.uuid4().hex[:6]}"
        # user names take letters, digits and '-' only (dd_admin(8)): '_' would overlap
        self.root, self.vhost, self.prefix = root, tag, tag.replace("_", "-") + "-"
        self.port = free_port_pair()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "SARRA_"))}
        self.env.update(
            DEMO_DIR=str(root),
            DEMO_VHOST=self.vhost,
            DEMO_USER_PREFIX=self.prefix,
            DEMO_HTTP_PORT=str(self.port),
            DEMO_SETUP="0",
        )

    def user(self, name: str) -> str:
        return self.prefix + name

    def run_demo(self, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(ROOT / "tools" / "demo")], env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip

    def shell(self, script: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """``script`` in bash, in the demo operator's shell (``. $DEMO/env`` first)."""
        return subprocess.run(
            ["bash", "-c", f". {self.root}/env\n{script}"], env=self.env, capture_output=True,
            text=True, timeout=timeout,
        )  # fmt: skip

    def daemon_pids(self) -> Dict[str, int]:
        """``{pidfile name: pid}`` of the daemons' and the web servers' pidfiles."""
        found = {}
        for pidfile in list((self.root / "cache" / "sarra").glob("*/*/i*.pid")) + list(
            (self.root / "run").glob("*.pid")
        ):
            text = pidfile.read_text().split()
            if text and text[0].isdigit():
                found[str(pidfile.relative_to(self.root))] = int(text[0])
        return found

    def close(self) -> None:
        if (self.root / "env").exists():
            self.shell("dd stop", timeout=60)
        for pidfile in (self.root / "run").glob("*.pid"):
            try:
                os.kill(int(pidfile.read_text().strip()), 15)
            except (ValueError, OSError):
                pass
        for name in USERS:
            rmq.delete_user(self.user(name))
        rmq.delete_vhost(self.vhost)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (our child's child, not yet reaped) is dead too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def demo(rabbit, tmp_path: Path) -> Iterator[DemoSwitch]:
    require((VENV_BIN / "dd").exists(), "no .venv/bin/dd: run tools/dev-setup first")
    d = DemoSwitch(tmp_path / "demo")
    try:
        yield d
    finally:
        d.close()


def summary_blocks(out: str) -> Dict[str, List[str]]:
    """dd_log --summary's blocks (first line -> following indented lines) in ``out``."""
    blocks: Dict[str, List[str]] = {}
    current = None
    for line in out.splitlines():
        if re.match(r"^\S.* \(source \S+, \d+ reports?\)$", line):
            current = line
            blocks[current] = []
        elif current and line.startswith("  "):
            blocks[current].append(line.strip())
        else:
            current = None
    return blocks


def test_demo_runs_a_switch_delivers_the_tree_and_one_dd_stop_stops_everything(demo):
    r = demo.run_demo()
    out = r.stdout
    assert r.returncode == 0, out[-4000:] + r.stderr[-4000:]
    assert f"== OK: all {FILES} files arrived identical" in out
    cred = (demo.root / "config" / "sarra" / "credentials.conf").read_text()
    for name in ("feeder", "alice", "bob", "demo-admin"):
        assert f"amqp://{demo.user(name)}:" in cred
        assert f"{demo.user(name)}:" not in (demo.root / "config/sarra/admin.conf").read_text()
    # no password of credentials.conf appears in what the demo printed (but the public
    # one, anonymous:anonymous, which is the point of that account)
    for line in cred.splitlines():
        if f"{demo.user('anonymous')}:anonymous@" in line:
            continue
        password = line.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
        assert password not in out and password not in r.stderr

    # dd_log's view: every file (small, empty, multi-MB, odd names) went through the
    # switch's ingest (feeder) and reached bob
    blocks = summary_blocks(out)
    assert len(blocks) == FILES, out
    for first, rest in blocks.items():
        assert f"(source {demo.user('alice')}," in first
        taken = next(line for line in rest if line.startswith("received by:"))
        assert f"{demo.user('feeder')}@" in taken and f"{demo.user('bob')}@" in taken, rest
    names = "\n".join(blocks)
    for odd in ("empty.txt", "big.bin", "file #1 é.txt", "100% sure&q=1.txt", "naïve 日本.txt"):
        assert odd in names

    # dd status shows the demo's daemons running; the next steps are printed
    rows = {tuple(ln.split()[:4]) for ln in out.splitlines()}
    for program, config, n in (("sara", "ingest", "1/1"), ("shovel", "reports", "1/1"),
                               ("subscribe", "bob", "2/2")):  # fmt: skip
        assert (program, config, n, "running") in rows, out
    assert "dd stop" in out and "dd status" in out and f". {demo.root}/env" in out
    assert listening(demo.port) and listening(demo.port + 1)

    # rerunning starts afresh: the old daemons and web servers are stopped first
    old = demo.daemon_pids()
    assert len(old) == 6, old  # ingest, reports, bob x2, two web servers
    again = demo.run_demo()
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"== OK: all {FILES} files arrived identical" in again.stdout
    assert not [p for p in old.values() if alive(p)], old
    assert "stopping the previous demo" in again.stdout

    # one dd stop (the pip-installed dd, with the demo's XDG dirs) stops it all
    new = demo.daemon_pids()
    stop = demo.shell("dd stop")
    assert stop.returncode == 0, stop.stdout + stop.stderr
    wait_for(lambda: not [p for p in new.values() if alive(p)], 10, f"{new} to end")
    wait_for(lambda: not listening(demo.port) and not listening(demo.port + 1), 10, "no listener")
    status = demo.shell("dd status")
    assert status.returncode == 3, status.stdout + status.stderr
    assert all(" stopped " in ln for ln in status.stdout.splitlines()[1:]), status.stdout
    # `sarra` is the same command (the Debian package's name for it)
    assert demo.shell("sarra status").returncode == 3
