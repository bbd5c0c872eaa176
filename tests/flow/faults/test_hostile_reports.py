"""Issue 13, class 14, as a source meets it: a failure whose reason names a long path
still reaches the source as a report (the reason cut to the v02 header limit on a
character boundary), instead of the report being dropped.

A real dd_subscribe fetches files whose announced checksum is wrong; the reason
("checksum mismatch for <relpath>: ...") then runs past 252 bytes with names of
200-240 bytes in 1, 2 and 4-byte characters.
"""

from __future__ import annotations

import hashlib
import time
from typing import List

import pika
import pytest

from sarra.core.message import encode_path, format_time
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.flow, pytest.mark.integration]

NAMES = ["n" * 240, "é" * 110, "😀" * 55, "mixed-" + "ü☃" * 45]


def _drain(ch, queue: str, want: int, timeout: float) -> List[tuple]:
    got: List[tuple] = []

    def more() -> bool:
        while True:
            method, props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                return len(got) >= want
            got.append((props.headers or {}, body.decode()))

    wait_for(more, timeout, every=0.05, fail=False)
    return got


def test_failure_reports_with_long_reasons_reach_the_source_cut_not_dropped(flowenv, http_server):
    fe, www = flowenv, http_server.root
    dst = fe.root / "dst"
    for name in NAMES:
        (www / "long").mkdir(parents=True, exist_ok=True)
        (www / "long" / name).write_bytes(b"real bytes\n")
    (www / "long" / "normal.txt").write_bytes(b"normal\n")
    fe.config(
        "subscribe", "longrep",
        f"exchange xs_guest\ndirectory {dst}\nmirror True\nretry_delay 3600\n",
    )  # fmt: skip
    fe.run("dd_subscribe", "declare", "longrep")
    conn = pika.BlockingConnection(pika.URLParameters(f"amqp://guest:guest@localhost/{fe.vhost}"))
    ch = conn.channel()
    ch.exchange_declare("xs_guest", "topic", durable=True)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "xs_guest", "v02.report.#")
    wrong = "d," + hashlib.md5(b"not these bytes").hexdigest()
    good = "d," + hashlib.md5(b"normal\n").hexdigest()
    for name, sum_ in [(n, wrong) for n in NAMES] + [("normal.txt", good)]:
        size = 7 if name == "normal.txt" else 11
        headers = {"sum": sum_, "parts": f"1,{size},1,0,0", "to_clusters": "localhost"}
        body = f"{format_time(time.time())} {http_server.url} long/{encode_path(name)}"
        ch.basic_publish(
            "xs_guest", "v02.post.long", body.encode(), pika.BasicProperties(headers=headers)
        )
    proc = fe.foreground("longrep")
    try:
        reports = _drain(ch, q, len(NAMES) + 1, 60)
        alive = proc.poll() is None
    finally:
        fe.terminate(proc)
        conn.close()
    log = fe.log_text(proc)
    assert alive and len(reports) == len(NAMES) + 1, (reports, log[-3000:])
    assert (dst / "long" / "normal.txt").read_bytes() == b"normal\n"
    failed = {}
    for headers, body in reports:
        relpath, code = body.split(" ")[2], body.split(" ")[3]
        for key, value in headers.items():
            size = len(str(value).encode("utf-8"))
            assert size <= 252, (key, size)
            str(value).encode("utf-8").decode("utf-8")  # cut on a character boundary
        if code != "201":
            failed[relpath] = headers.get("message", "")
    assert sorted(failed) == sorted(f"long/{encode_path(n)}" for n in NAMES), failed
    for message in failed.values():
        assert "checksum mismatch" in message and message.endswith("..."), message
    for name in NAMES:
        assert not (dst / "long" / name).exists()
