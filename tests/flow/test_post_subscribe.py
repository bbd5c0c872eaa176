"""dd_post a tree of odd names, dd_subscribe it back: complete and identical.

Every test runs the real commands (``python -m sarra.cli``) against the local RabbitMQ
(one vhost per test) and a loopback HTTP server, sshd, or the local file system.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.fixtures.waiting import wait_for
from tests.flow.conftest import count_files, inflight_files, listing, make_tree

pytestmark = [pytest.mark.flow]

BIG = 50 * 1024 * 1024


def subscribe_conf(fe, name: str, dst: Path, extra: str = "") -> None:
    fe.config(
        "subscribe", name,
        f"exchange xs_guest\ndirectory {dst}\nmirror True\n{extra}accept .*\n",
    )  # fmt: skip
    fe.run("dd_subscribe", "declare", name)


def fetch_all(fe, name: str, dst: Path, expected: int, timeout: float = 90) -> float:
    """Run the subscriber in the foreground until ``expected`` files are in ``dst``."""
    t0 = time.monotonic()
    proc = fe.foreground(name)
    done = wait_for(
        lambda: count_files(dst) >= expected or proc.poll() is not None, timeout, fail=False
    )
    elapsed = time.monotonic() - t0
    rc = fe.terminate(proc)
    log = fe.log_text(proc)
    assert done and count_files(dst) == expected, (
        f"{count_files(dst)}/{expected} files after {elapsed:.0f}s\n{log[-4000:]}"
    )
    assert rc == 0, log[-4000:]
    assert "Traceback" not in log, log[-4000:]
    return elapsed


def check_same(src: Path, dst: Path) -> None:
    want, got = listing(src), listing(dst)
    assert sorted(set(want) ^ set(got)) == []
    assert [k for k in want if want[k] != got[k]] == []
    assert inflight_files(dst) == []


def tree_with_link(src: Path, count: int) -> int:
    n = make_tree(src, count, big=BIG)
    os.symlink("dir 1/plain.txt7", src / "link to plain")
    return n + 1


def test_tree_of_odd_names_arrives_identical_over_http(flowenv, http_server):
    fe, www = flowenv, http_server.root
    src, dst = www / "tree", fe.root / "dst"
    n = tree_with_link(src, 300)
    subscribe_conf(fe, "web", dst)
    fe.post("-u", http_server.url, "-pbd", str(www), str(src))
    elapsed = fetch_all(fe, "web", dst, n)
    check_same(src, dst / "tree")
    print(f"http: {n} files in {elapsed:.1f}s")


def test_tree_of_odd_names_arrives_identical_over_sftp(flowenv, sftp_server):
    fe = flowenv
    src, dst = sftp_server.root / f"tree{os.getpid()}", fe.root / "dst"
    try:
        n = tree_with_link(src, 300)
        url = f"sftp://root@127.0.0.1:{sftp_server.port}/"
        fe.add_credentials(
            f"{url} ssh_keyfile={sftp_server.client_key},known_hosts={sftp_server.known_hosts}"
        )
        subscribe_conf(fe, "ssh", dst)
        fe.post("-u", f"{url}{sftp_server.root}/", "-pbd", str(sftp_server.root), str(src))
        elapsed = fetch_all(fe, "ssh", dst, n)
        check_same(src, dst / src.name)
        print(f"sftp: {n} files in {elapsed:.1f}s")
    finally:
        import shutil

        shutil.rmtree(src, ignore_errors=True)


def test_tree_posted_with_file_url_arrives_identical(flowenv):
    """``-u file:`` with no base dir: v2's form, an absolute relpath (spec 4.3)."""
    fe = flowenv
    src, dst = fe.root / "src", fe.root / "dst"
    n = tree_with_link(src, 300)
    strip = len(src.parts) - 2  # the absolute path down to src, "/" excluded
    subscribe_conf(fe, "local", dst, f"strip {strip}\nfile_sources {src}\n")
    fe.post("-u", "file:", str(src))
    elapsed = fetch_all(fe, "local", dst, n)
    check_same(src, dst / "src")
    print(f"file: {n} files in {elapsed:.1f}s")


def test_file_url_relpath_is_absolute_on_the_wire(flowenv):
    """The posted relpath for ``-u file:`` is the absolute path (v2 interoperability)."""
    import pika

    fe = flowenv
    src = fe.root / "one"
    src.mkdir()
    (src / "a b.txt").write_text("x")
    params = pika.URLParameters(f"amqp://guest:guest@localhost/{fe.vhost}")
    with pika.BlockingConnection(params) as conn:
        ch = conn.channel()
        ch.exchange_declare("xs_guest", "topic", durable=True)
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(q, "xs_guest", "v02.post.#")
        fe.post("-u", "file:", str(src / "a b.txt"))
        got = wait_for(lambda: ch.basic_get(q, auto_ack=True)[2], 30, "the post", every=0.05)
    _pubtime, base, rel = got.decode().split(" ")
    assert base == "file:"
    assert rel == str(src / "a%20b.txt")
