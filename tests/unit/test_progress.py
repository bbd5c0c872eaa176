"""The progress line of a transfer, drawn with a fake clock on a fake terminal."""

from __future__ import annotations

import io

from sarra.logs.progress import INTERVAL, Progress, format_eta, progress_line

MiB = 1 << 20


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now


class Terminal(io.StringIO):
    """Records what is written, and what one terminal line would show (``\\r`` returns
    to the start of the line, later characters overwrite earlier ones)."""

    def __init__(self) -> None:
        super().__init__()
        self.screen: list[str] = []
        self.col = 0
        self.flushes = 0
        self.draws = 0

    def write(self, s: str) -> int:
        self.draws += 1
        for ch in s:
            if ch == "\r":
                self.col = 0
            else:
                self.screen[self.col : self.col + 1] = [ch]
                self.col += 1
        return super().write(s)

    def flush(self) -> None:
        self.flushes += 1

    def shown(self) -> str:
        return "".join(self.screen).rstrip()


def progress(width: int = 100) -> tuple[Progress, Clock, Terminal]:
    clock, term = Clock(), Terminal()
    return Progress(stream=term, clock=clock, width=width), clock, term


def test_eta_is_minutes_and_seconds_then_hours():
    assert format_eta(0) == "0:00"
    assert format_eta(11.2) == "0:12"  # rounded up: never promise too early
    assert format_eta(62) == "1:02"
    assert format_eta(3723) == "1:02:03"
    assert format_eta(-3) == "0:00"


def test_line_shows_name_bytes_total_percent_rate_and_eta():
    line = progress_line("big.bin", 10 * MiB, 40 * MiB, 2.0)
    assert line == "big.bin  10.0 MiB / 40.0 MiB  25%  5.0 MiB/s  ETA 0:06"


def test_line_of_unknown_size_shows_bytes_and_rate_only():
    line = progress_line("big.bin", 10 * MiB, 0, 2.0)
    assert line == "big.bin  10.0 MiB  5.0 MiB/s"


def test_line_keeps_the_end_of_a_long_name_within_the_width():
    name = "a/very/long/directory/" * 5 + "file.bin"
    line = progress_line(name, 1 * MiB, 4 * MiB, 1.0, width=60)
    assert len(line) == 59
    assert line.startswith("...") and "file.bin  1.0 MiB / 4.0 MiB  25%" in line


def test_nothing_is_drawn_before_the_transfer_lasted_one_interval():
    p, clock, term = progress()
    p.start("small.txt", 1000)
    p.add(1000)
    p.done()
    assert term.getvalue() == ""


def test_redraws_in_place_at_most_once_per_interval():
    p, clock, term = progress()
    p.start("big.bin", 40 * MiB)
    for _ in range(40):  # 40 chunks of 1 MiB in 2.5 s (1/16 s each: exact floats)
        clock.now += 1 / 16
        p.add(MiB)
    assert INTERVAL == 0.25 and term.draws == 10  # every 4th chunk
    assert term.getvalue().count("\r") == 10 and "\n" not in term.getvalue()
    assert term.shown() == "big.bin  40.0 MiB / 40.0 MiB  100%  16.0 MiB/s  ETA 0:00"


def test_progress_mid_transfer_has_percent_rate_and_eta():
    p, clock, term = progress()
    p.start("big.bin", 100 * MiB)
    clock.now += 4.0
    p.add(25 * MiB)
    assert term.shown() == "big.bin  25.0 MiB / 100.0 MiB  25%  6.2 MiB/s  ETA 0:12"


def test_unknown_size_draws_no_percent_nor_eta():
    for size in (0, None):
        p, clock, term = progress()
        p.start("stream.bin", size)
        clock.now += 1.0
        p.add(3 * MiB)
        assert term.shown() == "stream.bin  3.0 MiB  3.0 MiB/s"


def test_a_shorter_line_overwrites_all_of_the_longer_one():
    p, clock, term = progress()
    p.start("big.bin", 100 * MiB)
    clock.now += 100.0
    p.add(1)  # ETA in hours: a long line
    clock.now += 1.0
    p.add(100 * MiB - 1)
    assert term.shown() == "big.bin  100.0 MiB / 100.0 MiB  100%  1013.9 KiB/s  ETA 0:00"


def test_done_blanks_the_line_so_log_lines_start_clean():
    p, clock, term = progress()
    p.start("big.bin", 10 * MiB)
    clock.now += 1.0
    p.add(5 * MiB)
    assert "ETA" in term.shown()
    p.done()
    assert term.shown() == "" and term.col == 0
    term.write("12:00:00 INFO downloaded big.bin\n")
    assert term.getvalue().endswith("\r12:00:00 INFO downloaded big.bin\n")


def test_the_next_file_starts_its_own_count_and_clock():
    p, clock, term = progress()
    p.start("one.bin", 10 * MiB)
    clock.now += 1.0
    p.add(10 * MiB)
    p.done()
    p.start("two.bin", 20 * MiB)
    clock.now += 2.0
    p.add(5 * MiB)
    assert term.shown() == "two.bin  5.0 MiB / 20.0 MiB  25%  2.5 MiB/s  ETA 0:06"


def test_bytes_after_done_draw_nothing():
    p, clock, term = progress()
    p.start("big.bin", 10 * MiB)
    p.done()
    clock.now += 5.0
    p.add(MiB)
    assert term.getvalue() == ""


def test_without_a_terminal_only_keepalive_runs_and_the_clock_is_never_read():
    beats = []
    clock = Clock()
    p = Progress(keepalive=lambda: beats.append(1), stream=None, clock=clock)
    p.start("big.bin", 10 * MiB)
    for _ in range(10):
        p.add(MiB)
    p.done()
    assert len(beats) == 10 and clock.reads == 0


def test_on_a_terminal_each_piece_reads_the_clock_once_and_keeps_the_broker_alive():
    beats = []
    clock, term = Clock(), Terminal()
    p = Progress(keepalive=lambda: beats.append(1), stream=term, clock=clock, width=80)
    p.start("big.bin", 10 * MiB)
    for _ in range(10):
        p.add(MiB)
    assert len(beats) == 10 and clock.reads == 1 + 10


def test_a_log_line_first_blanks_the_progress_line():
    import logging

    from sarra.logs import setup as logsetup
    from sarra.logs.progress import Progress

    clock = [0.0]
    stream = io.StringIO()
    p = Progress(stream=stream, clock=lambda: clock[0], width=60)
    p.start("big.bin", 1000)
    clock[0] = 1.0
    p.add(500)  # drawn
    assert "50%" in stream.getvalue()
    handler = logsetup._TerminalHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.emit(logging.LogRecord("t", logging.WARNING, __file__, 1, "a warning", None, None))
    text = stream.getvalue()
    before, _, after = text.rpartition("a warning")
    assert before.endswith("\r") and before.rstrip("\r ").endswith("ETA 0:01")
    assert after == "\n"
    clock[0] = 2.0
    p.add(100)  # the line comes back at the next redraw
    assert "60%" in stream.getvalue().rpartition("a warning\n")[2]
    p.done()
