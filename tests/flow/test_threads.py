"""``threads N``: the files of a batch are fetched by N threads, each on its own
connection; batches holding removals or renames are still worked in order."""

from __future__ import annotations

import pytest

from tests.fixtures.waiting import wait_for
from tests.flow.conftest import inflight_files, listing, make_tree
from tests.flow.test_post_subscribe import check_same, fetch_all, subscribe_conf

pytestmark = [pytest.mark.flow]


def test_four_threads_fetch_a_tree_identical_over_several_connections(flowenv, http_server):
    fe, www = flowenv, http_server.root
    src, dst = www / "tree", fe.root / "dst"
    n = make_tree(src, 300)
    subscribe_conf(fe, "thr", dst, "threads 4\nprefetch 100\nbatch 100\n")
    fe.post("-u", http_server.url, "-pbd", str(www), str(src))
    fetch_all(fe, "thr", dst, n)
    check_same(src, dst / "tree")
    assert len([r for r in http_server.requests if r[0] == "GET"]) == n  # each file once
    assert len(set(http_server.peers)) > 1  # fetched side by side, not on one connection


def test_removals_and_renames_queued_with_the_files_apply_in_order(flowenv, http_server):
    fe, www = flowenv, http_server.root
    src, dst = www / "tree", fe.root / "dst"
    src.mkdir()
    subscribe_conf(fe, "thr", dst, "threads 4\nprefetch 100\nbatch 100\n")
    for i in range(40):
        (src / f"f{i:02d}.txt").write_text(f"file {i}\n")
    url = ["-u", http_server.url, "-pbd", str(www)]
    fe.post(*url, str(src))
    for i in range(0, 40, 8):  # removed after being posted: the R comes later in the queue
        (src / f"f{i:02d}.txt").unlink()
        fe.post(*url, "-rm", str(src / f"f{i:02d}.txt"))
    (src / "f01.txt").rename(src / "renamed.txt")
    fe.post(*url, "-mv", str(src / "f01.txt"), str(src / "renamed.txt"))
    proc = fe.foreground("thr")
    same = wait_for(lambda: listing(src) == listing(dst / "tree"), 60, fail=False)
    assert fe.terminate(proc) == 0
    assert same, f"{sorted(set(listing(src)) ^ set(listing(dst / 'tree')))}"
    assert inflight_files(dst) == []
