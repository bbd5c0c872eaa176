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
