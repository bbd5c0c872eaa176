"""sarra.flow.parallel: which batches may go to threads, and the thread runner."""

from __future__ import annotations

import threading

import pytest

from sarra.core import message
from sarra.core.delivery import Delivery
from sarra.flow.parallel import WorkThreads, chains

SUM = "d," + "0" * 32


def d(relpath: str, **headers: str) -> Delivery:
    h = {"sum": SUM, "parts": "1,10,1,0,0", **headers}
    return Delivery(message.new_post("http://h/", relpath, h))


def names(groups):
    return [[x.notice.relpath for x in g] for g in groups]


def test_plain_files_are_grouped_by_name_in_batch_order():
    batch = [d("a/x"), d("b/y"), d("c/x"), d("z")]
    assert names(chains(batch)) == [["a/x", "c/x"], ["b/y"], ["z"]]


@pytest.mark.parametrize(
    "odd",
    [
        {"sum": "R," + "0" * 128},
        {"sum": "L," + "0" * 128, "link": "t"},
        {"oldname": "old"},
        {"newname": "new"},
        {"rename": "other"},
        {"parts": "i,4,3,0,1"},
        {"parts": "nonsense"},
    ],
)
def test_any_removal_link_rename_or_block_keeps_the_batch_in_order(odd):
    assert chains([d("a"), d("b", **odd)]) is None


def test_threads_run_every_delivery_with_their_own_work_and_keep_the_broker_alive():
    seen: dict = {}
    lock = threading.Lock()
    barrier = threading.Barrier(3, timeout=10)

    def work_for(k: int):
        def work(x: Delivery) -> None:
            if x.notice.relpath.startswith("first"):
                barrier.wait()  # three chains run at the same time
            with lock:
                seen[x.notice.relpath] = k

        return work

    kept = []
    threads = WorkThreads([work_for(k) for k in range(3)], keepalive=lambda: kept.append(1))
    batch = [d(f"first{k}") for k in range(3)] + [d(f"f{k}") for k in range(20)]
    skipped = threads.run(chains(batch), lambda x, w: w(x), lambda: False)
    threads.close()
    assert skipped == [] and len(seen) == 23
    assert len({seen[f"first{k}"] for k in range(3)}) == 3  # each chain its own work


def test_a_stop_leaves_the_rest_of_each_chain_undone():
    threads = WorkThreads([lambda x: None], keepalive=lambda: None)
    done = []
    batch = [d("same") for _ in range(5)]
    skipped = threads.run(chains(batch), lambda x, w: done.append(x), lambda: len(done) >= 2)
    threads.close()
    assert len(done) == 2 and len(skipped) == 3


def test_a_bug_in_a_thread_is_raised_to_the_flow():
    threads = WorkThreads([lambda x: None, lambda x: None], keepalive=lambda: None)

    def process(x, w):
        if x.notice.relpath == "bad":
            raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        threads.run(chains([d("good"), d("bad")]), process, lambda: False)
    threads.close()
