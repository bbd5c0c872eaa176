"""v03 end to end with the real commands (issue 17): dd_post in v02 and in v03 to one
dd_subscribe bound to both prefixes on one queue; inline content written without a fetch.
"""

from __future__ import annotations

import os

import pytest

from tests.fixtures import rabbit as rmq
from tests.flow.conftest import listing
from tests.flow.test_post_subscribe import fetch_all, subscribe_conf

pytestmark = [pytest.mark.flow]


def bindings(vhost: str) -> list:
    out = rmq.rabbitmqctl(
        "list_bindings", "-p", vhost, "source_name", "destination_name", "routing_key",
        "--no-table-headers",
    )  # fmt: skip
    return [line.split("\t") for line in out.splitlines() if line.startswith("xs_guest\t")]


def test_one_queue_bound_to_both_prefixes_gets_v02_and_v03_posts(flowenv, http_server):
    fe, www = flowenv, http_server.root
    (www / "v2").mkdir()
    (www / "v3 dir").mkdir()
    (www / "v2" / "a.txt").write_bytes(b"posted in v02\n")
    (www / "v3 dir" / "b #1.bin").write_bytes(os.urandom(70_000))
    (www / "v3 dir" / "100%20 literal.txt").write_bytes(b"v03 carries %20\n")
    dst = fe.root / "dst"
    subscribe_conf(fe, "both", dst, "topic_prefix v02.post,v03\n")
    queues = {q for _, q, _ in bindings(fe.vhost)}
    keys = sorted(k for _, _, k in bindings(fe.vhost))
    assert len(queues) == 1 and keys == ["v02.post.#", "v03.#"]
    fe.post("-u", http_server.url, "-pbd", str(www), str(www / "v2"))
    fe.post("--post_format", "v03", "-u", http_server.url, "-pbd", str(www), str(www / "v3 dir"))
    fetch_all(fe, "both", dst, 3)
    assert listing(dst) == listing(www)


def test_inline_v03_posts_are_written_without_any_server(flowenv, tmp_path):
    fe = flowenv
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "text.txt").write_text("inline text é\n")
    (src / "d" / "bin.dat").write_bytes(bytes(range(256)) * 8)
    (src / "d" / "empty").write_bytes(b"")
    dst = fe.root / "dst"
    subscribe_conf(fe, "inl", dst, "topic_prefix v03\n")
    # nothing listens on the discard port: a fetch could only fail
    fe.post("--post_format", "v03", "--inline", "on", "-u", "http://127.0.0.1:9/",
            "-pbd", str(src), str(src / "d"))  # fmt: skip
    fetch_all(fe, "inl", dst, 3)
    assert listing(dst) == listing(src)
