"""dd_post's errors: each bad path named, the rest posted; broker problems are one line."""

from __future__ import annotations

import os
import time

import pika
import pytest

from tests.fixtures import rabbit

pytestmark = [pytest.mark.flow]


def test_missing_and_outside_paths_are_named_and_the_rest_is_posted(flowenv, tmp_path):
    fe = flowenv
    base = tmp_path / "base"
    base.mkdir()
    (base / "good.txt").write_text("x")
    fe.config("subscribe", "count", "exchange xs_guest\n")
    fe.run("dd_subscribe", "declare", "count")
    queue = next(fe.state_dir("subscribe", "count").glob("queue_name.*")).read_text().strip()
    proc = fe.post("-u", "http://h/", "-pbd", str(base), str(base / "missing.txt"),
                   str(base / "good.txt"), "/etc/hostname", check=False)  # fmt: skip
    assert proc.returncode == 1
    assert "missing.txt: no such file" in proc.stderr
    assert "/etc/hostname: outside post_base_dir" in proc.stderr
    assert "2 path(s) not posted" in proc.stderr
    assert rabbit.queue_counts(fe.vhost, queue) == (1, 0)


def test_unreachable_broker_gives_up_with_one_clear_error(flowenv, tmp_path):
    (tmp_path / "f").write_text("x")
    t0 = time.monotonic()
    proc = flowenv.run(
        "dd_post", "-pb", "amqp://guest@127.0.0.1:1/", "--timeout", "2", "-u", "http://h/",
        "-pbd", str(tmp_path), str(tmp_path / "f"), check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "dd_post: error: cannot connect to amqp://guest@127.0.0.1:1/" in proc.stderr
    assert proc.stderr.count("within 2 s") == 1, proc.stderr  # one error, not repeated
    assert time.monotonic() - t0 < 30


def test_bad_password_is_one_error_line_without_the_password(flowenv, tmp_path):
    (tmp_path / "f").write_text("x")
    proc = flowenv.run(
        "dd_post", "-pb", f"amqp://guest:Wr0ngPw@localhost/{flowenv.vhost}", "-u", "http://h/",
        "-pbd", str(tmp_path), str(tmp_path / "f"), check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.count("refused the login") == 1, proc.stderr
    assert "Wr0ngPw" not in proc.stderr + proc.stdout


def _queue(fe) -> str:
    fe.config("subscribe", "count", "exchange xs_guest\n")
    fe.run("dd_subscribe", "declare", "count")
    return next(fe.state_dir("subscribe", "count").glob("queue_name.*")).read_text().strip()


def test_a_big_tree_is_posted_once_per_file_by_two_processes(flowenv, tmp_path):
    """Past 256 files dd_post shares the work with a helper process: each file is posted
    exactly once, one summary, errors of both processes in one exit status."""
    fe = flowenv
    base = tmp_path / "base"
    for i in range(600):
        d = base / f"d{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:03d}").write_text(str(i))
    os.mkfifo(base / "d3" / "a fifo")  # not a regular file: named, the rest posted
    os.mkfifo(base / "d4" / "b fifo")
    queue = _queue(fe)
    proc = fe.post("-u", "http://h/", "-pbd", str(base), str(base), check=False)
    assert proc.returncode == 1, proc.stderr
    assert "a fifo: not a regular file" in proc.stderr
    assert "b fifo: not a regular file" in proc.stderr
    assert "posted 600 notices" in proc.stderr and proc.stderr.count("posted ") == 1
    assert "2 path(s) not posted" in proc.stderr
    conn = pika.BlockingConnection(pika.URLParameters(rabbit.amqp_url(fe.vhost)))
    try:
        ch, got = conn.channel(), []
        while True:
            _method, _props, body = ch.basic_get(queue, auto_ack=True)
            if body is None:
                break
            got.append(body.decode().split()[2])
    finally:
        conn.close()
    assert sorted(got) == sorted(f"d{i % 7}/f{i:03d}" for i in range(600))


def test_posts_the_broker_nacks_are_named_and_the_exit_status_says_so(flowenv, tmp_path):
    """A queue that rejects publishes past 5 messages makes RabbitMQ nack the rest."""
    fe = flowenv
    base = tmp_path / "base"
    base.mkdir()
    for i in range(12):
        (base / f"f{i:02d}").write_text(str(i))
    conn = pika.BlockingConnection(pika.URLParameters(rabbit.amqp_url(fe.vhost)))
    try:
        ch = conn.channel()
        ch.exchange_declare("xs_guest", exchange_type="topic", durable=True)
        args = {"x-max-length": 5, "x-overflow": "reject-publish"}
        ch.queue_declare("q_full", durable=True, arguments=args)
        ch.queue_bind("q_full", "xs_guest", "#")
        proc = fe.post("-u", "http://h/", "-pbd", str(base), str(base), check=False)
        assert ch.queue_declare("q_full", passive=True).method.message_count == 5
    finally:
        conn.close()
    assert proc.returncode == 1, proc.stderr
    named = [f"f{i:02d}" for i in range(12) if f"post of f{i:02d} not confirmed" in proc.stderr]
    assert len(named) == 7, proc.stderr
    assert "posted 5 notices" in proc.stderr and "7 path(s) not posted" in proc.stderr
