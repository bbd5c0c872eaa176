"""Report messages for every download, and bad input that must not hurt the subscriber."""

from __future__ import annotations

import hashlib
import time
from typing import List

import pika
import pytest

from sarra.core.message import format_time
from tests.fixtures.waiting import wait_for
from tests.flow.conftest import count_files

pytestmark = [pytest.mark.flow]


def _channel(fe):
    conn = pika.BlockingConnection(pika.URLParameters(f"amqp://guest:guest@localhost/{fe.vhost}"))
    ch = conn.channel()
    ch.exchange_declare("xs_guest", "topic", durable=True)
    return conn, ch


def _drain(ch, queue: str, want: int, timeout: float = 60) -> List[tuple]:
    got: List[tuple] = []

    def more() -> bool:
        while True:
            method, props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                return len(got) >= want
            got.append((method.routing_key, props.headers or {}, body.decode()))

    wait_for(more, timeout, every=0.05, fail=False)
    return got


def test_each_download_publishes_a_report_on_the_report_exchange(flowenv, http_server):
    fe, www = flowenv, http_server.root
    src, dst = www / "rep", fe.root / "dst"
    (src / "a").mkdir(parents=True)
    for i in range(30):
        (src / "a" / f"r {i}.txt").write_text(f"r{i}")
    fe.config("subscribe", "rep", f"exchange xs_guest\ndirectory {dst}\nmirror True\n")
    fe.run("dd_subscribe", "declare", "rep")
    conn, ch = _channel(fe)
    try:
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(q, "xs_guest", "v02.report.#")
        fe.post("-u", http_server.url, "-pbd", str(www), str(src))
        proc = fe.foreground("rep")
        reports = _drain(ch, q, 30)
        _drain(ch, q, 31, timeout=0.5)  # anything extra would show up here
        fe.terminate(proc)
    finally:
        conn.close()
    assert len(reports) == 30, fe.log_text(proc)[-3000:]
    assert count_files(dst) == 30
    relpaths = set()
    for topic, headers, body in reports:
        assert topic == "v02.report.rep.a"
        pubtime, baseurl, relpath, code, host, user, elapsed = body.split(" ")
        assert (baseurl, code, user) == (http_server.url, "201", "guest")
        assert host and float(elapsed) >= 0
        assert headers["message"] and headers["sum"].startswith("d,")
        relpaths.add(relpath)
    assert relpaths == {f"rep/a/r%20{i}.txt" for i in range(30)}


def _post(ch, relpath: str, sum_: str, baseurl: str, size: int = 4) -> None:
    headers = {"sum": sum_, "parts": f"1,{size},1,0,0", "to_clusters": "localhost"}
    body = f"{format_time(time.time())} {baseurl} {relpath}"
    ch.basic_publish("xs_guest", "v02.post.bad", body, pika.BasicProperties(headers=headers))


def test_bad_messages_are_dropped_rejected_or_retried_and_the_daemon_goes_on(flowenv, http_server):
    fe, www = flowenv, http_server.root
    dst = fe.root / "dst" / "inside"
    (www / "real.txt").write_text("real")
    (www / "ok.txt").write_text("fine")
    (www / "escape.txt").write_text("evil")
    md5 = hashlib.md5(b"fine").hexdigest()
    fe.config(
        "subscribe", "bad",
        f"exchange xs_guest\ndirectory {dst}\nmirror True\nretry_delay 0.5\n",
    )  # fmt: skip
    fe.run("dd_subscribe", "declare", "bad")
    conn, ch = _channel(fe)
    try:
        ch.basic_publish("xs_guest", "v02.post.junk", b"\xff\xfe not a notice")
        _post(ch, "../escape.txt", "d," + hashlib.md5(b"evil").hexdigest(), http_server.url)
        _post(ch, "real.txt", "d," + "0" * 32, http_server.url)
        _post(ch, "x.txt", "d," + md5, "gopher://127.0.0.1/")
        _post(ch, "ok.txt", "d," + md5, http_server.url)
    finally:
        conn.close()
    proc = fe.foreground("bad")
    placed = wait_for(lambda: (dst / "ok.txt").exists(), 60, fail=False)
    retried = wait_for(lambda: fe.log_text(proc).count("will retry") >= 2, 30, fail=False)
    rc = fe.terminate(proc)
    log = fe.log_text(proc)
    assert placed and retried and rc == 0, log[-4000:]
    assert "Traceback" not in log
    undecodable = [line for line in log.splitlines() if "undecodable" in line]
    assert len(undecodable) == 1, undecodable
    assert not (fe.root / "dst" / "escape.txt").exists()
    assert not any(path.endswith("escape.txt") for _m, path, _r in http_server.requests)
    assert "escapes" in log
    assert not (dst / "real.txt").exists()  # wrong checksum: never placed
    assert [p for p in dst.iterdir()] == [dst / "ok.txt"]  # nor any temp file left
    assert "gopher" in log
    # the broker queue holds nothing any more: the junk was dropped, not requeued
    from tests.fixtures import rabbit

    queue = next(fe.state_dir("subscribe", "bad").glob("queue_name.*")).read_text().strip()
    assert rabbit.queue_counts(fe.vhost, queue) == (0, 0)
