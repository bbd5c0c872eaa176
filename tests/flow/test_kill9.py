"""kill -9 of a subscriber in the middle of a 2,000-file flow loses and corrupts nothing."""

from __future__ import annotations

import os
import time

import pytest

from tests.fixtures.waiting import wait_for
from tests.flow.conftest import (
    count_files,
    inflight_files,
    listing,
    make_small_files,
    md5_of,
)  # fmt: skip

pytestmark = [pytest.mark.flow]

FILES = 2000
BIG = {300, 450, 600, 750, 900}  # indices made 4 MiB, around the kill point


def test_kill9_mid_flow_then_restart_every_file_arrives_intact(flowenv, http_server):
    fe, www = flowenv, http_server.root
    src, dst = www / "k", fe.root / "dst"
    make_small_files(src, FILES, size=1024)
    for i in BIG:
        with open(src / f"d{i // 500:02d}" / f"f{i:05d}.dat", "wb") as f:
            f.write(os.urandom(4 << 20))
    fe.config("subscribe", "k9", f"exchange xs_guest\ndirectory {dst}\nmirror True\n")
    fe.run("dd_subscribe", "declare", "k9")
    t_post = time.monotonic()
    fe.post("-u", http_server.url, "-pbd", str(www), str(src))
    t_post = time.monotonic() - t_post

    first = fe.foreground("k9", "first.log")
    assert wait_for(
        lambda: count_files(dst) >= FILES * 0.3 or first.poll() is not None, 60, 0.01, fail=False
    )
    first.kill()
    first.wait(10)
    at_kill, partial_at_kill = count_files(dst), inflight_files(dst)
    assert at_kill < FILES, "the flow finished before the kill: nothing was tested"

    t0 = time.monotonic()
    second = fe.foreground("k9", "second.log")
    done = wait_for(lambda: count_files(dst) >= FILES, 90, fail=False)
    elapsed = time.monotonic() - t0
    rc = fe.terminate(second)
    log = fe.log_text(second)
    assert done, f"{count_files(dst)}/{FILES}\n{log[-3000:]}"
    assert rc == 0 and "Traceback" not in log, log[-3000:]
    want, got = listing(src), listing(dst / "k")
    assert sorted(set(want) ^ set(got)) == []
    assert [k for k in want if want[k] != got[k]] == []  # none corrupt, none partial
    assert inflight_files(dst) == []  # the inflight file of the kill was reused
    for i in BIG:
        rel = f"d{i // 500:02d}/f{i:05d}.dat"
        assert md5_of(dst / "k" / rel) == md5_of(src / rel)
    print(
        f"dd_post of {FILES} files: {t_post:.1f}s (process start included); kill -9 at "
        f"{at_kill}/{FILES} with {len(partial_at_kill)} inflight file(s); restart placed "
        f"the rest in {elapsed:.1f}s"
    )
