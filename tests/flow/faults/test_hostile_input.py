"""Hostile input: 10,000 fuzzed messages injected into the subscriber's queue with pika.

Alongside a good flow (the tree posted by dd_post): bad bodies, non-UTF-8, v03 JSON,
missing or wrong headers, huge headers, wrong value types, traversal paths, bad parts.
The daemon stays up, every bad message gets exactly one log line and is dropped (or
rejected and acknowledged), and the good flow completes.  Fixed seed: reproducible.
"""

from __future__ import annotations

import collections
import json
import random

import pika
import pytest

from tests.fixtures.flowkit import md5_listing
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.flow, pytest.mark.integration]

BAD = 10_000
FILES = 40
#: the one line each bad message must produce
HANDLED = (
    r"sarra\.flow\.engine: (dropping undecodable message|rejected |failed )"
    r"|sarra\.flow\.engine: ignoring "
)


def good(rng: random.Random, base: str = "http://127.0.0.1:9/") -> tuple:
    """A well-formed post of a file the server does not have (a 404: permanent)."""
    rel = f"d{rng.randrange(9)}/x{rng.randrange(10**6)}.bin"
    headers = {
        "sum": f"d,{rng.getrandbits(128):032x}", "parts": "1,10,1,0,0",
        "mtime": "20260101T000000.000", "atime": "20260101T000000.000", "mode": "644",
    }  # fmt: skip
    return (
        "v02.post." + rel.rsplit("/", 1)[0],
        headers,
        f"20260101000000.000 {base} {rel}",
    )


def mutate(rng: random.Random, kind: str, base: str = "http://127.0.0.1:9/") -> tuple:
    """One bad message of ``kind``: (routing key, headers, body bytes)."""
    topic, headers, body = good(rng, base)
    if kind == "garbage body":
        return topic, headers, bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 200)))
    if kind == "non-utf8 body":
        return topic, headers, body.encode() + b"\xff\xfe\x80"
    if kind == "empty body":
        return topic, headers, b""
    if kind == "v03 json":
        # a v03 body decodes as v03 whatever the topic (as sr3 posts it): hostile ones
        v03 = {"pubTime": "20260101T000000", "baseUrl": base, "relPath": "a/b"}
        v03.update(
            rng.choice(
                [
                    {"relPath": rng.choice(["../../etc/passwd", "a/../../x", "/../x", ".."])},
                    {"pubTime": "yesterday"},
                    {"baseUrl": "nourl"},
                    {"identity": {"method": "md5", "value": "not base64!"}},
                    {"size": rng.choice([-1, "ten", 1e400, [1]])},
                    {"relPath": None},
                ]
            )
        )
        text = json.dumps(v03)
        return (
            topic,
            headers,
            (text[: rng.randrange(1, len(text))] if rng.random() < 0.2 else text).encode(),
        )
    if kind == "missing sum":
        headers.pop("sum")
    elif kind == "bad sum":
        headers["sum"] = rng.choice(["q,zz", "d", "", "d,notHex", "x" * 300])
    elif kind == "huge header":
        headers[f"h{rng.randrange(99)}"] = "A" * rng.randrange(
            20_000, 120_000
        )  # a frame is at most 128 KiB
    elif kind == "wrong types":
        headers[rng.choice(["sum", "parts", "mtime", "mode"])] = rng.choice(
            [42, [1, 2], {"a": 1}, True, None]
        )
    elif kind == "traversal":
        rel = rng.choice(["../../etc/passwd", "a/../../../x", "/../x", "..", "a/./../../b"])
        body = f"20260101000000.000 {base} {rel}"
    elif kind == "bad parts":
        headers["parts"] = rng.choice(
            ["x,1,2", "i,0,0,0,0", "p,-1,2,3,4", "1,a,b", "i,10,1,5,3", ""]
        )
    elif kind == "bad time":
        body = "yesterday " + body.split(" ", 1)[1]
    elif kind == "bad url":
        body = "20260101000000.000 nourl " + body.rsplit(" ", 1)[1]
    return topic, headers, body.encode()


KINDS = ["garbage body", "non-utf8 body", "empty body", "v03 json", "missing sum", "bad sum",
         "huge header", "wrong types", "traversal", "bad parts", "bad time", "bad url"]  # fmt: skip


def inject(url: str, queue: str, base: str, seed: int = 20260101) -> collections.Counter:
    """Publish the bad messages with their v02 topics through an exchange bound to the
    daemon's queue, so that they go through every check (not only the topic's)."""
    rng = random.Random(seed)
    sent: collections.Counter = collections.Counter()
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.exchange_declare("x_fuzz", "topic")
    ch.queue_bind(queue, "x_fuzz", "#")
    for _ in range(BAD):
        kind = rng.choice(KINDS)
        topic, headers, body = mutate(rng, kind, base)
        ch.basic_publish(
            "x_fuzz", topic, body, pika.BasicProperties(headers=headers, delivery_mode=2)
        )
        sent[kind] += 1
    conn.close()
    return sent


def test_10000_fuzzed_messages_each_logged_once_and_dropped_good_flow_completes(
    make_flow, main_rabbit
):
    flow = make_flow(main_rabbit, files=FILES, mb_files=1)
    tap = flow.open_tap()
    stage = flow.add_subscriber("http", "batch 200\nprefetch 200")
    sent = inject(flow.url, stage.queue, flow.base_urls["http"] + "fuzz/")
    flow.post("http")
    handled = lambda: flow.kit.log_lines(stage.program, stage.conf, "", HANDLED)  # noqa: E731
    flow.wait_settled(flow.expected, timeout=300, done=lambda: len(handled()) >= BAD)
    lines = handled()
    flow.counts("hostile input", [(f"injected: {k}", v) for k, v in sorted(sent.items())]
                + [("log lines for bad messages", len(lines))])  # fmt: skip
    assert sum(sent.values()) == BAD
    assert len(lines) == BAD
    assert flow.kit.pids(stage.program, stage.conf), "the daemon must still be running"
    flow.check_trees(flow.expected)
    flow.check_queues_empty()
    assert tap.codes("http://").get(201) == FILES
    # every line that is not about an injected message would be an unexpected error
    injected = set(lines)
    assert [e for e in flow.kit.errors(stage.program, stage.conf) if e not in injected] == []


def test_10000_fuzzed_messages_into_dd_sara_each_logged_once_and_dropped(make_flow, main_rabbit):
    flow = make_flow(main_rabbit, files=FILES, mb_files=1)
    stage = flow.add_sara()
    sent = inject(flow.url, stage.queue, flow.base_urls["http"] + "fuzz/")
    flow.post("http")
    handled = lambda: flow.kit.log_lines(stage.program, stage.conf, "", HANDLED)  # noqa: E731
    wait_for(lambda: len(handled()) >= BAD and not flow.backlog(), 300, "dd_sara to drain")
    flow.counts("hostile input (dd_sara)", [("log lines for bad messages", len(handled()))])
    assert sum(sent.values()) == BAD
    assert len(handled()) == BAD
    assert flow.kit.pids(stage.program, stage.conf), "dd_sara must still be running"
    flow.check_queues_empty()
    got = md5_listing(stage.dest)
    assert sorted(got.values()) == sorted(flow.expected.values())
