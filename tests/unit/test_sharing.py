"""How a config's bandwidth is shared: the host's part of the total (from the queue's
consumer count) and dd_sara's holding back of sources over their rate."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sarra.core import message
from sarra.core.errors import BrokerError
from sarra.flow.sharing import HORIZON, SharedSource, announced_bytes, source_of
from sarra.flow.source import BrokerSource
from sarra.transfer.bandwidth import Bandwidth
from tests.fixtures.fakebroker import FakeBroker
from tests.unit.test_bandwidth import Clock
from tests.unit.test_sara_flow import setup

DATA = b"x" * 1000


def post(rel: str, size: int = 1000, **headers) -> message.Notice:
    h = {"sum": "d," + hashlib.md5(rel.encode()).hexdigest(), "parts": f"1,{size},1,0,0"}
    return message.new_post("http://src.example/", rel, {**h, **headers})


class CountingBroker(FakeBroker):
    def __init__(self, consumers: int = 1) -> None:
        super().__init__()
        self.count = consumers
        self.asked = 0

    def consumers(self, queue: str) -> int:
        self.asked += 1
        if self.count < 0:
            raise BrokerError("no such queue")
        return self.count


def shared(tmp_path: Path, broker: FakeBroker, clock: Clock, **kw) -> SharedSource:
    opts = {k: kw.pop(k) for k in ("total", "quotas", "by_source") if k in kw}
    bw = Bandwidth(
        config_file=tmp_path / "cfg" / "bandwidth",
        shared_dir=tmp_path / "bandwidth",
        clock=clock,
        sleep=clock.sleep,
        **opts,
    )
    by_source = opts.get("by_source", False)
    kw.setdefault("from_exchange", by_source)  # ingest
    return SharedSource(
        BrokerSource(broker, "q_feeder.sara.x"), bw, clock=clock, by_source=by_source, **kw
    )


# ------------------------------------------------------------------ among hosts


def test_a_host_takes_its_instances_part_of_the_total(tmp_path):
    clock, b = Clock(), CountingBroker(consumers=8)
    src = shared(tmp_path, b, clock, total=8000, instances=2)
    src.gather(10, 0)
    assert src.bandwidth.share == pytest.approx(0.25)
    assert src.bandwidth.pacing("file:/x/").pacers[0].rate == 2000


def test_the_consumer_count_is_looked_at_again_only_after_a_while(tmp_path):
    clock, b = Clock(), CountingBroker(consumers=4)
    src = shared(tmp_path, b, clock, total=8000, instances=2)
    src.gather(10, 0)
    b.count = 2  # the other host stopped
    src.gather(10, 0)
    assert b.asked == 1 and src.bandwidth.share == 0.5
    clock.t += 31
    src.gather(10, 0)
    assert b.asked == 2 and src.bandwidth.share == 1.0


def test_fewer_consumers_than_our_own_instances_means_all_of_it(tmp_path):
    clock, b = Clock(), CountingBroker(consumers=1)  # the others are still connecting
    src = shared(tmp_path, b, clock, total=8000, instances=4)
    src.gather(10, 0)
    assert src.bandwidth.share == 1.0


def test_a_broker_that_cannot_say_leaves_the_last_share(tmp_path):
    clock, b = Clock(), CountingBroker(consumers=4)
    src = shared(tmp_path, b, clock, total=8000, instances=1)
    src.gather(10, 0)
    b.count = -1
    clock.t += 31
    src.gather(10, 0)
    assert src.bandwidth.share == 0.25


# ------------------------------------------------------------------ among sources


def test_on_ingest_the_source_is_the_exchange_owner_not_the_claim():
    b = FakeBroker()
    b.put(post("f", source="alice"), exchange="xs_eve_public")
    [d] = BrokerSource(b).gather(1, 0)
    assert source_of(d, from_exchange=True) == "eve"
    assert source_of(d, from_exchange=False) == "alice"


@pytest.mark.parametrize(
    "headers, size",
    [
        ({"parts": "1,5000,1,0,0"}, 5000),
        ({"parts": "i,1000,4,1,1"}, 1000),  # one block of a partitioned file
        ({"parts": "garbage"}, 64 << 10),
        ({"sum": "R,0"}, 0),  # a removal moves nothing
    ],
)
def test_announced_bytes(headers, size):
    b = FakeBroker()
    b.put(message.new_post("http://src.example/", "f", {"sum": "d,abc", **headers}))
    [d] = BrokerSource(b).gather(1, 0)
    assert announced_bytes(d) == size


def behind(src: SharedSource, source: str, seconds: float) -> None:
    """Make ``source`` ``seconds`` behind its quota, as other instances would."""
    rate = src.bandwidth.quota(source)
    pacing = src.bandwidth.pacing("file:/x/", source, total=False)
    pacing.pacers[-1].bucket.reserve(int(rate * seconds), rate)


def test_a_source_behind_its_quota_is_held_back_and_the_others_go_ahead(tmp_path):
    clock, b = Clock(), FakeBroker()
    src = shared(tmp_path, b, clock, quotas=(("alice", 1000), ("eve", 1000)), by_source=True)
    behind(src, "alice", 10.0)
    half = int(HORIZON * 1000 / 2)  # files of half what a gather may take of 1000 B/s
    for i in range(3):
        b.put(post(f"a{i}", size=half), exchange="xs_alice")
        b.put(post(f"e{i}", size=half), exchange="xs_eve")
    got = src.gather(10, 0)
    assert [d.notice.relpath for d in got] == ["e0", "e1"]  # HORIZON s of eve's 1000 B/s
    assert len(src.held) == 4 and not b.acked and not b.nacked
    got = src.gather(10, 0)  # eve has her HORIZON in hand, alice is still 10 s behind
    assert [d.notice.relpath for d in got] == ["e2"]  # one more: an instance never idles
    assert src.gather(10, 0) == []  # only alice's are left
    clock.t += 10 - HORIZON + 0.1  # alice is back to less than HORIZON behind
    assert [d.notice.relpath for d in src.gather(10, 0)] == ["a0"]


def test_a_big_file_goes_when_its_source_is_not_behind(tmp_path):
    clock, b = Clock(), FakeBroker()
    src = shared(tmp_path, b, clock, quotas=(("alice", 1000),), by_source=True)
    b.put(post("huge", size=10**9), exchange="xs_alice")
    b.put(post("next"), exchange="xs_alice")
    assert [d.notice.relpath for d in src.gather(10, 0)] == ["huge"]


def test_sources_without_a_quota_or_total_are_never_held(tmp_path):
    clock, b = Clock(), FakeBroker()
    src = shared(tmp_path, b, clock, quotas=(("alice", 1000),), by_source=True)
    for i in range(5):
        b.put(post(f"b{i}", size=10**6), exchange="xs_bob")
    assert len(src.gather(10, 0)) == 5


def test_held_messages_of_a_lost_connection_are_forgotten(tmp_path):
    clock, b = Clock(), FakeBroker()
    src = shared(tmp_path, b, clock, quotas=(("alice", 1000),), by_source=True)
    behind(src, "alice", 10.0)
    b.put(post("a0"), exchange="xs_alice")
    assert src.gather(10, 0) == [] and len(src.held) == 1
    b.generation += 1  # reconnected: the broker hands a0 out again itself
    clock.t += 20
    assert src.gather(10, 0) == [] and src.held == []


def test_with_everything_held_the_gather_waits_no_longer_than_until_one_may_go(tmp_path):
    clock = Clock()
    waits = []

    class Waiting(FakeBroker):
        def get(self, max_count, timeout):
            waits.append(timeout)
            return super().get(max_count, timeout)

    b = Waiting()
    src = shared(tmp_path, b, clock, quotas=(("alice", 1000),), by_source=True)
    behind(src, "alice", 3.0)
    b.put(post("a0"), exchange="xs_alice")
    src.gather(10, 1.0)  # a0 arrives and is held
    src.gather(10, 5.0)
    assert waits[-1] == pytest.approx(3.0 - HORIZON)


def test_dd_sara_with_quotas_holds_back_without_acknowledging(tmp_path):
    """The real sara flow (fake broker): alice is far behind her quota, eve is not."""
    b, flow = setup(
        tmp_path,
        "source_bandwidth alice 1K\nsource_bandwidth * 1M\n",
        files={"tree/a.txt": DATA, "tree/e.txt": DATA},
    )
    assert isinstance(flow.source, SharedSource)
    behind(flow.source, "alice", 60.0)
    data_post = post("tree/a.txt", sum="d," + hashlib.md5(DATA).hexdigest())
    b.put(data_post, exchange="xs_alice")
    b.put(post("tree/e.txt", sum="d," + hashlib.md5(DATA).hexdigest()), exchange="xs_eve")
    flow.run_once()
    reposted = [
        message.decode(o.routing_key, o.headers, o.body)
        for o in b.published
        if o.exchange == "xpublic"
    ]
    assert [n.headers["source"] for n in reposted] == ["eve"]
    assert len(b.acked) == 1 and b.acked[0].exchange == "xs_eve"
    assert [d.notice.relpath for d in flow.source.held] == ["tree/a.txt"]


def test_under_the_total_the_source_that_had_less_goes_first(tmp_path):
    """bob had the whole 2000 B/s to himself; alice's messages arrive: hers go first;
    bob's take an instance only once alice has her share of work in hand."""
    clock, b = Clock(), FakeBroker()
    src = shared(tmp_path, b, clock, total=2000, by_source=True)
    config_bucket = src.bandwidth.pacing("file:/x/", "bob").pacers[0].bucket
    for _ in range(30):
        clock.t += 0.1
        config_bucket.reserve(200, 2000, "bob")
    for i in range(2):
        b.put(post(f"b{i}"), exchange="xs_bob")
        b.put(post(f"a{i}"), exchange="xs_alice")
    assert [d.notice.relpath for d in src.gather(10, 0)] == ["a0"]
    assert [d.notice.relpath for d in src.gather(10, 0)] == ["b0"]


def test_a_lone_source_takes_its_horizon_then_one_message_per_idle_instance(tmp_path):
    clock, b = Clock(), FakeBroker()
    src = shared(tmp_path, b, clock, total=2000, by_source=True)
    for i in range(4):
        b.put(post(f"b{i}", size=int(HORIZON * 2000 / 2)), exchange="xs_bob")
    assert len(src.gather(10, 0)) == 2  # HORIZON s of 2000 B/s
    assert len(src.gather(10, 0)) == 1  # its HORIZON is in hand: one more, not idle


def test_two_instances_spread_over_two_sources(tmp_path):
    """Both instances hold messages of alice and eve; the first takes alice, the
    second sees alice taken and takes eve: each source has an instance of its own."""
    clock = Clock()
    quotas = (("alice", 1000), ("eve", 500))
    one, two = FakeBroker(), FakeBroker()
    src1 = shared(tmp_path, one, clock, quotas=quotas, by_source=True)
    src2 = shared(tmp_path, two, clock, quotas=quotas, by_source=True)
    for b in (one, two):
        for i in range(4):
            b.put(post(f"a{i}", size=200), exchange="xs_alice")
            b.put(post(f"e{i}", size=200), exchange="xs_eve")
    assert {d.notice.relpath[0] for d in src1.gather(10, 0)} == {"a"}
    assert {d.notice.relpath[0] for d in src2.gather(10, 0)} == {"e"}
