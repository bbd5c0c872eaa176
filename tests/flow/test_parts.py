"""End to end: dd_post --blocksize -> blocks shuffled -> dd_subscribe instances -> one file.

The real commands run against the local RabbitMQ (a vhost per test) and a Range-capable
HTTP server.  dd_post posts to a staging exchange; the test drains it, shuffles the
block messages and republishes them with plain pika to the exchange the subscriber
reads, so blocks arrive in random order and are spread over the instances.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import pika
import pytest

from tests.fixtures.servers import http_server  # noqa: F401 - pytest fixture
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.flow

ROOT = Path(__file__).resolve().parents[2]
STAGE = "xstage"
EXCHANGE = "xparts"
MIB = 1 << 20


class Site:
    """A private HOME/XDG tree, the subscriber config and command runners."""

    def __init__(self, tmp: Path, amqp_url: str, www: Path, url: str) -> None:
        self.tmp, self.amqp_url, self.www, self.url = tmp, amqp_url, www, url
        self.dl = tmp / "dl"
        self.fired = tmp / "on_file.log"
        self.env = dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            HOME=str(tmp / "home"),
            XDG_CONFIG_HOME=str(tmp / "home/config"),
            XDG_CACHE_HOME=str(tmp / "home/cache"),
        )

    def configure(self, instances: int, extra: str = "") -> None:
        script = self.tmp / "on_file.sh"
        script.write_text(f'#!/bin/sh\necho "$1" >> {self.fired}\n')
        script.chmod(0o755)
        conf = Path(self.env["XDG_CONFIG_HOME"]) / "sarra/subscribe/parts.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(
            f"broker {self.amqp_url}\nexchange {EXCHANGE}\ndirectory {self.dl}\n"
            f"instances {instances}\nprefetch 1\nbatch 1\nretry_delay 1\n"
            f"report_back off\non_file {script}\naccept .*\n{extra}"
        )

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "sarra.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def post(self, *paths: Path, blocksize: str = "1M") -> None:
        r = self.run(
            "dd_post", "-pb", self.amqp_url, "-pe", STAGE, "-u", self.url,
            "-pbd", str(self.www), "--blocksize", blocksize, *map(str, paths),
        )  # fmt: skip
        assert r.returncode == 0, r.stderr

    def pids(self) -> List[int]:
        cache = Path(self.env["XDG_CACHE_HOME"])
        return [int(p.read_text()) for p in sorted(cache.rglob("i*.pid"))]

    def fired_lines(self) -> List[str]:
        return self.fired.read_text().splitlines() if self.fired.exists() else []

    def leftovers(self, names: List[str]) -> List[str]:
        return sorted(p.name for p in self.dl.rglob("*") if p.name not in names)


def broker_channel(amqp_url: str) -> pika.adapters.blocking_connection.BlockingChannel:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    return conn.channel()


def stage(amqp_url: str) -> None:
    ch = broker_channel(amqp_url)
    ch.exchange_declare(STAGE, "topic", durable=True)
    ch.exchange_declare(EXCHANGE, "topic", durable=True)
    ch.queue_declare("qstage", durable=True)
    ch.queue_bind("qstage", STAGE, "#")
    ch.connection.close()


def shuffle_to_subscriber(amqp_url: str, seed: int = 4) -> int:
    """Move every staged post to the subscriber's exchange in random order."""
    ch = broker_channel(amqp_url)
    msgs = []
    while True:
        method, props, body = ch.basic_get("qstage", auto_ack=True)
        if method is None:
            break
        msgs.append((method.routing_key, props, body))
    random.Random(seed).shuffle(msgs)
    ch.confirm_delivery()
    for key, props, body in msgs:
        ch.basic_publish(EXCHANGE, key, body, props)
    ch.connection.close()
    return len(msgs)


def md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MIB), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture
def site(tmp_path, amqp_url, http_server):  # noqa: F811
    s = Site(tmp_path, amqp_url, http_server.root, http_server.url)
    stage(amqp_url)
    yield s
    s.run("dd_subscribe", "stop", "parts")
    for pid in s.pids():  # never leave an instance behind
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def make_file(path: Path, size: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 * MIB)
            f.write(rng.randbytes(n))
            left -= n


def start_and_wait(site: Site, done: Callable[[], bool], timeout: float = 240) -> None:
    r = site.run("dd_subscribe", "start", "parts")
    assert r.returncode == 0, r.stderr
    wait_for(done, timeout, "the files to complete")
    time.sleep(1.0)  # a late second trigger would show up here


def test_64mib_in_shuffled_1mib_blocks_over_4_instances_arrives_once(site):
    src = site.www / "big.bin"
    make_file(src, 64 * MIB)
    site.configure(instances=4)
    assert site.run("dd_subscribe", "declare", "parts").returncode == 0
    site.post(src)
    assert shuffle_to_subscriber(site.amqp_url) == 64
    target = site.dl / "big.bin"
    start_and_wait(site, lambda: len(site.fired_lines()) >= 1)
    assert md5(target) == md5(src)
    assert site.fired_lines() == [str(target)]
    assert site.leftovers(["big.bin"]) == []


def test_kill_9_of_an_instance_mid_flow_then_restart_completes_with_one_trigger(
    site,
    http_server,  # noqa: F811
):
    src = site.www / "big.bin"
    make_file(src, 32 * MIB, seed=3)
    http_server.rate = 2 * MIB  # a block takes about 500 ms: instances are mostly mid-block
    site.configure(instances=3)
    assert site.run("dd_subscribe", "declare", "parts").returncode == 0
    site.post(src)
    shuffle_to_subscriber(site.amqp_url, seed=9)
    assert site.run("dd_subscribe", "start", "parts").returncode == 0
    state = site.dl / ".big.bin.parts"
    wait_for(lambda: state.exists() and len(state.read_text().splitlines()) > 6, 60, "blocks")
    victim = site.pids()[0]
    os.kill(victim, signal.SIGKILL)
    # init reaps the orphan a moment later; until then the pid looks alive to ``start``
    wait_for(lambda: not Path(f"/proc/{victim}").exists(), 30, "the killed instance to go")
    r = site.run("dd_subscribe", "start", "parts")
    assert r.returncode == 0, r.stderr
    assert victim not in site.pids()
    wait_for(lambda: len(site.fired_lines()) >= 1, 240, "the file to complete")
    time.sleep(1.0)  # a late second trigger would show up here
    assert md5(site.dl / "big.bin") == md5(src)
    assert len(site.fired_lines()) == 1
    assert site.leftovers(["big.bin"]) == []


BSZ = 1024
SIZES = {"s0": 0, "s1": 1, "bsz-1": BSZ - 1, "bsz": BSZ, "bsz+1": BSZ + 1, "3bsz": 3 * BSZ}


def test_sizes_around_the_blocksize_all_complete(site):
    sources: Dict[str, Path] = {}
    for name, size in SIZES.items():
        sources[name] = site.www / name
        make_file(sources[name], size, seed=size)
    site.configure(instances=2)
    assert site.run("dd_subscribe", "declare", "parts").returncode == 0
    site.post(*sources.values(), blocksize=str(BSZ))
    assert shuffle_to_subscriber(site.amqp_url) == 1 + 1 + 1 + 1 + 2 + 3
    start_and_wait(site, lambda: len(site.fired_lines()) >= len(SIZES))
    for name, src in sources.items():
        assert (site.dl / name).read_bytes() == src.read_bytes(), name
    assert sorted(site.fired_lines()) == sorted(str(site.dl / n) for n in SIZES)
    assert site.leftovers(list(SIZES)) == []
