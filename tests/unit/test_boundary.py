"""The per-message error boundary (issue 13, class 3) against the fake broker.

Whatever one message's filter, hooks or work raise, the flow settles it (retry queue,
failure report, acknowledgement) and goes on; a message that keeps raising an
unexpected error is given up after ``MAX_FAULTS`` attempts, counted across restarts; a
message that was in hand at ``MAX_CRASHES`` crashes of the process is given up.
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest

from sarra.broker.connection import Received
from sarra.core import message
from sarra.core.delivery import Delivery
from sarra.core.errors import (
    PERMANENT_ERRNOS,
    TRANSIENT_ERRNOS,
    HookError,
    escape,
    oserror_class,
    oserror_text,
)
from sarra.flow.boundary import MAX_FAULTS
from sarra.flow.engine import BrokerSource, Flow
from sarra.flow.inhand import MAX_CRASHES, InHand
from sarra.flow.parallel import WorkThreads
from sarra.flow.retry import RetryQueue
from sarra.flow.sinks import NoticePublisher, Reporter
from sarra.hooks import Hook, HookSet
from tests.fixtures.fakebroker import FakeBroker


def post(rel: str) -> message.Notice:
    return message.new_post(
        "http://localhost:8090/",
        rel,
        {"sum": "d,746308829575e17c3331bbcb00c0898b", "parts": "1,14,1,0,0", "source": "a"},
    )


def make_flow(b: FakeBroker, work, tmp_path: Path, **kw) -> Flow:
    return Flow(
        source=BrokerSource(b),
        work=work,
        retry=RetryQueue(tmp_path / "retry", delay=0.0),
        publisher=NoticePublisher(b, "xpublic"),
        reporter=Reporter(b, "xs_bob", "bob", "host.example"),
        **kw,
    )


def ok_work(d: Delivery) -> None:
    d.ok(201, "Downloaded")
    d.post_notice = d.notice


def reports(b: FakeBroker) -> list:
    """(relpath, code) of every report published."""
    out = []
    for o in b.published:
        if o.exchange == "xs_bob":
            fields = o.body.decode().split(" ")
            out.append((fields[2], int(fields[3])))
    return out


def raiser(exc: BaseException, match: str = "bad"):
    def work(d: Delivery) -> None:
        if match in d.notice.relpath:
            raise exc
        ok_work(d)

    return work


# ------------------------------------------------------------------- errno classes
@pytest.mark.parametrize(
    "code",
    ["ENAMETOOLONG", "ENOTDIR", "EISDIR", "EACCES", "EPERM", "EROFS", "ELOOP", "EEXIST",
     "EINVAL", "EXDEV"],
)  # fmt: skip
def test_a_permanent_oserror_is_reported_and_acked_once_and_the_flow_goes_on(
    tmp_path, caplog, code
):
    b = FakeBroker()
    name = "d/bad" + "x" * 300 + ".txt"
    b.put(post(name))
    b.put(post("d/good.txt"))
    e = OSError(getattr(errno, code), "strerror", "\x1b[2J" + str(tmp_path / name))
    flow = make_flow(b, raiser(e), tmp_path)
    with caplog.at_level(logging.INFO):
        assert flow.run_once() == 2
    assert len(b.acked) == 2 and len(flow.retry) == 0
    assert flow.stats.ok == 1 and flow.stats.failed == 1
    want = 403 if code in ("EACCES", "EPERM", "EROFS") else 400
    assert sorted(c for _r, c in reports(b)) == [201, want]
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and code in lines[0] and "failed d/bad" in lines[0]
    assert "\x1b" not in lines[0] and len(lines[0]) < 800


@pytest.mark.parametrize(
    "code", ["ENOSPC", "EMFILE", "ENFILE", "EIO", "EAGAIN", "EDQUOT", "ENOMEM", "EBUSY"]
)
def test_a_transient_oserror_goes_to_the_retry_queue_then_succeeds(tmp_path, code):
    b = FakeBroker()
    b.put(post("d/bad.txt"))
    flow = make_flow(b, raiser(OSError(getattr(errno, code), "x", "/t/d/bad.txt")), tmp_path)
    flow.run_once()
    assert len(b.acked) == 1 and len(flow.retry) == 1
    assert reports(b) == [("d/bad.txt", 503)]
    flow.work = ok_work
    flow.run_once()
    assert len(flow.retry) == 0 and flow.stats.ok == 1


def test_every_errno_listed_has_one_class():
    assert not TRANSIENT_ERRNOS & PERMANENT_ERRNOS
    assert oserror_class(OSError(errno.ENOSPC, "x")) == "transient"
    assert oserror_class(OSError(errno.ENAMETOOLONG, "x")) == "permanent"
    assert oserror_class(OSError(errno.EBADF, "x")) == "unknown"
    assert oserror_class(TimeoutError()) == "transient"


def test_oserror_text_names_the_errno_and_escapes_and_cuts_the_file_name():
    e = OSError(errno.ENOTDIR, "Not a directory", "a/\x00\x1b/" + "z" * 500)
    text = oserror_text(e)
    assert text.startswith("ENOTDIR (Not a directory): a/\\x00\\x1b/")
    assert text.endswith("...(+" + str(505 - 200) + ")") and len(text) < 260
    assert oserror_text(e, limit=0) == "ENOTDIR (Not a directory)"


@pytest.mark.parametrize(
    "text, want",
    [
        ("plain é 日本", "plain é 日本"),
        ("a\nb\rc\td", "a\\x0ab\\x0dc\\x09d"),
        ("\x1b[31m\x7f\x85\u2028", "\\x1b[31m\\x7f\\x85\\u2028"),
        ("back\\slash", "back\\\\slash"),
        ("\udcff", "\\udcff"),
    ],
)
def test_escape_keeps_text_and_escapes_control_characters(text, want):
    assert escape(text) == want


def test_escape_cuts_long_text_in_linear_time():
    out = escape("\x00" * 1_000_000, 100)
    assert out == "\\x00" * 100 + "...(+999900)"


# --------------------------------------------------------------- unexpected errors
@pytest.mark.parametrize(
    "exc",
    [KeyError("k"), ValueError("v"), UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"),
     ZeroDivisionError(), OSError(errno.EBADF, "unknown errno")],
)  # fmt: skip
def test_an_unexpected_error_is_parked_then_given_up_after_max_faults(tmp_path, caplog, exc):
    b = FakeBroker()
    b.put(post("d/bad.txt"))
    b.put(post("d/good.txt"))
    flow = make_flow(b, raiser(exc), tmp_path)
    with caplog.at_level(logging.INFO):
        for _ in range(MAX_FAULTS):
            flow.run_once()
    assert len(b.acked) == 2 and len(flow.retry) == 0
    assert flow.stats.ok == 1 and flow.stats.failed == MAX_FAULTS
    assert [c for r, c in reports(b) if r == "d/bad.txt"] == [500] * MAX_FAULTS
    text = caplog.text
    assert text.count("Traceback") == 1
    assert text.count("giving up on d/bad.txt after 3 unexpected errors") == 1


def test_the_count_of_unexpected_errors_survives_a_restart(tmp_path):
    b = FakeBroker()
    b.put(post("d/bad.txt"))
    work = raiser(RuntimeError("bug"))
    for _ in range(MAX_FAULTS - 1):
        make_flow(b, work, tmp_path).run_once()  # a new process each time
    entry = next(iter(RetryQueue(tmp_path / "retry").due(10)))
    assert entry.faults == MAX_FAULTS - 1
    make_flow(b, work, tmp_path).run_once()
    assert len(RetryQueue(tmp_path / "retry")) == 0
    assert [c for _r, c in reports(b)] == [500] * MAX_FAULTS


def test_transient_failures_do_not_count_as_unexpected(tmp_path):
    b = FakeBroker()
    b.put(post("d/bad.txt"))
    flow = make_flow(b, raiser(OSError(errno.ENOSPC, "full")), tmp_path)
    for _ in range(MAX_FAULTS + 2):
        flow.run_once()
    assert len(flow.retry) == 1  # still retried (until retry_ttl)


class Raising(Hook):
    def __init__(self, event: str, exc: BaseException) -> None:
        super().__init__()
        self.event, self.exc = event, exc

    def on_message(self, d):
        if self.event == "on_message" and "bad" in d.notice.relpath:
            raise self.exc
        return True

    def on_post(self, d):
        if self.event == "on_post" and "bad" in d.notice.relpath:
            raise self.exc


@pytest.mark.parametrize("event", ["on_message", "on_post"])
@pytest.mark.parametrize("exc", [KeyError("x"), AttributeError("y"), TypeError("z")])
def test_a_hook_raising_is_unexpected_for_that_message_only(tmp_path, caplog, event, exc):
    b = FakeBroker()
    b.put(post("d/bad.txt"))
    b.put(post("d/good.txt"))
    flow = make_flow(b, ok_work, tmp_path, hooks=HookSet([Raising(event, exc)]))
    with caplog.at_level(logging.INFO):
        flow.run_once()
    assert len(b.acked) == 2 and len(flow.retry) == 1
    assert [o.routing_key for o in b.published if o.exchange == "xpublic"] == ["v02.post.d"]
    assert caplog.text.count("Traceback") == 1 and type(exc).__name__ in caplog.text


def test_a_script_hook_failure_stays_a_plain_retried_failure(tmp_path, caplog):
    class Script(Hook):
        def on_message(self, d):
            raise HookError("on_file x: exit status 1")

    b = FakeBroker()
    b.put(post("d/a.txt"))
    flow = make_flow(b, ok_work, tmp_path, hooks=HookSet([Script()]))
    with caplog.at_level(logging.INFO):
        for _ in range(MAX_FAULTS + 1):
            flow.run_once()
    assert len(flow.retry) == 1 and "Traceback" not in caplog.text


def test_a_filter_raising_is_handled_like_the_work_step(tmp_path):
    b = FakeBroker()
    b.put(post("d/bad.txt"))
    b.put(post("d/good.txt"))

    def select(d):
        if "bad" in d.notice.relpath:
            raise IndexError("selector bug")
        return True

    flow = make_flow(b, ok_work, tmp_path, select=select)
    flow.run_once()
    assert len(b.acked) == 2 and len(flow.retry) == 1 and flow.stats.ok == 1


def test_an_error_on_a_worker_thread_fails_only_its_message(tmp_path):
    b = FakeBroker()
    for i in range(6):
        b.put(post(f"d/f{i}.txt"))
    b.put(post("d/bad.txt"))
    b.put(post("d/nametoolong.txt"))

    def work(d):
        if "bad" in d.notice.relpath:
            raise ValueError("bug on a thread")
        if "toolong" in d.notice.relpath:
            raise OSError(errno.ENAMETOOLONG, "File name too long", "x" * 300)
        ok_work(d)

    threads = WorkThreads([work, work, work], keepalive=lambda: None)
    try:
        flow = make_flow(b, work, tmp_path, threads=threads)
        assert flow.run_once() == 8
    finally:
        threads.close()
    assert len(b.acked) == 8 and flow.stats.ok == 6 and flow.stats.failed == 2
    assert len(flow.retry) == 1  # the bug is parked; ENAMETOOLONG is permanent


def test_a_decoder_bug_drops_the_message_instead_of_killing_the_daemon(tmp_path, monkeypatch):
    b = FakeBroker()
    bad = b.put(post("d/bad.txt"))
    b.put(post("d/good.txt"))
    real = message.decode

    def decode(topic, headers, body):
        if b"bad" in (body if isinstance(body, bytes) else body.encode()):
            raise RecursionError("decoder bug")
        return real(topic, headers, body)

    monkeypatch.setattr(message, "decode", decode)
    flow = make_flow(b, ok_work, tmp_path)
    flow.run_once()
    assert b.nacked == [(bad, False)] and len(b.acked) == 1


# --------------------------------------------------------------- hard crashes
class Crash(BaseException):
    """Stands for a process killed with the message in hand (nothing settles)."""


def redeliver(b: FakeBroker, r: Received) -> None:
    b.queue.append(Received(r.exchange, r.routing_key, r.headers, r.body, r.delivery_tag + 1000,
                            True, b.generation))  # fmt: skip


@pytest.mark.parametrize("where", ["work", "on_message", "on_post"])
def test_a_message_in_hand_at_max_crashes_is_given_up(tmp_path, caplog, where):
    b = FakeBroker()
    r = b.put(post("d/bad.txt"))
    hooks = HookSet([Raising(where, Crash())]) if where != "work" else None
    work = raiser(Crash()) if where == "work" else ok_work
    for _ in range(MAX_CRASHES):
        flow = make_flow(b, work, tmp_path, hooks=hooks)
        flow.inhand = InHand(tmp_path / "inhand")  # a new process: a new token
        with pytest.raises(Crash):
            flow.run_once()
        assert not b.acked
        b.queue.clear()
        redeliver(b, r)
    b.put(post("d/good.txt"))
    flow = make_flow(b, work, tmp_path, hooks=hooks)
    flow.inhand = InHand(tmp_path / "inhand")
    with caplog.at_level(logging.INFO):
        flow.run_once()
    assert len(b.acked) == 2 and flow.stats.ok == 1 and flow.stats.failed == 1
    assert len(flow.retry) == 0
    assert ("d/bad.txt", 500) in reports(b)
    assert "in hand at 3 consecutive crashes" in caplog.text
    assert all(p.read_text().split() == ["-"] for p in (tmp_path / "inhand").iterdir())


def test_messages_worked_before_the_crash_are_not_counted(tmp_path):
    b = FakeBroker()
    rs = [b.put(post(f"d/f{i}.txt")) for i in range(3)] + [b.put(post("d/bad.txt"))]
    for _ in range(MAX_CRASHES):
        flow = make_flow(b, raiser(Crash()), tmp_path)
        flow.inhand = InHand(tmp_path / "inhand")
        with pytest.raises(Crash):
            flow.run_once()
        b.queue.clear()
        for r in rs:
            redeliver(b, r)
    flow = make_flow(b, raiser(Crash()), tmp_path)
    flow.inhand = InHand(tmp_path / "inhand")
    flow.run_once()
    assert flow.stats.ok == 3 and flow.stats.failed == 1


def _received(r: Received, redelivered: bool) -> Received:
    return Received(r.exchange, r.routing_key, r.headers, r.body, 9, redelivered, 1)


def test_a_marker_of_a_live_other_process_is_not_a_crash(tmp_path):
    import os

    b = FakeBroker()
    r = b.put(post("d/a.txt"))
    InHand(tmp_path / "inhand").begin(Delivery(post("d/a.txt"), received=r))
    [marker] = (tmp_path / "inhand").iterdir()
    key = marker.read_text().split()[0]
    live = tmp_path / "inhand" / f"{os.getppid()}.other.0"  # a live process has it
    live.write_text(f"{key} 2\n")
    marker.unlink()
    d = Delivery(post("d/a.txt"), received=_received(r, True))
    assert InHand(tmp_path / "inhand").begin(d) == 0
    assert live.exists()


def test_a_dead_process_marker_counts_once_and_is_removed(tmp_path):
    b = FakeBroker()
    r = b.put(post("d/a.txt"))
    InHand(tmp_path / "inhand").begin(Delivery(post("d/a.txt"), received=r))
    [marker] = (tmp_path / "inhand").iterdir()  # same pid, other token: dead
    fresh = InHand(tmp_path / "inhand")
    assert fresh.begin(Delivery(post("d/a.txt"), received=_received(r, True))) == 1
    assert not marker.exists()
    assert fresh.begin(Delivery(post("d/a.txt"), received=_received(r, True))) == 1


def test_a_first_delivery_never_reads_markers(tmp_path):
    b = FakeBroker()
    r = b.put(post("d/a.txt"))
    InHand(tmp_path / "inhand").begin(Delivery(post("d/a.txt"), received=r))
    assert InHand(tmp_path / "inhand").begin(Delivery(post("d/a.txt"), received=r)) == 0


def test_a_clean_exit_removes_its_markers_and_a_completed_message_blanks_it(tmp_path):
    b = FakeBroker()
    r = b.put(post("d/a.txt"))
    hand = InHand(tmp_path / "inhand")
    d = Delivery(post("d/a.txt"), received=r)
    hand.begin(d)
    hand.end(d)
    [marker] = (tmp_path / "inhand").iterdir()
    assert marker.read_text().split() == ["-"]
    hand.close()
    assert not list((tmp_path / "inhand").iterdir())


def test_old_markers_of_dead_processes_are_expired_at_housekeeping(tmp_path):
    import os

    b = FakeBroker()
    flow = make_flow(b, ok_work, tmp_path)
    flow.inhand = InHand(tmp_path / "inhand")
    old, live = tmp_path / "inhand" / "1999999999.x.0", tmp_path / "inhand" / f"{os.getppid()}.y.0"
    for p in (old, live):
        p.write_text("- 0\n")
        os.utime(p, (1, 1))
    flow.housekeeping()
    assert [p.name for p in (tmp_path / "inhand").iterdir()] == [live.name]


def test_a_failing_housekeeping_does_not_stop_the_daemon(tmp_path, caplog):
    b = FakeBroker()
    stops = iter([False, False, True])

    flow = make_flow(b, ok_work, tmp_path, housekeeping=0.0, stop=lambda: next(stops))
    flow.idle = 0.0

    def boom():
        raise OSError(errno.EIO, "disk")

    flow.housekeeping = boom  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR):
        flow.run()
    assert "housekeeping failed" in caplog.text


def test_a_bug_in_reporting_is_logged_and_the_batch_settles(tmp_path, caplog, monkeypatch):
    b = FakeBroker()
    b.put(post("d/a.txt"))
    flow = make_flow(b, ok_work, tmp_path)

    def broken(*a, **k):
        raise TypeError("report bug")

    monkeypatch.setattr(message, "make_report", broken)
    with caplog.at_level(logging.ERROR):
        flow.run_once()
    assert len(b.acked) == 1 and flow.stats.ok == 1
    assert caplog.text.count("reports of a batch not sent") == 1


def test_a_bug_in_posting_parks_the_batch_instead_of_killing_the_daemon(tmp_path, monkeypatch):
    b = FakeBroker()
    b.put(post("d/a.txt"))
    b.put(post("d/b.txt"))
    flow = make_flow(b, ok_work, tmp_path)

    def broken(msgs):
        raise AttributeError("publish bug")

    monkeypatch.setattr(b, "publish_batch", broken)
    flow.run_once()
    assert len(b.acked) == 2 and len(flow.retry) == 2 and flow.stats.failed == 2


# ------------------------------------------------------- what v02 output cannot carry
@pytest.mark.parametrize(
    "rel, extra",
    [
        ("d/long-header.txt", {"oldname": "o" * 253}),
        ("d/longer-header.txt", {"rename": "é" * 200}),
        ("d/esc\x1b[2J.txt", {}),
        ("d/nul\x00.txt", {"oldname": "x" * 1000}),
        ("d/tab\t.txt", {}),
        ("d/\x0b\x1c\x1e/x", {}),
        ("d/ends-in-cr\r", {}),
    ],
)
def test_a_received_notice_v02_output_refuses_is_still_kept_for_its_retry(tmp_path, rel, extra):
    """decode takes what another program sent; a transient failure of it must go to the
    retry queue (found by the hostile fuzz: it was failed for good, unretried)."""
    b = FakeBroker()
    n = post("d/x.txt")
    headers = {**message.encode(n).headers, **extra}
    body = f"{n.pubtime} {n.baseurl} {rel}".encode()
    b.put_raw(n.topic, headers, body)
    flow = make_flow(b, raiser(OSError(errno.ENOSPC, "full"), match="d/"), tmp_path)
    flow.run_once()
    assert len(b.acked) == 1 and len(flow.retry) == 1
    seen = []

    def work(d: Delivery) -> None:
        seen.append((d.notice.relpath, {k: d.notice.headers.get(k) for k in extra}))
        ok_work(d)

    flow.work = work
    flow.publisher = None
    flow.run_once()
    assert seen == [(rel, extra)] and len(flow.retry) == 0


def test_a_failure_the_retry_queue_cannot_keep_pauses_the_flow_doubling(tmp_path):
    """Disk full: the failure goes back to the broker, which hands it straight back; the
    flow pauses before the next batch (1 s, 2 s, 4 s... up to HOLD_MAX) instead of
    spinning on it, keeps the connection alive meanwhile, and stops pausing once an
    entry can be written again."""
    from sarra.flow.engine import HOLD_MAX

    b = FakeBroker()
    b.put(post("d/bad.txt"))
    flow = make_flow(b, raiser(OSError(errno.ENOSPC, "No space left on device")), tmp_path)
    kept = flow.retry.put
    full = [True]

    def put(*a, **kw):
        if full[0]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return kept(*a, **kw)

    flow.retry.put = put
    nack = b.nack

    def requeue(r, requeue):  # as RabbitMQ: a requeued message comes straight back
        nack(r, requeue)
        if requeue:
            b.queue.append(_received(r, True))

    b.nack = requeue
    slept, batches = [], []
    flow.sleep = slept.append
    once = flow.run_once

    def run_once():
        batches.append(len(slept))
        full[0] = len(batches) < 8
        return once()

    flow.run_once = run_once
    flow.stop = lambda: len(batches) >= 9
    flow.run()
    pauses = [(b2 - b1) * 0.25 for b1, b2 in zip(batches, batches[1:])]
    assert pauses[:6] == [1.0, 2.0, 4.0, 8.0, 16.0, HOLD_MAX] and HOLD_MAX == 16.0
    assert pauses[7:] == [0.0]  # kept in the retry queue: no more pause
    assert len(flow.retry) == 1
    assert [requeue for _r, requeue in b.nacked] == [True] * 7
