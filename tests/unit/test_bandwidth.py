"""Shared bandwidth budgets: the bucket file, grants, pacing, the transfer loop.

Time is a fake clock everywhere but in the multi-process test, which checks that no
reservation is lost under concurrent processes (a count, not a timing).
"""

from __future__ import annotations

import io
import json
import math
import multiprocessing
from pathlib import Path

import pytest

from sarra.transfer.bandwidth import Bandwidth, Pacer, Pacing, grant_for, server_key
from sarra.transfer.bucket import HEADROOM, MAX_MEMBERS, SharedBucket, fair_shares
from sarra.transfer.file import FileTransfer
from sarra.transfer.limits import Budget, Limits
from sarra.transfer.pool import TransferPool

BOOT = 1e9


class Clock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.t + BOOT

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def bucket(path: Path, clock: Clock) -> SharedBucket:
    return SharedBucket(path, clock=clock, wallclock=clock.wall)


# ------------------------------------------------------------------ the bucket


def test_reservations_are_served_one_after_the_other_at_the_rate(tmp_path):
    clock = Clock()
    b = bucket(tmp_path / "b", clock)
    assert [b.reserve(100, 100) for _ in range(3)] == [100.0, 101.0, 102.0]


def test_two_processes_opening_the_same_file_share_one_budget(tmp_path):
    clock = Clock()
    one, two = bucket(tmp_path / "b", clock), bucket(tmp_path / "b", clock)
    assert one.reserve(200, 100) == 100.0
    assert two.reserve(100, 100) == 102.0  # behind the other's 2 s
    assert one.reserve(100, 100) == 103.0


def test_an_idle_bucket_banks_nothing(tmp_path):
    clock = Clock()
    b = bucket(tmp_path / "b", clock)
    b.reserve(100, 100)
    clock.t = 500.0
    assert b.reserve(1000, 100) == 500.0
    assert b.reserve(100, 100) == 510.0  # no burst after the pause


def test_no_rate_means_no_wait_and_no_state(tmp_path):
    clock = Clock()
    b = bucket(tmp_path / "b", clock)
    assert b.reserve(10**9, 0) == 100.0
    assert (tmp_path / "b").read_bytes() == b""


@pytest.mark.parametrize(
    "content",
    [
        b"garbage",
        b'{"tat": "x"}',
        b"[1, 2]",
        json.dumps({"boot": BOOT - 3600, "tat": 5000.0, "members": {}}).encode(),  # other boot
        json.dumps({"boot": BOOT, "tat": 1e7, "members": {}}).encode(),  # absurdly far ahead
        json.dumps({"boot": BOOT, "tat": 150.0, "members": {"a": [1, 2]}}).encode(),
    ],
)
def test_a_bad_or_stale_file_starts_afresh(tmp_path, content):
    clock = Clock()
    (tmp_path / "b").write_bytes(content)
    assert bucket(tmp_path / "b", clock).reserve(100, 100) == 100.0


def test_the_file_is_private_and_never_followed_through_a_link(tmp_path):
    clock = Clock()
    bucket(tmp_path / "d" / "b", clock).reserve(1, 1)
    assert (tmp_path / "d" / "b").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o700
    (tmp_path / "target").write_text("keep")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(OSError):
        bucket(tmp_path / "link", clock)
    assert (tmp_path / "target").read_text() == "keep"


@pytest.mark.parametrize(
    "caps, shares",
    [
        ({"alice": 0}, {"alice": 1000}),  # alone: all of it
        ({"alice": 0, "bob": 0}, {"alice": 500, "bob": 500}),
        ({"alice": 100, "bob": 0}, {"alice": 100, "bob": 900}),  # a quota below half
        ({"alice": 800, "bob": 0}, {"alice": 500, "bob": 500}),  # a quota above half
        ({"a": 100, "b": 200, "c": 0, "d": 0}, {"a": 100, "b": 200, "c": 350, "d": 350}),
    ],
)
def test_fair_shares_are_max_min_with_quotas_as_caps(caps, shares):
    assert fair_shares(1000, caps) == pytest.approx(shares)


def test_members_use_is_counted_and_shares_go_to_those_that_want(tmp_path):
    clock = Clock()
    b = bucket(tmp_path / "b", clock)
    for _ in range(20):
        clock.t += 0.1
        b.reserve(100, 1000, "bob")  # bob moves 1000 B/s
    assert b.used("bob") == pytest.approx(1000 * (1 - 2.718**-1), rel=0.05)  # 2 s of tau
    assert b.used("alice") == 0.0
    no_cap = lambda name: 0  # noqa: E731
    assert b.share(1000, "bob", no_cap) == 1000  # nobody else wants any
    b.want(["alice"])
    assert b.share(1000, "bob", no_cap) == 500
    assert b.share(1000, "alice", lambda n: 100 if n == "alice" else 0) == 100
    clock.t += 6  # alice's want is old: forgotten
    assert b.share(1000, "bob", no_cap) == 1000


def test_members_are_served_first_come_first_served_on_the_total(tmp_path):
    clock = Clock()
    b = bucket(tmp_path / "b", clock)
    assert [b.reserve(100, 100, who) for who in ("alice", "bob", None)] == [100, 101, 102]


def test_members_are_bounded(tmp_path):
    clock = Clock()
    b = bucket(tmp_path / "b", clock)
    for i in range(MAX_MEMBERS + 50):
        b.reserve(1, 10**9, f"source{i}")
    state = json.loads((tmp_path / "b").read_bytes())
    assert len(state["members"]) <= MAX_MEMBERS


def _hammer(path: str, n: int) -> None:
    b = SharedBucket(Path(path))
    for _ in range(n):
        b.reserve(1, 10)


def test_concurrent_processes_lose_no_reservation(tmp_path):
    """4 processes x 150 reservations of 1 byte at 10 B/s: the bucket must end 60 s
    ahead of where it started; a lost update (no lock) would leave it short."""
    path = tmp_path / "b"
    b = SharedBucket(path)
    t0 = b.reserve(1, 10)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_hammer, args=(str(path), 150)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    state = json.loads(path.read_bytes())
    assert state["tat"] == pytest.approx(t0 + 0.1 + 600 * 0.1, abs=1e-6)


# ------------------------------------------------------------------ grants and pacing


class Counting(SharedBucket):
    calls = 0

    def reserve(self, nbytes, rate, member=None, cap=None):
        type(self).calls += 1
        return super().reserve(nbytes, rate, member)


def test_a_process_locks_the_file_once_per_grant_not_per_piece(tmp_path):
    clock = Clock()
    b = Counting(tmp_path / "b", clock=clock, wallclock=clock.wall)
    pacer = Pacer(b, 20 << 20)  # 20 MiB/s: grants of 1 MiB
    assert pacer.grant == 1 << 20
    for _ in range(64):
        pacer.take(64 << 10)  # 4 MiB in 64 KiB pieces
    assert Counting.calls == 4


def test_grants_stay_within_bounds():
    assert grant_for(1000) == 64 << 10
    assert grant_for(10**12) == 4 << 20


def test_pacing_sleeps_until_the_slowest_budget_allows(tmp_path):
    clock = Clock()
    fast = Pacer(bucket(tmp_path / "fast", clock), 1 << 20)
    slow = Pacer(bucket(tmp_path / "slow", clock), 64 << 10)  # one grant a second
    pacing = Pacing([fast, slow], clock=clock, sleep=clock.sleep)
    assert pacing.piece == 64 << 10
    for _ in range(5):
        pacing.wait(64 << 10)
    assert clock.t == pytest.approx(104.0)  # 5 grants of 1 s from t=100: the last at 104
    assert max(clock.slept) <= 0.25  # slices: a stop request is seen soon


def test_pacing_gives_up_waiting_on_stop(tmp_path):
    clock = Clock()
    pacing = Pacing([Pacer(bucket(tmp_path / "b", clock), 1000)], clock=clock, sleep=clock.sleep)
    pacing.wait(10**6)
    waited = pacing.wait(10**6, stop=lambda: True)
    assert waited == 0.0


def test_a_broken_bucket_file_never_fails_a_transfer(tmp_path, caplog):
    clock = Clock()

    class Broken(SharedBucket):
        def reserve(self, nbytes, rate, member=None, cap=None):
            raise OSError(5, "I/O error")

    pacing = Pacing([Pacer(Broken(tmp_path / "b", clock=clock), 10)], clock=clock)
    assert pacing.wait(10**6) == 0.0
    assert "unusable" in caplog.text


# ------------------------------------------------------------------ which budgets


@pytest.mark.parametrize(
    "a, b, same",
    [
        ("http://h.example/x/", "http://H.example:80/y/", True),
        ("https://h.example/", "https://h.example:443/", True),
        ("sftp://u@h.example/", "sftp://v@h.example:22/", True),
        ("http://h.example/", "https://h.example/", False),
        ("http://h.example:8000/", "http://h.example:8001/", False),
    ],
)
def test_servers_are_keyed_by_scheme_host_and_port(a, b, same):
    assert (server_key(a) == server_key(b)) is same


def test_local_files_have_no_server_budget():
    assert server_key("file:/data/") is None


def budgets(tmp_path: Path, clock: Clock, **kw) -> Bandwidth:
    return Bandwidth(
        config_file=tmp_path / "state" / "cfg" / "bandwidth",
        shared_dir=tmp_path / "state" / "bandwidth",
        clock=clock,
        sleep=clock.sleep,
        **kw,
    )


def test_flows_with_the_same_server_share_its_budget_and_others_do_not(tmp_path):
    clock = Clock()
    one = budgets(tmp_path, clock, per_host=1000)
    two = budgets(tmp_path, clock, per_host=1000)  # another config of the same user
    p1 = one.pacing("http://srv.example/a/")
    p2 = two.pacing("http://srv.example:80/b/")
    other = two.pacing("http://other.example/")
    assert p1 is not None and p2 is not None and other is not None
    assert p1.pacers[0].bucket.path == p2.pacers[0].bucket.path
    assert other.pacers[0].bucket.path != p1.pacers[0].bucket.path
    names = [p.name for p in (tmp_path / "state" / "bandwidth").iterdir()]
    assert all(n.startswith("host-") and "srv" not in n for n in names)  # hashed names


def test_no_limit_no_pacing(tmp_path):
    clock = Clock()
    bw = budgets(tmp_path, clock)
    assert not bw
    assert bw.pacing("http://srv.example/", "alice") is None


def test_the_config_total_is_left_out_where_asked(tmp_path):
    clock = Clock()
    bw = budgets(tmp_path, clock, total=1000, per_host=500)
    assert len(bw.pacing("http://srv.example/").pacers) == 2
    assert len(bw.pacing("http://srv.example/", total=False).pacers) == 1


def test_source_quotas_first_match_wins(tmp_path):
    clock = Clock()
    bw = budgets(tmp_path, clock, quotas=(("alice", 2000), ("*", 500)))
    assert bw.quota("alice") == 2000
    assert bw.quota("eve") == 500
    assert bw.pacing("http://srv.example/", "eve").pacers[0].rate == 500


def test_the_hosts_share_scales_the_config_total_of_every_source(tmp_path):
    clock = Clock()
    bw = budgets(tmp_path, clock, total=1000)
    sara = budgets(tmp_path, clock, total=1000, by_source=True)
    plain, alice = bw.pacing("file:/x/"), sara.pacing("file:/x/", "alice")
    bw.set_share(0.25)
    sara.set_share(0.25)
    assert plain.pacers[0].rate == 250
    alice.wait(1)
    assert alice.pacers[0].rate == 250


def test_backlog_and_cap_of_a_source(tmp_path):
    clock = Clock()
    bw = budgets(tmp_path, clock, total=3000, quotas=(("alice", 1000),), by_source=True)
    assert bw.backlog("alice") == 0.0
    assert bw.backlog("eve") == 0.0  # no quota: never behind one
    bw.pacing("http://srv.example/", "alice").wait(5000)  # reserves a grant: 64 KiB
    assert bw.backlog("alice") == pytest.approx(65.536)
    assert bw.used("alice") > 0 and bw.used("eve") == 0
    assert bw.cap("alice") == 1000 and bw.cap("eve") == 3000  # quota; alone: all
    bw.want(["alice", "eve"])
    assert bw.cap("eve") == 2000  # alice's quota leaves eve the rest
    quotas_only = budgets(tmp_path / "q", clock, quotas=(("alice", 1000),), by_source=True)
    assert quotas_only.cap("alice") == 1000 and quotas_only.cap("eve") == math.inf
    quotas_only.pacing("http://srv.example/", "eve").wait(5000)
    assert quotas_only.used("eve") > 0  # counted, not limited
    plain = budgets(tmp_path / "p", clock, total=3000)  # dd_subscribe: no sources
    assert plain.cap("alice") == math.inf and plain.used("alice") == 0.0


def test_who_works_on_a_source_is_shared(tmp_path):
    clock = Clock()
    one = budgets(tmp_path, clock, quotas=(("alice", 1000),), by_source=True)
    two = budgets(tmp_path, clock, quotas=(("alice", 1000),), by_source=True)
    assert one.claim("alice", 2.0) == 2.0  # 2 s of alice's work taken at t=100
    assert two.claim("alice", 2.0) == 0.0  # none left for another instance
    assert two.working("alice") == 102.0
    clock.t = 101.5
    assert two.claim("alice", 2.0) == pytest.approx(1.5)
    two.settle("alice", 1.0)  # its messages needed less
    assert one.working("alice") == pytest.approx(102.5)
    one.settle("alice", -0.5)  # a last file bigger than what was left
    assert two.working("alice") == pytest.approx(103.0)
    assert two.working("eve") == 0.0


# ------------------------------------------------------------------ in the transfer loops


class Recorder:
    """A stand-in Pacing that records what the loops tell it."""

    piece = 4096

    def __init__(self, pause: float = 0.0) -> None:
        self.moved: list[int] = []
        self.pause = pause

    def wait(self, n: int, stop=lambda: False) -> float:
        self.moved.append(n)
        return self.pause


def test_get_waits_for_the_pacing_after_every_piece_read(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 100_000)
    t = FileTransfer("file:/")
    t.pacing = Recorder()
    t.chunk_size = 4096
    dest = io.BytesIO()
    assert t.get(str(src), dest) == 100_000
    assert sum(t.pacing.moved) == 100_000
    assert max(t.pacing.moved) <= 4096


def test_put_waits_for_the_pacing_after_every_piece_sent(tmp_path):
    t = FileTransfer("file:/")
    t.pacing = Recorder()
    assert t.put(io.BytesIO(b"y" * 50_000), str(tmp_path / "out.bin")) == 50_000
    assert sum(t.pacing.moved) == 50_000


def test_time_spent_waiting_for_a_limit_is_not_held_against_the_deadline():
    budget = Budget(10, Limits(min_rate=1000, clock=lambda: 0.0), 10_000)
    start = budget.start
    budget.excuse(30.0)
    assert budget.start == start + 30.0


def test_the_pool_caps_reads_at_a_grant_and_sets_the_pacing_per_source(tmp_path):
    clock = Clock()
    bw = budgets(tmp_path, clock, quotas=(("alice", 100_000), ("eve", 2_000_000)))
    pool = TransferPool(bandwidth=bw)
    pool.source = "alice"
    t = pool.get("file:/tmp/")
    assert t.chunk_size == 64 << 10
    assert t.pacing is bw.pacing("file:/tmp/", "alice")
    pool.source = "eve"
    assert pool.get("file:/tmp/").pacing is bw.pacing("file:/tmp/", "eve")
    pool.source = None
    assert pool.get("file:/tmp/").pacing is None
    assert pool.get("file:/tmp/").chunk_size == FileTransfer.chunk_size


def test_under_a_rate_a_member_is_paced_at_its_fair_share(tmp_path):
    """alice has three transfers going, eve one; instances work on both: under
    1000 B/s each gets about 500 (at most HEADROOM times that), not 750 and 250 as
    first come, first served would give."""
    clock = Clock()
    b = bucket(tmp_path / "b", clock)
    for who in ("alice", "eve"):
        b.claim(who, 100.0)  # instances are working on both
    got = {"alice": 0, "eve": 0}
    for step in range(200):
        clock.t = 100.0 + step * 0.05
        for who in ["alice"] * 3 + ["eve"]:
            # a transfer reserves again once its last reservation has started
            if b.reserve(0, 1000, who) <= clock.t + 0.05:
                b.reserve(50, 1000, who)
                got[who] += 50
    assert got["alice"] <= HEADROOM * 1000 / 2 * 10.5, got
    assert got["eve"] >= (2 - HEADROOM) * 1000 / 2 * 9.5, got
    assert got["alice"] + got["eve"] <= 1000 * 10.5


def test_a_flood_of_server_names_from_notices_shares_one_budget_past_the_cap(tmp_path, monkeypatch):
    """Hostile notices naming ever new servers: files stop growing at the cap (all the
    names after it share one overflow budget), and the process holds a bounded number
    of pacers (each one an open file)."""
    import sarra.transfer.bandwidth as bw

    monkeypatch.setattr(bw, "MAX_FILES", 8)
    clock = Clock()
    b = budgets(tmp_path, clock, per_host=1000)
    paths = set()
    for i in range(200):
        p = b.pacing(f"http://h{i}.example/")
        assert p is not None
        paths.add(p.pacers[0].bucket.path)
    files = list((tmp_path / "state" / "bandwidth").iterdir())
    assert len(files) <= 8 * 4 + 1
    assert any(path.name == "host-overflow" for path in paths)
    assert len(b._pacers) <= bw.MAX_PACINGS
