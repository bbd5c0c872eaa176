"""Hostile network sources against a real dd_sara (issue 13, classes 8, 9 and 10).

A switch (its own vhost on the local RabbitMQ, ``tests/flow/switch_net.py``) ingests
alice's posts.  alice's web server (``tests/fixtures/hostile_http.py``) on 127.0.0.1 is
listed for her (``source_hosts``); an "internal service" on 127.0.0.2 is not.  alice
posts URLs of that service in several spellings, a body longer than announced, a gzip
bomb behind a redirect, a redirect to the service, and a trickle.  Each test asserts:
nothing fetched from the service, nothing beyond the announced size written, a report
to alice, a planted file outside the tree unchanged, the daemon alive, and a normal
post afterwards delivered.
"""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path
from typing import Iterator

import pika
import pytest

from sarra.core import message
from tests.fixtures.hostile_http import HostileHttp, serve_hostile
from tests.fixtures.waiting import wait_for
from tests.flow.switch_net import Net

pytestmark = [pytest.mark.flow, pytest.mark.integration]


class Switch:
    def __init__(self, net: Net, tmp: Path, alice_web: HostileHttp, extra: str) -> None:
        self.net, self.tmp, self.web = net, tmp, alice_web
        self.www = tmp / "www"
        self.www.mkdir()
        self.alice = net.user("alice")
        self.pub = net.tap("A", "xpublic")
        self.reports = net.tap("A", "xreport")
        self.victim = tmp / "victim.txt"
        self.victim.write_bytes(b"precious\n")
        self.victim.chmod(0o600)
        net.config(
            "sara",
            "A",
            f"broker {net.url('A', 'feederA')}\ncluster A\ndeclare source {self.alice}\n"
            f"source_hosts {self.alice} 127.0.0.1\npost_base_url http://127.0.0.1:9/\n"
            f"post_base_dir {self.www}\nretry_delay 1\n{extra}",
        )
        self.proc = net.foreground("dd_sara", "A")
        self.queue = f"q_{net.user('feederA')}.dd_sara.A"
        net.wait_consuming("A", self.queue)

    def post(self, baseurl: str, relpath: str, body: bytes, size: int | None = None) -> None:
        """alice posts ``relpath`` under ``baseurl``, announcing ``body``'s sum and size."""
        headers = {
            "sum": "d," + hashlib.md5(body).hexdigest(),
            "parts": f"1,{len(body) if size is None else size},1,0,0",
            "to_clusters": "A",
        }
        enc = message.encode(message.new_post(baseurl, relpath, headers))
        conn = pika.BlockingConnection(pika.URLParameters(self.net.url("A", "alice")))
        ch = conn.channel()
        ch.basic_publish(
            f"xs_{self.alice}",
            enc.topic,
            enc.body,
            pika.BasicProperties(headers=enc.headers, delivery_mode=2),
        )
        conn.close()

    def report(self, relpath: str, timeout: float = 30) -> message.Notice:
        def find():
            return [r for r in self.reports.drain() if r.relpath.endswith(relpath)]

        return wait_for(find, timeout, f"a report on {relpath}")[-1]  # type: ignore[index]

    def delivers_a_normal_post(self, name: str) -> None:
        """The daemon is alive and a normal post afterwards is stored and re-announced."""
        assert self.proc.poll() is None, self.net.logs()
        self.post(self.web.url, name, b"ok:/" + name.encode())
        wait_for(
            lambda: [n for n in self.pub.drain() if n.relpath.endswith(name)],
            30,
            f"the re-post of {name}",
        )
        [stored] = list(self.www.glob(f"**/{name}"))
        assert stored.read_bytes() == b"ok:/" + name.encode()

    def nothing_outside_changed(self) -> None:
        assert self.victim.read_bytes() == b"precious\n"
        assert self.victim.stat().st_mode & 0o777 == 0o600
        for p in self.www.rglob("*"):
            if p.is_file():
                assert b"secret" not in p.read_bytes(), p


@pytest.fixture
def internal() -> Iterator[HostileHttp]:
    yield from serve_hostile("127.0.0.2")


@pytest.fixture
def alice_web() -> Iterator[HostileHttp]:
    yield from serve_hostile("127.0.0.1")


@pytest.fixture
def switch(rabbit, tmp_path, alice_web, request) -> Iterator[Switch]:
    extra = getattr(request, "param", "")
    with Net(tmp_path, "A") as net:
        yield Switch(net, tmp_path, alice_web, extra)


def spellings(port: int) -> list[str]:
    """The internal service's address, written as a source might (127.0.0.2)."""
    return [
        f"http://127.0.0.2:{port}/",
        f"http://2130706434:{port}/",
        f"http://0x7f.2:{port}/",
        f"http://127.2:{port}/",
        f"http://0177.0.0.2:{port}/",
        f"http://[::ffff:127.0.0.2]:{port}/",
    ]


def test_urls_of_an_internal_service_are_refused_unfetched_and_reported(switch, internal):
    urls = spellings(internal.port)
    for k, url in enumerate(urls):
        switch.post(url, f"secret{k}.txt", b"ok:/secret")
    for k in range(len(urls)):
        r = switch.report(f"secret{k}.txt")
        assert r.report.code == 403, r.headers
    assert internal.requests == []
    log = (switch.tmp / "dd_sara_A.out").read_text()
    assert len([ln for ln in log.splitlines() if "secret0.txt" in ln and "refused" in ln]) == 1
    switch.nothing_outside_changed()
    switch.delivers_a_normal_post("after_ssrf.txt")
    queue = switch.queue
    wait_for(lambda: switch.net.messages("A", queue) == 0, 30, "nothing left unacked")


def test_a_redirect_from_an_allowed_server_to_the_internal_service_is_refused(switch, internal):
    for k, host in enumerate(["127.0.0.2", "127.2", "2130706434"]):
        switch.post(f"{switch.web.url}go/{host}/{internal.port}/", f"r{k}.txt", b"ok:/r{k}.txt")
        assert switch.report(f"r{k}.txt").report.code != 201
    assert internal.requests == []
    switch.nothing_outside_changed()
    switch.delivers_a_normal_post("after_redirect.txt")


@pytest.mark.parametrize("path", ["long", "long-nolen", "long-chunked", "bomb"])
def test_bodies_longer_than_announced_fill_no_disk(switch, path):
    """64 MiB sent (or 64 MiB of zeros gzipped) for 9 bytes announced: the switch stops
    reading at once (the server can push no more than the socket buffers hold), writes
    at most 9 bytes, and never retries (the server would send the same again)."""
    switch.web.size = 64 << 20
    switch.post(switch.web.url, path, b"9 bytes!!", size=9)
    r = switch.report(path)
    assert r.report.code != 201
    for p in switch.www.rglob("*"):
        assert not p.is_file() or p.stat().st_size <= 9, p
    switch.nothing_outside_changed()
    switch.delivers_a_normal_post(f"after_{path.replace('-', '_')}.txt")
    assert len([q for q, _ in switch.web.requests if q.strip("/") == path]) == 1  # no retry
    assert switch.web.sent.get("/" + path, 0) < 32 << 20, switch.web.sent


@pytest.mark.parametrize("switch", ["timeout 1\n"], indirect=True)
def test_a_trickle_is_cut_at_the_deadline_and_sigterm_stops_the_daemon(switch):
    switch.post(switch.web.url, "trickle", b"t" * 100)
    log = switch.tmp / "dd_sara_A.out"
    wait_for(lambda: "too slow" in log.read_text(), 30, "the deadline to cut the trickle")
    switch.delivers_a_normal_post("after_trickle.txt")
    wait_for(lambda: switch.web.sent.get("/trickle", 0) > 0, 30, "a retry of the trickle")
    switch.proc.send_signal(signal.SIGTERM)
    assert switch.proc.wait(15) == 0  # a bound, not a timing claim: SIGTERM is honoured
    assert switch.web.sent["/trickle"] < 100 * 5
    switch.nothing_outside_changed()
    assert not [p for p in switch.www.rglob("trickle*") if p.is_file() and os.path.getsize(p)]
