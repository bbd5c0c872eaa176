"""dd_poll as a user runs it: a server that announces nothing, its files posted once each,
and again when they change.

Real commands against the local RabbitMQ (one vhost per test), a private nginx with
directory listings and the loopback sshd (``tests.fixtures.servers``).
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Callable, Iterator, List

import pika
import pytest

from sarra.core import message
from tests.fixtures.waiting import wait_for
from tests.flow.conftest import count_files, listing, make_tree

pytestmark = [pytest.mark.flow]


class Posts:
    """The posts on ``xs_guest``, as a queue bound before the poll starts sees them."""

    def __init__(self, fe) -> None:
        params = pika.URLParameters(f"amqp://guest:guest@localhost/{fe.vhost}")
        self.conn = pika.BlockingConnection(params)
        self.ch = self.conn.channel()
        self.ch.exchange_declare("xs_guest", "topic", durable=True)
        self.q = self.ch.queue_declare("", exclusive=True).method.queue
        self.ch.queue_bind(self.q, "xs_guest", "v02.post.#")
        self.got: List[message.Notice] = []

    def drain(self, most: int = 1 << 30) -> int:
        """Read what has arrived (at most ``most`` more); returns how many so far."""
        for _ in range(most):
            method, props, body = self.ch.basic_get(self.q, auto_ack=True)
            if method is None:
                return len(self.got)
            self.got.append(message.decode(method.routing_key, props.headers or {}, body))
        return len(self.got)

    def names(self) -> List[str]:
        return sorted(n.relpath.rsplit("/", 1)[-1] for n in self.got)

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def posts(flowenv) -> Iterator[Posts]:
    p = Posts(flowenv)
    try:
        yield p
    finally:
        p.close()


def poll_conf(fe, name: str, text: str) -> None:
    fe.config("poll", name, f"post_broker {fe.broker}\nsleep 0.5\n{text}")


def passes(fe, proc) -> Callable[[], int]:
    """The number of listing passes the poll has logged."""
    return lambda: fe.log_text(proc).count("poll pass ")


def run_until(fe, proc, posts: Posts, want: int, after_pass: int) -> None:
    """Wait for ``want`` posts and for pass ``after_pass`` to end (a later pass would
    show any duplicate), then check nothing more came."""
    got = wait_for(lambda: posts.drain() >= want, 60, every=0.05, fail=False)
    assert got, f"{posts.drain()}/{want} posts\n{fe.log_text(proc)[-3000:]}"
    seen = passes(fe, proc)
    wait_for(lambda: seen() >= after_pass, 60, f"pass {after_pass}", every=0.05)
    assert posts.drain() == want, posts.names()
    assert proc.poll() is None, fe.log_text(proc)[-3000:]


def test_http_index_pages_new_files_posted_once_and_again_when_changed(flowenv, web_server, posts):
    fe = flowenv
    data = web_server.root / "data"
    make_tree(data, 30)
    listed = [p for p in listing(data) if not p.rsplit("/", 1)[-1].startswith(".")]
    n = len(listed)  # nginx does not list hidden files
    poll_conf(fe, "web", f"destination {web_server.url}\ndirectory /data\naccept .*\n")
    proc = fe.foreground("web", program="dd_poll")
    run_until(fe, proc, posts, n, after_pass=2)
    assert {p.baseurl for p in posts.got} == {web_server.url}
    assert sorted(p.relpath for p in posts.got) == sorted(f"data/{p}" for p in listed)
    one = data / "dir 1" / "with space1.txt"
    sized = [p for p in posts.got if p.relpath == "data/dir 1/with space1.txt"]
    assert sized[0].headers["parts"] == f"1,{one.stat().st_size},1,0,0"
    assert {p.headers["sum"] for p in posts.got} == {"z,d"}

    one.write_bytes(b"changed: another size")  # nginx lists times to the minute
    (data / "dir 1" / "new file.txt").write_text("new")
    seen = passes(fe, proc)()
    run_until(fe, proc, posts, n + 2, after_pass=seen + 2)
    assert {p.relpath for p in posts.got[n:]} == {
        f"data/dir 1/{f}" for f in (one.name, "new file.txt")
    }
    fe.terminate(proc)

    (data / "after restart.txt").write_text("appeared while stopped")
    again = fe.foreground("web", "again.log", program="dd_poll")
    run_until(fe, again, posts, n + 3, after_pass=2)
    assert posts.got[-1].relpath == "data/after restart.txt"
    assert fe.terminate(again) == 0


def test_sftp_listing_posts_once_masks_apply_to_names_and_a_subscriber_fetches_all(
    flowenv, sftp_server, posts
):
    fe = flowenv
    top = sftp_server.root / f"poll{os.getpid()}"
    dst = fe.root / "dst"
    try:
        n = make_tree(top, 60)
        (top / "skip.me").write_text("rejected by name")
        url = f"sftp://root@127.0.0.1:{sftp_server.port}/"
        fe.add_credentials(
            f"{url} ssh_keyfile={sftp_server.client_key},known_hosts={sftp_server.known_hosts}"
        )
        poll_conf(fe, "ssh", f"destination {url}\ndirectory {top}\nreject ^skip\naccept .*\n")
        strip = len(top.parts) - 1
        fe.config("subscribe", "get", f"exchange xs_guest\ndirectory {dst}\nstrip {strip}\n"
                  "mirror on\naccept .*\n")  # fmt: skip
        fe.run("dd_subscribe", "declare", "get")
        proc = fe.foreground("ssh", program="dd_poll")
        run_until(fe, proc, posts, n, after_pass=2)
        sub = fe.foreground("get")
        done = wait_for(lambda: count_files(dst) >= n, 60, fail=False)
        fe.terminate(sub)
        assert done, fe.log_text(sub)[-3000:]
        assert listing(dst) == {k: v for k, v in listing(top).items() if k != "skip.me"}

        hour_ago = time.time() - 3600  # same size, another time: changed
        os.utime(top / "plain0.txt", (hour_ago, hour_ago))
        seen = passes(fe, proc)()
        run_until(fe, proc, posts, n + 1, after_pass=seen + 2)
        assert posts.got[-1].relpath.endswith("/plain0.txt")
        assert fe.terminate(proc) == 0
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_a_second_poll_of_one_config_refuses_to_start(flowenv, web_server):
    fe = flowenv
    poll_conf(fe, "one", f"destination {web_server.url}\naccept .*\n")
    first = fe.foreground("one", program="dd_poll")
    wait_for(lambda: "poll pass 1:" in fe.log_text(first), 60, "the first pass")
    second = fe.run("dd_poll", "foreground", "one", check=False, timeout=60)
    fe.terminate(first)
    assert second.returncode != 0
    assert "already running" in second.stderr + second.stdout


def test_files_sent_by_dd_sender_are_polled_and_fetched_beyond(flowenv, sftp_server):
    """post -> dd_sender -> sftp server -> dd_poll on that server -> dd_subscribe."""
    fe = flowenv
    src, dst = fe.root / "tree", fe.root / "dst"
    remote = sftp_server.root / f"chain{os.getpid()}"
    try:
        n = make_tree(src, 100)
        url = f"sftp://root@127.0.0.1:{sftp_server.port}/"
        fe.add_credentials(
            f"{url} ssh_keyfile={sftp_server.client_key},known_hosts={sftp_server.known_hosts}"
        )
        fe.config("sender", "push", f"exchange xs_guest\ndestination {url}\n"
                  f"directory {remote}\nbase_dir {fe.root}\naccept .*\n")  # fmt: skip
        fe.run("dd_sender", "declare", "push")
        poll_conf(
            fe, "pull",
            f"post_exchange xs_polled\ndestination {url}\ndirectory {remote}\naccept .*\n",
        )  # fmt: skip
        strip = len(remote.parts) - 1
        fe.config("subscribe", "get", f"exchange xs_polled\ndirectory {dst}\nstrip {strip}\n"
                  "mirror on\naccept .*\n")  # fmt: skip
        fe.run("dd_subscribe", "declare", "get")
        fe.run("dd_poll", "declare", "pull")
        procs = [
            fe.foreground("push", program="dd_sender"),
            fe.foreground("pull", program="dd_poll"),
            fe.foreground("get"),
        ]
        fe.post("-u", "http://pump.example/", "-pbd", str(fe.root), str(src))
        done = wait_for(lambda: count_files(dst) >= n, 120, fail=False)
        logs = [fe.log_text(p)[-2000:] for p in procs]
        for p in procs:
            fe.terminate(p)
        assert done, "\n".join(logs)
        assert listing(dst / "tree") == listing(src)  # complete: no inflight file was polled
    finally:
        shutil.rmtree(remote, ignore_errors=True)


def test_ftp_listing_posts_once_and_again_when_a_file_grows(flowenv, ftp_server, posts):
    fe = flowenv
    data = ftp_server.root / "pub"
    n = make_tree(data, 40)
    fe.add_credentials(f"ftp://user:secret@127.0.0.1:{ftp_server.port}/")
    poll_conf(fe, "ftp", f"destination {ftp_server.url}\ndirectory /pub\naccept .*\n")
    proc = fe.foreground("ftp", program="dd_poll")
    run_until(fe, proc, posts, n, after_pass=2)
    assert sorted(p.relpath for p in posts.got) == sorted(f"pub/{p}" for p in listing(data))
    with open(data / "dir 1" / "with space1.txt", "ab") as f:
        f.write(b"more")
    seen = passes(fe, proc)()
    run_until(fe, proc, posts, n + 1, after_pass=seen + 2)
    assert posts.got[-1].relpath == "pub/dir 1/with space1.txt"
    assert fe.terminate(proc) == 0


def test_kill_9_mid_pass_then_restart_posts_every_file_at_most_one_batch_twice(
    flowenv, sftp_server, posts
):
    fe = flowenv
    top = sftp_server.root / f"k{os.getpid()}"
    total = 3000
    try:
        for i in range(total):
            (top / f"d{i % 10}").mkdir(parents=True, exist_ok=True)
            (top / f"d{i % 10}" / f"f{i:05d}").write_bytes(b"")
        url = f"sftp://root@127.0.0.1:{sftp_server.port}/"
        fe.add_credentials(
            f"{url} ssh_keyfile={sftp_server.client_key},known_hosts={sftp_server.known_hosts}"
        )
        poll_conf(fe, "k9", f"batch 50\ndestination {url}\ndirectory {top}\naccept .*\n")
        first = fe.foreground("k9", "first.log", program="dd_poll")
        wait_for(lambda: posts.drain(10) >= 300 or first.poll() is not None, 60, every=0.001)
        first.kill()
        first.wait(10)
        assert "poll pass 1:" not in fe.log_text(first), "the pass ended before the kill"
        again = fe.foreground("k9", "again.log", program="dd_poll")
        relpaths = lambda: {p.relpath for p in posts.got}  # noqa: E731
        done = wait_for(lambda: posts.drain() and len(relpaths()) >= total, 90, fail=False)
        seen = passes(fe, again)
        wait_for(lambda: seen() >= 2, 60, "a second pass")
        fe.terminate(again)
        assert done, fe.log_text(again)[-3000:]
        assert posts.drain() - total <= 50, f"{posts.drain() - total} posted twice"
    finally:
        shutil.rmtree(top, ignore_errors=True)
