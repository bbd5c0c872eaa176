"""Fixtures for the interoperability tests against MetPX-Sarracenia v2 (spec section 16).

v2 lives in its own virtualenv made by ``tools/v2env`` (``$SARRA_V2ENV``, default
``<repo>/.v2env``).  Without it these tests skip, unless the environment variable CI is
set: then they fail, so that CI cannot go green by skipping (.ci/run must run
``tools/v2env`` first).

Isolation: every test gets a vhost literally named ``/t_interop_<random>`` (leading
slash), which v2 reaches as ``amqp://guest:guest@localhost/t_interop_...`` and sarra
(like pika) as ``amqp://guest:guest@localhost/%2Ft_interop_...`` (spec 10.6); v2 and sarra
get different HOME and XDG directories, since both keep state under ``~/.config/sarra``.

``lab`` (the main fixture) is a :class:`Lab`: data directory served by the loopback
range HTTP server, download directories, config writers, process starters and a
capture queue that records every message on ``xs_guest``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from tests.fixtures import rabbit as rmq
from tests.fixtures.require import require
from tests.fixtures.servers import HttpServer, http_server  # noqa: F401  (fixture)
from tests.fixtures.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
V2_PACKAGE = "metpx-sarracenia==2.24.8.post2"
EXCHANGE = "xs_guest"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "interop: runs MetPX-Sarracenia v2 side by side (needs tools/v2env)"
    )


def v2env_path() -> Path:
    """Where ``tools/v2env`` puts (or put) the v2 virtualenv."""
    return Path(os.environ.get("SARRA_V2ENV") or REPO / ".v2env")


@pytest.fixture(scope="session")
def v2bin() -> Path:
    """The ``bin`` directory of the v2 venv; skips (fails under CI) when it is missing."""
    env = v2env_path()
    ready = (env / ".v2env-complete").exists() and (env / "bin" / "sr_subscribe").exists()
    require(ready, f"no MetPX-Sarracenia v2 venv at {env} (run tools/v2env to make it)")
    return env / "bin"


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@dataclass
class Captured:
    """One message seen on the capture queue."""

    topic: str
    headers: Dict[str, Any]
    body: str

    @property
    def fields(self) -> List[str]:
        return self.body.split()


class Capture:
    """An exclusive queue bound with ``#`` to ``xs_guest``: records every post and report.

    Declaring the exchange here also lets v2 bind at once (it retries with back-off when
    the exchange is missing), and gives sarra's mandatory publishes a route.
    """

    def __init__(self, url: str) -> None:
        import pika

        self.conn = pika.BlockingConnection(pika.URLParameters(url))
        self.ch = self.conn.channel()
        self.ch.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
        self.queue = self.ch.queue_declare("", exclusive=True).method.queue
        self.ch.queue_bind(self.queue, EXCHANGE, routing_key="#")
        self.seen: List[Captured] = []

    def drain(self) -> List[Captured]:
        while True:
            method, props, body = self.ch.basic_get(self.queue, auto_ack=True)
            if method is None:
                return self.seen
            self.seen.append(
                Captured(method.routing_key, dict(props.headers or {}), body.decode("utf-8"))
            )

    def posts(self) -> List[Captured]:
        return [m for m in self.drain() if m.topic.startswith("v02.post")]

    def reports(self) -> List[Captured]:
        return [m for m in self.drain() if m.topic.startswith("v02.report")]

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - teardown of a possibly dead connection
            pass


@dataclass
class Lab:
    """Directories, URLs and process control for one interop test."""

    root: Path
    vhost: str
    http: HttpServer
    v2bin: Path
    capture: Capture
    procs: List[subprocess.Popen] = field(default_factory=list)

    # ---- places
    @property
    def data(self) -> Path:
        """Served by the range HTTP server at :attr:`base_url`; ``post_base_dir``."""
        return self.http.root

    @property
    def base_url(self) -> str:
        return self.http.url

    @property
    def v2_url(self) -> str:
        return f"amqp://guest:guest@localhost/{self.vhost.lstrip('/')}"

    @property
    def dd_url(self) -> str:
        return rmq.amqp_url(self.vhost)

    def home(self, who: str) -> Path:
        return self.root / f"home_{who}"

    # ---- configs
    def v2_conf(self, kind: str, name: str, text: str) -> Path:
        path = self.home("v2") / ".config" / "sarra" / kind / f"{name}.conf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def dd_conf(self, kind: str, name: str, text: str) -> Path:
        path = self.home("dd") / ".config" / "sarra" / kind / f"{name}.conf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    # ---- processes
    def env(self, who: str) -> Dict[str, str]:
        home = self.home(who)
        env = dict(os.environ)
        env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
        env.update(XDG_CACHE_HOME=str(home / ".cache"), XDG_DATA_HOME=str(home / ".local"))
        if who == "dd":
            env["PYTHONPATH"] = str(REPO)
        else:
            env.pop("PYTHONPATH", None)
            env["PATH"] = f"{self.v2bin}:{env.get('PATH', '')}"
        return env

    def command(self, who: str, program: str, *args: str) -> List[str]:
        if who == "dd":
            return [sys.executable, "-m", "sarra.cli", program, *args]
        return [str(self.v2bin / program), *args]

    def run(self, who: str, program: str, *args: str, timeout: float = 60) -> str:
        """Run to completion; fails the test on a non-zero exit.  Returns the output."""
        proc = subprocess.run(
            self.command(who, program, *args), env=self.env(who), cwd=self.root,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
        )  # fmt: skip
        if proc.returncode != 0:
            pytest.fail(f"{program} {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}")
        return proc.stdout

    def start(self, who: str, program: str, *args: str) -> Path:
        """Start a daemon in the foreground (ended at teardown); returns its log path."""
        log = self.root / f"{who}_{program}_{len(self.procs)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                self.command(who, program, *args), env=self.env(who), cwd=self.root,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.procs.append(proc)
        return log

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def wait_bound(self, prefix: str, timeout: float = 30) -> str:
        """Wait until a queue named ``prefix...`` is bound to ``xs_guest``; its name."""

        def bound() -> Optional[str]:
            out = rmq.rabbitmqctl(
                "list_bindings", "-p", self.vhost, "source_name", "destination_name",
                "--no-table-headers",
            )  # fmt: skip
            for line in out.splitlines():
                src, _, dest = line.partition("\t")
                if src == EXCHANGE and dest.startswith(prefix):
                    return dest
            return None

        return wait_for(bound, timeout, f"a queue {prefix}* bound to {EXCHANGE}", every=0.5)

    # ---- v2 standard configs (spec 16.5 / 16.6)
    def v2_subscriber(self, name: str, directory: Path, extra: str = "") -> None:
        self.v2_conf(
            "subscribe", name,
            f"broker {self.v2_url}\nexchange {EXCHANGE}\ntopic_prefix v02.post\n"
            f"subtopic #\ndirectory {directory}\nmirror True\naccept .*\n{extra}",
        )  # fmt: skip

    def v2_poster(self, name: str, extra: str = "") -> None:
        self.v2_conf(
            "post", name,
            f"post_broker {self.v2_url}\npost_exchange {EXCHANGE}\n"
            f"post_base_url {self.base_url}\npost_base_dir {self.data}\n{extra}",
        )  # fmt: skip

    def dd_subscriber(self, name: str, directory: Path, extra: str = "") -> None:
        self.dd_conf(
            "subscribe", name,
            f"broker {self.dd_url}\nexchange {EXCHANGE}\ntopic_prefix v02.post\n"
            f"subtopic #\ndirectory {directory}\nmirror True\naccept .*\n{extra}",
        )  # fmt: skip

    def dd_post(self, *paths: Path, extra: tuple = ()) -> str:
        return self.run(
            "dd", "dd_post", "-pb", self.dd_url, "-pe", EXCHANGE, "-u", self.base_url,
            "-pbd", str(self.data), *extra, *map(str, paths),
        )  # fmt: skip


def dump(messages: List[Captured]) -> str:
    return json.dumps([m.__dict__ for m in messages], indent=1, default=str)


@pytest.fixture
def lab(v2bin: Path, http_server: HttpServer, tmp_path: Path) -> Iterator[Lab]:  # noqa: F811
    rmq.require_rabbit()
    vhost = f"/t_interop_{uuid.uuid4().hex[:8]}"
    rmq.add_vhost(vhost)
    capture = None
    lab = None
    try:
        capture = Capture(rmq.amqp_url(vhost))
        lab = Lab(tmp_path, vhost, http_server, v2bin, capture)
        yield lab
    finally:
        if lab is not None:
            lab.stop_all()
        if capture is not None:
            capture.close()
        rmq.delete_vhost(vhost)
