"""The counters an instance keeps for ``dd metrics``/``status``/``check`` (issue 19):
bumped once per settled message, saved every ``metrics_interval``, read back never
negative."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sarra.core import message
from sarra.core.delivery import Delivery
from sarra.core.timestamps import format_time
from sarra.flow.dedup import DedupCache
from sarra.flow.engine import BrokerSource, Flow
from sarra.flow.retry import RetryQueue
from sarra.flow.stats import LAG_BUCKETS, Lag, Stats, broker_state, interval_lag, load
from tests.fixtures.fakebroker import FakeBroker


def notice(rel: str, age: float = 0.0) -> message.Notice:
    n = message.new_post("http://localhost:8090/", rel, {"sum": "d,0", "source": "alice"})
    return n.replace(pubtime=format_time(time.time() - age))


def settled(outcome: str, rel: str = "a/b.txt", **kw) -> Delivery:
    d = Delivery(notice(rel))
    if outcome == "ok":
        d.ok()
        d.size, d.local_path = kw.get("size", 10), kw.get("local_path", Path("/x/b.txt"))
    elif outcome == "rejected":
        d.reject("no", code=kw.get("code"))
    else:
        d.fail("down", code=kw.get("code", 503))
        d.unexpected = kw.get("unexpected", False)
    return d


def test_each_outcome_is_counted_with_its_class():
    s = Stats()
    for d in [
        settled("ok", size=100),
        settled("ok", size=5, local_path=None),  # a shovel's: a notice, no file
        settled("rejected"),  # accept/reject masks
        settled("rejected", code=304),
        settled("rejected", code=304),
        settled("rejected", code=403),
        settled("rejected", code=417),
        settled("failed", code=404),
        settled("failed", code=404),
        settled("failed", code=500, unexpected=True),
        settled("failed", code=70000),  # a hostile server's code: one bounded label
    ]:
        s.count(d)
    assert (s.received, s.ok, s.files, s.bytes) == (11, 2, 1, 105)
    assert s.rejected == 5 and s.failed == 4
    assert s.rejected_by == {"filtered": 1, "duplicate": 2, "forbidden": 1, "malformed": 1}
    assert s.failed_by == {"404": 2, "500": 1, "other": 1}
    assert s.last_activity > 0


def test_a_retried_message_is_not_received_twice():
    s = Stats()
    first = settled("failed")
    s.count(first)
    again = settled("ok")
    again.retry = object()  # came from the on-disk retry queue
    s.count(again)
    assert s.received == 1 and s.ok == 1 and s.failed == 1
    assert s.lag.count == 1  # a retry's lag is the back-off, not the flow's


@pytest.mark.parametrize(
    "seconds, bound", [(0.0, 0.1), (0.1, 0.1), (0.3, 0.5), (45.0, 60.0), (7200.0, 10800.0)]
)
def test_lag_lands_in_the_bucket_of_its_upper_bound(seconds, bound):
    lag = Lag()
    lag.observe(seconds)
    assert lag.counts[LAG_BUCKETS.index(bound)] == 1 and lag.count == 1
    assert lag.sum == pytest.approx(seconds)


def test_lag_beyond_every_bound_and_from_the_future():
    lag = Lag()
    lag.observe(10 * 86400.0)
    lag.observe(-30.0)  # a publisher's clock ahead of ours: no negative lag
    assert lag.counts[-1] == 1 and lag.counts[0] == 1 and lag.sum == 10 * 86400.0


def test_the_lag_of_a_message_is_its_age_since_its_pubtime():
    s = Stats()
    s.count(_aged(45.0))
    assert s.lag.count == 1 and 45.0 <= s.lag.sum < 60.0
    assert s.lag.counts[LAG_BUCKETS.index(60.0)] == 1


def _aged(age: float) -> Delivery:
    d = Delivery(notice("old.txt", age=age))
    d.ok()
    return d


def test_metrics_off_keeps_the_counts_but_no_histogram():
    s = Stats(every=0.0)
    s.count(_aged(5.0))
    assert s.ok == 1 and s.lag.count == 0


def test_tick_saves_at_once_then_only_when_due(tmp_path):
    f = tmp_path / "stats.01.json"
    s = Stats(every=3600.0)
    s.tick(f)
    first = f.read_text()
    s.ok = 5
    s.tick(f)
    assert f.read_text() == first  # not due for an hour
    s.every = 0.0
    f.unlink()
    s.tick(f)
    assert not f.exists()  # metrics off: saved at housekeeping and stop only


class FakeConn:
    def __init__(self, generation: int, connected: bool) -> None:
        self.generation, self.is_connected = generation, connected


@pytest.mark.parametrize(
    "generation, connected, want",
    [(0, False, (False, 0)), (1, True, (True, 0)), (4, False, (False, 3))],
)
def test_broker_state_counts_reconnects_not_the_first_connection(generation, connected, want):
    got = broker_state(FakeConn(generation, connected))
    assert (got["connected"], got["reconnects"]) == want


def test_a_save_holds_every_counter_and_the_broker_state(tmp_path):
    f = tmp_path / "stats.01.json"
    s = Stats(broker=FakeConn(2, True))
    s.count(settled("failed", code=404))
    s.save(f, 100.0)
    now = json.loads(f.read_text())["now"]
    assert now["failed_by"] == {"404": 1} and now["received"] == 1
    assert now["broker"] == {"connected": True, "reconnects": 1}
    assert len(now["lag"]["counts"]) == len(LAG_BUCKETS) + 1


def test_interval_lag_is_the_mean_of_the_last_interval_only(tmp_path):
    f = tmp_path / "stats.01.json"
    s = Stats()
    s.lag.observe(1000.0)
    s.save(f, 10.0)
    s.lag.observe(2.0)
    s.lag.observe(4.0)
    s.save(f, 20.0)
    assert interval_lag(load(f)) == pytest.approx(3.0)
    s.save(f, 30.0)
    assert interval_lag(load(f)) is None  # nothing in that interval


@pytest.mark.parametrize(
    "text", ["", "{", "[]", '{"now": 3}', '{"now": {"t": "x"}}', '{"now": {}}']
)
def test_a_damaged_stats_file_reads_as_none(tmp_path, text):
    f = tmp_path / "stats.01.json"
    f.write_text(text)
    assert load(f) is None


def test_a_flow_counts_what_it_settles_and_duplicates_apart(tmp_path):
    b = FakeBroker()
    for rel in ("a.txt", "a.txt", "skip.tmp", "c.txt"):
        b.put(notice(rel, age=2.0))

    def work(d: Delivery) -> None:
        d.ok()
        d.size, d.local_path = 7, tmp_path / d.notice.relpath

    flow = Flow(
        source=BrokerSource(b),
        select=lambda d: not d.notice.relpath.endswith(".tmp"),
        work=work,
        retry=RetryQueue(tmp_path / "retry"),
        dedup=DedupCache(tmp_path / "dedup.sqlite", 300.0),
    )
    assert flow.run_once() == 4
    s = flow.stats
    assert (s.received, s.ok, s.files, s.bytes) == (4, 2, 2, 14)
    assert s.rejected_by == {"duplicate": 1, "filtered": 1}
    assert s.lag.count == 4 and s.lag.sum >= 8.0
