"""The shared get loop's bounds: never more bytes than announced, a wall-clock deadline
derived from the size and a minimum rate, a stop request; with fake backends and clocks."""

from __future__ import annotations

import io
from typing import Iterator

import pytest

from sarra.core.errors import TransferError
from sarra.transfer import Transfer
from sarra.transfer.limits import Budget, Limits, gather


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Endless(Transfer):
    """A server that sends ``piece`` bytes per read for ever, ``step`` s apart (fake clock)."""

    scheme = "fake"

    def __init__(self, piece: int = 1000, clock: Clock | None = None, step: float = 0.0):
        super().__init__("fake://h/", timeout=5)
        self.piece, self.clock, self.step = piece, clock, step
        self.pulled = 0
        self.seen_limit: list[int | None] = []

    def iter_read(self, path: str, offset: int, length: int | None) -> Iterator[bytes]:
        self.seen_limit.append(self.read_limit)
        while True:
            if self.clock is not None:
                self.clock.now += self.step
            self.pulled += self.piece
            yield b"e" * self.piece


@pytest.mark.parametrize("announced", [0, 1, 999, 1000, 1001, 123_456])
@pytest.mark.parametrize("piece", [1, 1000, 1 << 20])
def test_an_endless_body_is_never_written_past_the_announced_size(announced, piece):
    t = Endless(piece)
    dest = io.BytesIO()
    with pytest.raises(TransferError) as info:
        t.get("/f", dest, limit=announced)
    assert info.value.permanent
    assert len(dest.getvalue()) <= announced
    assert t.seen_limit == [announced]  # the backend knew it: asks for one byte more at most


def test_without_an_announced_size_the_cap_applies():
    t = Endless(4096)
    t.limits = Limits(max_size=10_000)
    dest = io.BytesIO()
    with pytest.raises(TransferError, match="more than the 10000"):
        t.get("/f", dest)
    assert len(dest.getvalue()) <= 10_000


def test_blocks_keep_their_length_and_tell_the_backend_no_whole_file_limit():
    class Short(Endless):
        def iter_read(self, path, offset, length):
            self.seen_limit.append(self.read_limit)
            yield b"a" * length

    t = Short()
    assert t.get("/f", io.BytesIO(), offset=5, length=10) == 10
    assert t.seen_limit == [None]


@pytest.mark.parametrize(
    "timeout, rate, size, allowed",
    [
        (5, 1024, 100, 10),  # max(timeout, size/rate) + timeout
        (5, 1024, 1024 * 60, 65),
        (30, 1000, 0, 60),
        (1, 0, 10**9, float("inf")),  # rate 0: no deadline
    ],
)
def test_the_deadline_is_timeout_plus_the_larger_of_timeout_and_size_over_rate(
    timeout, rate, size, allowed
):
    assert Budget(timeout, Limits(min_rate=rate), size).allowed(0) == allowed


def test_without_a_size_the_bytes_received_stand_in_for_it():
    b = Budget(2, Limits(min_rate=100), None)
    assert b.allowed(0) == 4 and b.allowed(1000) == 12


@pytest.mark.parametrize("step", [0.5, 2.0, 4.9])
def test_a_trickle_fails_at_the_deadline_as_a_transient_error(step):
    """One byte per ``step`` s (each read within the 5 s idle timeout): fails once the
    fake clock passes 5 + max(5, 1000/1024) = 10 s, long before the 1000 bytes."""
    clock = Clock()
    t = Endless(piece=1, clock=clock, step=step)
    t.limits = Limits(min_rate=1024, clock=clock)
    dest = io.BytesIO()
    with pytest.raises(TransferError, match="too slow") as info:
        t.get("/f", dest, limit=1000)
    assert not info.value.permanent
    assert len(dest.getvalue()) <= 10 / step + 1


def test_a_fast_unsized_stream_is_not_cut_by_the_deadline():
    clock = Clock()
    t = Endless(piece=1 << 16, clock=clock, step=0.01)  # 6.5 MB/s
    t.limits = Limits(min_rate=1024, clock=clock, max_size=50 << 20)
    with pytest.raises(TransferError, match="more than the"):
        t.get("/f", io.BytesIO())


def test_a_stop_request_ends_the_transfer():
    asked = {"n": 0}

    def stop() -> bool:
        asked["n"] += 1
        return asked["n"] > 3

    t = Endless(piece=10)
    t.limits = Limits(stop=stop)
    with pytest.raises(TransferError, match="stopped") as info:
        t.get("/f", io.BytesIO(), limit=10**6)
    assert not info.value.permanent


def test_the_deadline_also_stops_the_reader_thread_of_a_big_transfer():
    """Full first chunk: the rest is read by pipeline.prefetch's thread, where the
    deadline is checked too; the call returns and the thread is joined."""
    import threading

    clock = Clock()
    t = Endless(piece=Transfer.chunk_size, clock=clock, step=100.0)
    t.limits = Limits(min_rate=1 << 20, clock=clock)
    before = threading.active_count()
    with pytest.raises(TransferError, match="too slow"):
        t.get("/f", io.BytesIO(), limit=10 * Transfer.chunk_size)
    assert threading.active_count() == before


def test_gather_hands_over_what_arrived_once_the_window_passed():
    clock = Clock()
    pieces = [b"a", b"b", b"c", b"d", b"e", b"f"]

    def read(n: int) -> bytes:
        clock.now += 0.1
        return pieces.pop(0) if pieces else b""

    assert gather(read, 100, clock) == b"abcd"  # 0.3 s after the first: window passed
    assert gather(read, 100, clock) == b"ef"  # then the end
    assert gather(read, 100, clock) == b""
    assert gather(lambda n: b"x" * n, 5, clock) == b"xxxxx"


def test_the_watchdog_aborts_a_transfer_once_its_budget_expired():
    from sarra.transfer.limits import Watchdog

    clock = Clock()
    aborted = []
    dog = Watchdog()
    w = dog.watch(Budget(5, Limits(min_rate=1024, clock=clock), 100), lambda: aborted.append(1))
    dog.sweep()
    assert aborted == [] and w.fired is None
    clock.now += 10.5  # past 5 + max(5, 100/1024)
    dog.sweep()
    dog.sweep()
    assert aborted == [1] and "too slow" in w.fired  # once
    dog.forget(w)


def test_the_watchdog_aborts_on_a_stop_request_and_a_failed_abort_is_harmless():
    from sarra.transfer.limits import Watchdog

    def boom():
        raise OSError("already closed")

    dog = Watchdog()
    w = dog.watch(Budget(5, Limits(stop=lambda: True), None), boom)
    dog.sweep()
    assert w.fired == "stopped during the transfer"


def test_get_reports_the_watchdogs_reason_when_its_abort_broke_the_read():
    from sarra.transfer import limits

    class Blocked(Transfer):
        scheme = "fake"

        def iter_read(self, path, offset, length):
            limits.WATCHDOG.sweep()  # as if the thread ran while the read was blocked
            if self.aborted:
                raise TransferError("connection reset by peer")
            yield b"x"

        def abort(self):
            self.aborted = True

    t = Blocked("fake://h/", timeout=0)
    t.aborted = False
    t.limits = Limits(stop=lambda: True)
    with pytest.raises(TransferError, match="stopped during the transfer"):
        t.get("/f", io.BytesIO(), limit=1)
