"""dd_sender as a user runs it: posts in, files out on a server that runs no sarra.

Every test runs the real commands (``python -m sarra.cli``) against the local RabbitMQ
(one vhost per test), the loopback sshd and an FTP server (``tests.fixtures.servers``).
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Iterator, List

import pika
import pytest

from sarra.core import message
from tests.fixtures.servers import free_port
from tests.fixtures.waiting import wait_for
from tests.flow.conftest import count_files, inflight_files, listing, make_tree

pytestmark = [pytest.mark.flow]


@pytest.fixture
def remote(sftp_server) -> Iterator[Path]:
    """A fresh directory on the sftp server (its files are the test's own)."""
    d = sftp_server.root / f"out{os.getpid()}"
    d.mkdir()
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def sftp_url(fe, sftp_server) -> str:
    url = f"sftp://root@127.0.0.1:{sftp_server.port}/"
    fe.add_credentials(
        f"{url} ssh_keyfile={sftp_server.client_key},known_hosts={sftp_server.known_hosts}"
    )
    return url


def reports_queue(fe) -> tuple:
    """A pika channel and a queue bound to the reports on ``xs_guest``."""
    conn = pika.BlockingConnection(pika.URLParameters(f"amqp://guest:guest@localhost/{fe.vhost}"))
    ch = conn.channel()
    ch.exchange_declare("xs_guest", "topic", durable=True)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "xs_guest", "v02.report.#")
    return conn, ch, q


def drain(ch, q: str, into: List[message.Notice]) -> int:
    while True:
        method, props, body = ch.basic_get(q, auto_ack=True)
        if method is None:
            return len(into)
        into.append(message.decode(method.routing_key, props.headers or {}, body))


def send_all(fe, config: str, dest: Path, expected: int, timeout: float = 120) -> str:
    """Run ``dd_sender foreground config`` until ``expected`` files are in ``dest``."""
    proc = fe.foreground(config, program="dd_sender")
    done = wait_for(
        lambda: count_files(dest) >= expected or proc.poll() is not None, timeout, fail=False
    )
    rc = fe.terminate(proc)
    log = fe.log_text(proc)
    assert done and count_files(dest) == expected, f"{count_files(dest)}/{expected}\n{log[-4000:]}"
    assert rc == 0 and "Traceback" not in log, log[-4000:]
    return log


def sender_conf(fe, name: str, extra: str) -> None:
    fe.config("sender", name, f"exchange xs_guest\n{extra}accept .*\n")
    fe.run("dd_sender", "declare", name)


def test_a_tree_of_odd_names_is_sent_over_sftp_complete_with_reports(flowenv, sftp_server, remote):
    fe = flowenv
    src = fe.root / "tree"
    n = make_tree(src, 300)
    url = sftp_url(fe, sftp_server)
    sender_conf(fe, "ssh", f"destination {url}\ndirectory {remote}\nbase_dir {fe.root}\n")
    conn, ch, q = reports_queue(fe)
    reports: List[message.Notice] = []
    try:
        fe.post("-u", "http://pump.example/", "-pbd", str(fe.root), str(src))
        send_all(fe, "ssh", remote, n)
        wait_for(lambda: drain(ch, q, reports) >= n, 30, "a report per file")
    finally:
        conn.close()
    assert listing(remote / "tree") == listing(src)
    assert inflight_files(remote) == []
    assert {r.report.code for r in reports} == {201}
    assert sorted(r.relpath for r in reports) == sorted(f"tree/{p}" for p in listing(src))
    assert {(r.report.user, r.report.host) for r in reports} == {("guest", socket.getfqdn())}
    mtimes = {p: int(os.stat(src / p).st_mtime) for p in listing(src)}
    assert {p: int(os.stat(remote / "tree" / p).st_mtime) for p in mtimes} == mtimes


def test_a_tree_is_sent_over_ftp_fetched_from_the_notices_own_url(flowenv, ftp_server, http_server):
    fe, www = flowenv, http_server.root
    src = www / "web"
    n = make_tree(src, 120)
    fe.add_credentials(f"ftp://user:secret@127.0.0.1:{ftp_server.port}/")
    sender_conf(fe, "ftp", f"destination {ftp_server.url}\ndirectory /in/coming\n")
    fe.post("-u", http_server.url, "-pbd", str(www), str(src))
    send_all(fe, "ftp", ftp_server.root / "in" / "coming", n)
    assert listing(ftp_server.root / "in" / "coming" / "web") == listing(src)
    assert inflight_files(ftp_server.root) == []


@pytest.mark.parametrize("inflight,hidden", [(".tmp", "big.bin.tmp"), (".", ".big.bin"),
                                             ("tmp/", "tmp/big.bin")])  # fmt: skip
def test_the_final_name_appears_only_once_the_file_is_complete(
    flowenv, sftp_server, remote, inflight, hidden
):
    fe = flowenv
    src = fe.root / "one"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(8 << 20))
    url = sftp_url(fe, sftp_server)
    sender_conf(
        fe, "slow",
        f"destination {url}\ndirectory {remote}\nbase_dir {src}\ninflight {inflight}\n"
        "throttle 2M\nmirror off\n",
    )  # fmt: skip
    fe.post("-u", "http://pump.example/", "-pbd", str(src), str(src / "big.bin"))
    proc = fe.foreground("slow", program="dd_sender")
    try:
        wait_for(lambda: (remote / hidden).exists(), 60, f"the inflight name {hidden}", every=0.02)
        assert not (remote / "big.bin").exists()  # written for 4 s at 2 MiB/s: still going
        wait_for(lambda: (remote / "big.bin").exists(), 60, "the final name", every=0.02)
    finally:
        fe.terminate(proc)
    assert listing(remote) == listing(src)  # complete at once, and nothing else left


def test_kill_9_mid_send_then_restart_every_file_arrives_once_complete(
    flowenv, sftp_server, remote, rabbit
):
    fe = flowenv
    src = fe.root / "k"
    for i in range(200):
        (src / f"d{i % 4}").mkdir(parents=True, exist_ok=True)
        (src / f"d{i % 4}" / f"f{i:03d}.dat").write_bytes(os.urandom(64 << 10))
    url = sftp_url(fe, sftp_server)
    conf = f"destination {url}\ndirectory {remote}\nbase_dir {fe.root}\n"
    sender_conf(fe, "k9", conf + "throttle 1M\n")
    fe.post("-u", "http://pump.example/", "-pbd", str(fe.root), str(src))
    first = fe.foreground("k9", "first.log", program="dd_sender")
    wait_for(lambda: count_files(remote) >= 60 or first.poll() is not None, 60, every=0.01)
    first.kill()
    first.wait(10)
    at_kill = count_files(remote)
    assert at_kill < 200, "everything was sent before the kill: nothing was tested"
    sender_conf(fe, "k9", conf)  # the rest at full speed
    log = send_all(fe, "k9", remote, 200)
    assert listing(remote / "k") == listing(src), log[-3000:]  # each complete, none missing
    assert inflight_files(remote) == []
    queue = (fe.state_dir("sender", "k9") / "queue_name.guest").read_text().strip()
    assert rabbit.queue_counts(fe.vhost, queue) == (0, 0)


def test_the_delivered_copy_is_announced_and_a_subscriber_beyond_fetches_it(
    flowenv, sftp_server, remote
):
    """A pump chain: post -> dd_sender -> sftp server, announced on post_exchange ->
    dd_subscribe downloads from the sftp server what the sender put there."""
    fe = flowenv
    src, dst = fe.root / "chain", fe.root / "dst"
    n = make_tree(src, 40)
    url = sftp_url(fe, sftp_server)
    sender_conf(
        fe, "push",
        f"destination {url}\ndirectory {remote}\nbase_dir {fe.root}\n"
        f"post_broker {fe.broker}\npost_exchange xs_beyond\n",
    )  # fmt: skip
    strip = len(remote.parts) - 1  # the relpath announced is the path on the server
    fe.config(
        "subscribe", "beyond", f"exchange xs_beyond\ndirectory {dst}\nstrip {strip}\nmirror on\n"
    )
    fe.run("dd_subscribe", "declare", "beyond")
    fe.post("-u", "http://pump.example/", "-pbd", str(fe.root), str(src))
    send_all(fe, "push", remote, n)
    sub = fe.foreground("beyond")
    done = wait_for(lambda: count_files(dst) >= n, 60, fail=False)
    fe.terminate(sub)
    assert done, fe.log_text(sub)[-3000:]
    assert listing(dst / "chain") == listing(src)


def test_a_refused_destination_is_reported_and_acknowledged_not_retried(
    flowenv, ftp_server, rabbit
):
    fe = flowenv
    src = fe.root / "r"
    src.mkdir()
    (src / "a.txt").write_text("a")
    (ftp_server.root / "blocked").write_text("a file where a directory must go")
    fe.add_credentials(f"ftp://user:secret@127.0.0.1:{ftp_server.port}/")
    sender_conf(fe, "no", f"destination {ftp_server.url}\ndirectory /blocked/x\nbase_dir {src}\n")
    conn, ch, q = reports_queue(fe)
    reports: List[message.Notice] = []
    try:
        fe.post("-u", "http://pump.example/", "-pbd", str(src), str(src / "a.txt"))
        proc = fe.foreground("no", program="dd_sender")
        wait_for(lambda: drain(ch, q, reports) >= 1, 60, "the failure report")
        queue = (fe.state_dir("sender", "no") / "queue_name.guest").read_text().strip()
        wait_for(lambda: rabbit.queue_counts(fe.vhost, queue) == (0, 0), 30, "the ack")
        fe.terminate(proc)
    finally:
        conn.close()
    log = fe.log_text(proc)
    assert [r.report.code for r in reports] == [499], log[-3000:]
    assert "will retry" not in log and "failed a.txt" in log, log[-3000:]


def test_an_unreachable_destination_keeps_files_in_the_retry_queue_until_it_answers(
    flowenv, sftp_server, remote, rabbit
):
    fe = flowenv
    src = fe.root / "later"
    src.mkdir()
    for i in range(5):
        (src / f"f{i}.txt").write_text(f"file {i}")
    url = sftp_url(fe, sftp_server)
    down = f"sftp://root@127.0.0.1:{free_port()}/"  # nothing listens there
    fe.add_credentials(f"{down} ssh_keyfile={sftp_server.client_key}")
    conf = f"directory {remote}\nbase_dir {fe.root}\nretry_delay 1\n"
    sender_conf(fe, "later", f"destination {down}\n{conf}")
    fe.post("-u", "http://pump.example/", "-pbd", str(fe.root), str(src))
    proc = fe.foreground("later", "down.log", program="dd_sender")
    queue = (fe.state_dir("sender", "later") / "queue_name.guest").read_text().strip()
    wait_for(lambda: fe.log_text(proc).count("will retry") >= 5, 60, "5 failures kept")
    wait_for(lambda: rabbit.queue_counts(fe.vhost, queue) == (0, 0), 30, "the acks")
    fe.terminate(proc)
    assert count_files(remote) == 0
    sender_conf(fe, "later", f"destination {url}\n{conf}")  # the partner is back
    send_all(fe, "later", remote, 5)
    assert listing(remote / "later") == listing(src)
