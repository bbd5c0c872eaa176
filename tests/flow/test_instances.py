"""``instances 3`` under ``dd_subscribe start``: three daemons share one queue."""

from __future__ import annotations

import time

import pytest

from tests.fixtures import rabbit
from tests.fixtures.waiting import wait_for
from tests.flow.conftest import count_files, listing, make_small_files

pytestmark = [pytest.mark.flow]


def test_three_instances_share_the_queue_and_everything_arrives(flowenv, http_server):
    fe, www = flowenv, http_server.root
    src, dst = www / "many", fe.root / "dst"
    make_small_files(src, 900, size=512)
    fe.config(
        "subscribe", "three",
        f"exchange xs_guest\ndirectory {dst}\nmirror True\ninstances 3\nprefetch 10\n",
    )  # fmt: skip
    fe.run("dd_subscribe", "declare", "three")
    out = fe.run("dd_subscribe", "start", "three").stdout
    try:
        assert rabbit.wait_for_connections(fe.vhost, 3, timeout=60), out
        t0 = time.monotonic()
        fe.post("-u", http_server.url, "-pbd", str(www), str(src))
        assert wait_for(lambda: count_files(dst) >= 900, 90, fail=False), count_files(dst)
        elapsed = time.monotonic() - t0
    finally:
        stopped = fe.run("dd_subscribe", "stop", "three", check=False)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert listing(dst / "many") == listing(src)
    status = fe.run("dd_subscribe", "status", "three", check=False)
    assert status.returncode == 3, status.stdout
    per_instance = []
    for n in (1, 2, 3):
        text = (fe.log_dir / f"subscribe_three_{n:02d}.log").read_text()
        assert "Traceback" not in text, text[-3000:]
        per_instance.append(text.count("downloaded "))
    assert all(per_instance), per_instance
    assert sum(per_instance) == 900
    print(f"3 instances: 900 files in {elapsed:.1f}s (post included), split {per_instance}")
