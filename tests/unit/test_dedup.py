from __future__ import annotations

import pytest

from sarra.core import message
from sarra.flow.dedup import DedupCache, fingerprint, owner_of


def post(rel="data/f.txt", source="alice", pubtime="20260101000000.000"):
    return message.new_post(
        "http://h/", rel, {"sum": "d,abc", "parts": "1,3,1,0,0", "source": source}, pubtime=pubtime
    )


def test_same_data_at_two_paths_of_one_source_is_one_fingerprint_on_data_basis():
    a, b = post(source="alice"), post(rel="other/f.txt", source="alice")
    assert fingerprint(a, "data") == fingerprint(b, "data")
    assert fingerprint(a, "path") != fingerprint(b, "path")


@pytest.mark.parametrize("basis", ["path", "name", "data"])
@pytest.mark.parametrize("s", ["d,abc", "s,abc", "n,abc", "R,abc", "L,abc", "m,abc"])
@pytest.mark.parametrize(
    "mine, theirs", [("alice", "eve"), ("alice", ""), ("u", "u_x"), ("a", "a|"), ("1:a|", "1")]
)
def test_the_same_post_from_two_sources_is_two_fingerprints(basis, s, mine, theirs):
    def make(source):
        h = {"sum": s, "parts": "1,3,1,0,0"} | ({"source": source} if source else {})
        return message.new_post("http://h/", "data/f.txt", h)

    assert fingerprint(make(mine), basis) != fingerprint(make(theirs), basis)
    assert fingerprint(make(mine), basis) == fingerprint(make(mine), basis)


def test_a_claim_by_one_source_leaves_anothers_post_free(tmp_path):
    c = DedupCache(tmp_path / "c.sqlite", 60)
    eve, alice = post(source="eve"), post(source="alice")
    assert c.claim(fingerprint(eve), owner_of(eve))
    assert c.claim(fingerprint(alice), owner_of(alice))
    assert not c.claim(fingerprint(alice), owner_of(post(source="alice", pubtime="20260102000000")))


def test_second_message_with_same_fingerprint_is_a_duplicate(tmp_path):
    c = DedupCache(tmp_path / "c.sqlite", 60)
    a, b = post(pubtime="20260101000000.000"), post(pubtime="20260101000001.000")
    assert c.claim(fingerprint(a), owner_of(a), now=0)
    assert not c.claim(fingerprint(b), owner_of(b), now=1)


def test_redelivery_after_a_crash_before_completion_is_processed_again(tmp_path):
    c = DedupCache(tmp_path / "c.sqlite", 60)
    a = post()
    assert c.claim(fingerprint(a), owner_of(a), now=0)
    # the process died: no done(), no release(); the broker redelivers the message
    assert c.claim(fingerprint(a), owner_of(a), redelivered=True, now=5)


def test_redelivery_after_completion_is_a_duplicate(tmp_path):
    c = DedupCache(tmp_path / "c.sqlite", 60)
    a = post()
    c.claim(fingerprint(a), owner_of(a), now=0)
    c.done(fingerprint(a))
    assert not c.claim(fingerprint(a), owner_of(a), redelivered=True, now=5)


def test_same_message_twice_without_redelivery_flag_is_a_duplicate(tmp_path):
    c = DedupCache(tmp_path / "c.sqlite", 60)
    a = post()
    assert c.claim(fingerprint(a), owner_of(a), now=0)
    assert not c.claim(fingerprint(a), owner_of(a), now=0)


def test_release_and_expiry(tmp_path):
    c = DedupCache(tmp_path / "c.sqlite", 60)
    a = post()
    c.claim(fingerprint(a), owner_of(a), now=0)
    c.release(fingerprint(a), "someone else")
    assert len(c) == 1
    c.release(fingerprint(a), owner_of(a))
    assert len(c) == 0
    c.claim(fingerprint(a), owner_of(a), now=0)
    assert c.expire(now=100) == 1


def test_claims_are_shared_between_instances(tmp_path):
    one, two = DedupCache(tmp_path / "c.sqlite", 60), DedupCache(tmp_path / "c.sqlite", 60)
    a, b = post(pubtime="20260101000000.000"), post(pubtime="20260101000009.000")
    assert one.claim(fingerprint(a), owner_of(a))
    assert not two.claim(fingerprint(b), owner_of(b))


def test_many_instances_opening_a_new_cache_at_once_all_succeed(tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=DedupCache, args=(tmp_path / "c.sqlite", 60)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0] * 8
