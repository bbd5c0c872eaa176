"""Fixtures for end-to-end flow tests: the real ``dd_*`` commands, as a user runs them.

Each test gets ``flowenv``: its own vhost (from the ``vhost`` fixture of
``tests/conftest.py``), its own HOME / XDG_CONFIG_HOME / XDG_CACHE_HOME under the test's
tmp dir, a ``credentials.conf`` (mode 0600) holding the broker password, and helpers to
write configs, run commands, start foreground subscribers, wait for a condition with a
bounded loop, and list a tree with md5 sums.

Run with ``SARRA_TEST_VHOST_PREFIX=t_flow3 python -m pytest -q -m flow tests/flow``.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from tests.fixtures.servers import ftp_server, http_server, sftp_server, web_server  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
INFLIGHT_SUFFIX = ".tmp"


def md5_of(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def listing(root: Path) -> Dict[str, str]:
    """``{relative path: md5 | "-> target"}`` of every file and symlink below ``root``."""
    out: Dict[str, str] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            out[rel] = f"-> {os.readlink(p)}" if p.is_symlink() else md5_of(p)
    return out


def count_files(root: Path) -> int:
    """Files and symlinks below ``root`` that are not inflight (``.tmp``) names."""
    n = 0
    for _dirpath, _dirs, files in os.walk(root):
        n += sum(1 for f in files if not f.endswith(INFLIGHT_SUFFIX))
    return n


def inflight_files(root: Path) -> List[str]:
    return [
        os.path.join(d, f) for d, _s, files in os.walk(root) for f in files
        if f.endswith(INFLIGHT_SUFFIX)
    ]  # fmt: skip


ODD_NAMES = [
    "plain.txt",
    "with space.txt",
    "hash#1.txt",
    "many...dots..txt",
    "100% done.txt",
    "%zz.dat",
    "unicodé ñ 日本.txt",
    "q?x&y+z;w=1.txt",
    ".hidden",
    "trailing.",
    "a'quote\".txt",
]
ODD_DIRS = ["", "dir 1", "dir#2", "deep/a/b/c/d", "ünï", "x.y.z", "sp ace/in ner"]


def make_tree(root: Path, count: int, big: int = 0, seed: int = 3) -> int:
    """Write ``count`` files with odd names (some empty) below ``root``, plus one file of
    ``big`` bytes if ``big``; returns the number of files written."""
    rnd = random.Random(seed)
    n = 0
    for i in range(count):
        d = root / ODD_DIRS[i % len(ODD_DIRS)]
        d.mkdir(parents=True, exist_ok=True)
        name = ODD_NAMES[i % len(ODD_NAMES)]
        stem, dot, ext = name.rpartition(".")
        name = f"{stem}{i}{dot}{ext}" if stem else f"{name}{i}"
        size = 0 if i % 17 == 0 else rnd.choice((1, 100, 1000, 4096, 20000))
        (d / name).write_bytes(rnd.randbytes(size))
        n += 1
    if big:
        with open(root / "big file #1.bin", "wb") as f:
            left = big
            while left > 0:
                chunk = os.urandom(min(1 << 22, left))
                f.write(chunk)
                left -= len(chunk)
        n += 1
    return n


def make_small_files(root: Path, count: int, size: int = 1024, per_dir: int = 500) -> None:
    rnd = random.Random(count)
    for i in range(count):
        d = root / f"d{i // per_dir:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.dat").write_bytes(rnd.randbytes(size))


@dataclass
class FlowEnv:
    """One test's user account: configs, credentials, state, logs, broker vhost."""

    root: Path
    vhost: str
    env: Dict[str, str]
    procs: List[subprocess.Popen] = field(default_factory=list)

    @property
    def broker(self) -> str:
        """Broker URL without password (credentials.conf has it)."""
        return f"amqp://guest@localhost/{self.vhost}"

    @property
    def config_dir(self) -> Path:
        return Path(self.env["XDG_CONFIG_HOME"]) / "sarra"

    @property
    def log_dir(self) -> Path:
        return Path(self.env["XDG_CACHE_HOME"]) / "sarra" / "log"

    def state_dir(self, short: str, config: str) -> Path:
        return Path(self.env["XDG_CACHE_HOME"]) / "sarra" / short / config

    def add_credentials(self, line: str) -> None:
        path = self.config_dir / "credentials.conf"
        with open(path, "a") as f:
            f.write(line.rstrip("\n") + "\n")
        path.chmod(0o600)

    def config(self, short: str, name: str, text: str) -> Path:
        d = self.config_dir / short
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{name}.conf"
        path.write_text(f"broker {self.broker}\n" + text if short != "post" else text)
        return path

    def argv(self, program: str, *args: str) -> List[str]:
        return [sys.executable, "-m", "sarra.cli", program, *args]

    def run(
        self, program: str, *args: str, timeout: float = 120, check: bool = True, **kw
    ) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            self.argv(program, *args), env=self.env, capture_output=True, text=True,
            timeout=timeout, cwd=self.root, **kw,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{program} {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-5000:]}"
            )
        return proc

    def post(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run("dd_post", "-pb", self.broker, *args, **kw)

    def foreground(
        self, config: str, log_name: Optional[str] = None, program: str = "dd_subscribe"
    ) -> subprocess.Popen:
        """``<program> foreground config`` in the background, output to a log file."""
        log = self.root / (log_name or f"{config}.foreground.log")
        proc = subprocess.Popen(
            self.argv(program, "foreground", config), env=self.env, cwd=self.root,
            stdout=open(log, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        proc.log_path = log  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def terminate(self, proc: subprocess.Popen, timeout: float = 30) -> int:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            raise AssertionError(f"pid {proc.pid} ignored SIGTERM for {timeout} s") from None

    def log_text(self, proc: subprocess.Popen) -> str:
        return Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def flowenv(vhost: str, tmp_path: Path) -> Iterator[FlowEnv]:
    home = tmp_path / "home"
    for sub in ("home", "config", "cache"):
        (tmp_path / sub).mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SARRA_", "XDG_", "PYTHON"))}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        PYTHONPATH=str(REPO),
        PYTHONDONTWRITEBYTECODE="1",
    )
    fe = FlowEnv(root=tmp_path, vhost=vhost, env=env)
    fe.config_dir.mkdir(parents=True)
    fe.add_credentials("amqp://guest:guest@localhost/")
    try:
        yield fe
    finally:
        fe.close()
