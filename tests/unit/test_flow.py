"""The flow against a fake broker: every message settles exactly once, and only after
its outcome is durable."""

from __future__ import annotations

import pytest

from sarra.core import message
from sarra.core.delivery import Delivery
from sarra.core.errors import ConnectionLost, PathError, TransferError
from sarra.flow.dedup import DedupCache
from sarra.flow.engine import BrokerSource, Flow
from sarra.flow.retry import RetryQueue
from sarra.flow.sinks import NoticePublisher, Reporter
from sarra.hooks import Hook, HookSet
from tests.fixtures.fakebroker import FakeBroker


def post(rel: str, s: str = "d,746308829575e17c3331bbcb00c0898b") -> message.Notice:
    return message.new_post(
        "http://localhost:8090/", rel, {"sum": s, "parts": "1,14,1,0,0", "source": "alice"}
    )


def make_flow(broker, work=None, tmp_path=None, **kw):
    retry = RetryQueue(tmp_path / "retry", delay=0.0) if tmp_path else None
    return Flow(
        source=BrokerSource(broker),
        work=work,
        retry=retry,
        publisher=NoticePublisher(broker, "xpublic"),
        reporter=Reporter(broker, "xs_bob", "bob", "host.example"),
        **kw,
    )


def ok_work(d: Delivery) -> None:
    d.ok(201, "Downloaded")
    d.post_notice = d.notice


def test_ok_messages_are_posted_reported_then_acked(tmp_path):
    b = FakeBroker()
    for i in range(3):
        b.put(post(f"data/f{i}.txt"))
    flow = make_flow(b, ok_work, tmp_path)
    assert flow.run_once() == 3
    assert len(b.acked) == 3 and not b.nacked
    posts = [o for o in b.published if o.exchange == "xpublic"]
    reports = [o for o in b.published if o.exchange == "xs_bob"]
    assert [o.routing_key for o in posts] == ["v02.post.data"] * 3
    assert len(reports) == 3
    assert reports[0].body.endswith(b" 201 host.example bob " + reports[0].body.split()[-1])


def test_undecodable_body_is_nacked_without_requeue(tmp_path):
    b = FakeBroker()
    bad = b.put_raw("v02.post.x", {}, b"\xff\xfe not utf8")
    b.put(post("data/good.txt"))
    flow = make_flow(b, ok_work, tmp_path)
    flow.run_once()
    assert b.nacked == [(bad, False)]
    assert len(b.acked) == 1


def test_transient_failure_goes_to_retry_queue_before_ack(tmp_path):
    b = FakeBroker()
    r = b.put(post("data/f.txt"))

    def failing(d):
        raise TransferError("503 Service Unavailable")

    flow = make_flow(b, failing, tmp_path)
    flow.run_once()
    assert b.acked == [r]
    assert len(flow.retry) == 1
    # the retry is picked up on the next pass and succeeds
    flow.work = ok_work
    flow.run_once()
    assert len(flow.retry) == 0
    assert len([o for o in b.published if o.exchange == "xpublic"]) == 1


def test_retry_write_failure_means_no_ack(tmp_path, monkeypatch):
    b = FakeBroker()
    b.put(post("data/f.txt"))

    def failing(d):
        raise TransferError("connection reset")

    flow = make_flow(b, failing, tmp_path)

    def broken_put(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(flow.retry, "put", broken_put)
    flow.run_once()
    assert not b.acked
    assert b.nacked and b.nacked[0][1] is True


def test_permanent_failure_is_reported_and_acked_not_retried(tmp_path):
    b = FakeBroker()
    b.put(post("data/gone.txt"))

    def gone(d):
        raise TransferError("404 Not Found", permanent=True)

    flow = make_flow(b, gone, tmp_path)
    flow.run_once()
    assert len(b.acked) == 1 and len(flow.retry) == 0
    reports = [o for o in b.published if o.exchange == "xs_bob"]
    assert b" 499 " in reports[0].body


def test_unconfirmed_post_is_not_acked_as_ok(tmp_path):
    b = FakeBroker()
    b.put(post("data/f.txt"))
    b.fail_publish = lambda o: o.exchange == "xpublic"
    flow = make_flow(b, ok_work, tmp_path)
    flow.run_once()
    # failed -> written to retry, then acked; the retry will post again
    assert len(flow.retry) == 1
    b.fail_publish = lambda o: False
    flow.run_once()
    assert len([o for o in b.published if o.exchange == "xpublic"]) == 1


def test_connection_lost_mid_batch_acks_nothing(tmp_path):
    b = FakeBroker()
    for i in range(3):
        b.put(post(f"data/f{i}.txt"))
    b.lose_connection_on = "publish"
    flow = make_flow(b, ok_work, tmp_path)
    with pytest.raises(ConnectionLost):
        flow.run_once()
    assert not b.acked


def test_path_escape_is_rejected_with_403_report(tmp_path):
    b = FakeBroker()
    b.put(post("data/../../etc/passwd"))

    def work(d):
        raise PathError("path escapes the target directory")

    flow = make_flow(b, work, tmp_path)
    flow.run_once()
    assert len(b.acked) == 1
    reports = [o for o in b.published if o.exchange == "xs_bob"]
    assert b" 403 " in reports[0].body


def test_masks_reject_without_work(tmp_path):
    b = FakeBroker()
    b.put(post("data/f.txt"))
    called = []
    flow = make_flow(b, lambda d: called.append(d), tmp_path, select=lambda d: False)
    flow.run_once()
    assert not called and len(b.acked) == 1


def test_duplicates_within_a_batch_are_suppressed(tmp_path):
    b = FakeBroker()
    b.put(post("data/f.txt"))
    b.put(post("data/f.txt"))
    flow = make_flow(b, ok_work, tmp_path, dedup=DedupCache(tmp_path / "c.sqlite", 60))
    flow.run_once()
    assert len(b.acked) == 2
    assert len([o for o in b.published if o.exchange == "xpublic"]) == 1
    assert flow.stats.rejected == 1


def test_failed_work_releases_its_duplicate_claim(tmp_path):
    b = FakeBroker()
    b.put(post("data/f.txt"))
    dedup = DedupCache(tmp_path / "c.sqlite", 60)

    def failing(d):
        raise TransferError("timeout")

    flow = make_flow(b, failing, tmp_path, dedup=dedup)
    flow.run_once()
    assert len(dedup) == 0


def test_on_message_hook_can_reject_and_a_raising_hook_fails_only_that_message(tmp_path):
    class Picky(Hook):
        def on_message(self, d):
            if "boom" in d.notice.relpath:
                raise RuntimeError("kaboom")
            return "keep" in d.notice.relpath

    b = FakeBroker()
    b.put(post("data/keep.txt"))
    b.put(post("data/drop.txt"))
    b.put(post("data/boom.txt"))
    flow = make_flow(b, ok_work, tmp_path, hooks=HookSet([Picky()]))
    flow.run_once()
    assert flow.stats.ok == 1 and flow.stats.rejected == 1
    assert len(flow.retry) == 1
    assert len(b.acked) == 3


def test_stop_mid_batch_settles_what_is_done_and_leaves_the_rest(tmp_path):
    b = FakeBroker()
    for i in range(5):
        b.put(post(f"data/f{i}.txt"))
    done = []

    def work(d):
        done.append(d)
        ok_work(d)

    flow = make_flow(b, work, tmp_path, stop=lambda: len(done) >= 2)
    assert flow.run_once() == 2
    assert len(b.acked) == 2 and not b.nacked


def test_housekeeping_saves_counters_with_the_previous_ones_for_dd_status(tmp_path):
    from sarra.service.health import last_interval

    b = FakeBroker()
    for i in range(3):
        b.put(post(f"data/f{i}.txt"))
    flow = make_flow(b, ok_work, tmp_path)
    flow.stats_file = tmp_path / "stats.01.json"
    flow.housekeeping()
    flow.run_once()
    flow.housekeeping()
    msgs, nbytes, span = last_interval(tmp_path)
    assert msgs == 3 and nbytes == 0 and span >= 0


class Recorder:
    """A sink that is no publisher: records each batch and what was acked before it."""

    def __init__(self, broker, fail=None):
        self.broker, self.fail = broker, fail
        self.batches, self.acked_before, self.finished = [], [], 0

    def publish(self, batch):
        self.acked_before.append(len(self.broker.acked))
        if self.fail is not None:
            raise self.fail
        self.batches.append([(d.notice.relpath, d.outcome) for d in batch])

    def finish(self):
        self.finished += 1


def test_a_sink_sees_the_whole_batch_with_outcomes_before_any_ack():
    b = FakeBroker()
    for rel in ("data/keep.txt", "data/drop.txt"):
        b.put(post(rel))
    sink = Recorder(b)
    flow = Flow(source=BrokerSource(b), select=lambda d: "keep" in d.notice.relpath, sinks=[sink])
    assert flow.run_once() == 2
    assert sink.batches == [[("data/keep.txt", "ok"), ("data/drop.txt", "rejected")]]
    assert sink.acked_before == [0] and len(b.acked) == 2


def test_a_sink_that_raises_voids_the_batch_and_ends_the_run():
    b = FakeBroker()
    for i in range(3):
        b.put(post(f"data/f{i}.txt"))
    sink = Recorder(b, fail=BrokenPipeError(32, "Broken pipe"))
    flow = Flow(source=BrokerSource(b), sinks=[sink], idle=0.0)
    with pytest.raises(BrokenPipeError):
        flow.run()
    assert not b.acked and not b.nacked  # the broker keeps them for the next run
    assert sink.finished == 0  # not at an error: that error is the one to report


def test_idle_exit_stops_the_run_once_the_source_gave_nothing_for_that_long():
    b = FakeBroker()
    for i in range(3):
        b.put(post(f"data/f{i}.txt"))
    now = [0.0]
    gets = []
    late = post("data/late.txt")

    def get(max_count, timeout):
        gets.append(now[0])
        now[0] += 1.0  # each gather waits one (fake) second
        if now[0] == 5.0:  # one more message, four seconds into the idle time
            b.put(late)
        return FakeBroker.get(b, max_count, timeout)

    b.get = get
    sink = Recorder(b)
    flow = Flow(source=BrokerSource(b), sinks=[sink], batch=2, idle_exit=6.0)
    flow.clock = lambda: now[0]
    flow.run()
    assert [rel for batch in sink.batches for rel, _ in batch] == [
        "data/f0.txt", "data/f1.txt", "data/f2.txt", "data/late.txt",
    ]  # fmt: skip
    assert len(b.acked) == 4
    assert gets[-1] == 10.0  # the late message started the six idle seconds again
    assert sink.finished == 1


def test_without_idle_exit_an_idle_source_does_not_end_the_run():
    b = FakeBroker()
    calls = []
    flow = Flow(source=BrokerSource(b), idle=0.0, stop=lambda: len(calls) > 50)
    flow.clock = lambda: calls.append(1) or 1e9 * len(calls)  # ages pass between gathers
    flow.housekeeping_every = float("inf")
    assert flow.run() == 0
    assert len(calls) > 50  # only the stop request ended it
