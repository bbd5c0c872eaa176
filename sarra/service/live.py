"""``dd status --watch``: the speedos, a live view of every flow redrawn in place.

One frame per refresh: a title line, then one line per config with its instances, state,
messages and bytes per second over the instances' last saved interval (the counters of
``sarra.flow.stats``, saved every ``metrics_interval``), the worst instance's lag, the
broker queue depth and the retry backlog.  It fits an 80-column terminal (the config name
is cut to fit; a wider terminal gives it more room).  The frame is drawn from the top
left corner over the previous one, each line clearing what is left of the old one, so
nothing scrolls and nothing flickers; a stop (Ctrl-C, SIGTERM) leaves the last frame on
screen.
"""

from __future__ import annotations

import shutil
import socket
import sys
import time
from typing import Callable, List, Optional, Sequence, TextIO

from sarra.service.health import ConfigStatus, human_seconds

HOME, CLEAR_EOL, CLEAR_BELOW = "\x1b[H", "\x1b[K", "\x1b[J"
MIN_WIDTH = 80

#: (title, width, right-aligned) of each column but the config's, which takes the rest
COLUMNS = (
    ("ROLE", 9, False),
    ("INST", 5, False),
    ("STATE", 7, False),
    ("MSG/S", 7, True),
    ("BYTES/S", 9, True),
    ("LAG", 5, True),
    ("QUEUE", 7, True),
    ("RETRY", 6, True),
)


def short_number(n: Optional[float]) -> str:
    """``-``, ``12``, ``3.4``, ``12k``, ``3.4M``: a count or rate in at most 5 characters."""
    if n is None:
        return "-"
    if n < 10 and n != int(n):
        return f"{n:.1f}"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            value = n / size
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return f"{n:.0f}"


def byte_rate(n: Optional[float]) -> str:
    """``-``, ``512B``, ``1.5KiB``, ``12MiB``: bytes per second in at most 7 characters."""
    if n is None:
        return "-"
    for unit, size in (("GiB", 2.0**30), ("MiB", 2.0**20), ("KiB", 2.0**10)):
        if n >= size:
            value = n / size
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return f"{n:.0f}B"


def _cells(r: ConfigStatus) -> List[str]:
    return [
        r.target.short,
        f"{r.running}/{r.expected if not r.error else '-'}",
        r.state,
        short_number(r.msg_rate),
        byte_rate(r.rate),
        human_seconds(r.lag),
        short_number(r.queue),
        short_number(r.retry),
    ]


def _line(config: str, cells: Sequence[str], config_width: int) -> str:
    """One line: the role, the config cut to ``config_width``, the other columns."""
    parts = [cells[0].ljust(COLUMNS[0][1])[: COLUMNS[0][1]]]
    parts.append(config[:config_width].ljust(config_width))
    for (_, width, right), cell in zip(COLUMNS[1:], cells[1:]):
        cell = cell[:width]
        parts.append(cell.rjust(width) if right else cell.ljust(width))
    return " ".join(parts).rstrip()


def frame(rows: Sequence[ConfigStatus], now: float, width: int = MIN_WIDTH) -> List[str]:
    """The lines of one frame, none longer than ``width`` (at least 80: the view is made
    for 80 columns; a wider terminal widens the config name's column)."""
    width = max(width, MIN_WIDTH)
    fixed = sum(w for _, w, _ in COLUMNS) + len(COLUMNS)  # one space after each column
    config_width = max(8, width - fixed)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    title = f"sarra on {socket.gethostname()}  {stamp}  Ctrl-C to quit"
    header = [c[0] for c in COLUMNS]
    lines = [title[:width], _line("CONFIG", header, config_width)]
    lines += [_line(r.target.config, _cells(r), config_width) for r in rows]
    if not rows:
        lines.append("no configurations")
    errors = [r for r in rows if r.error]
    for r in errors:
        lines.append(f"{r.target.short} {r.target.config}: {r.error}"[:width])
    return lines


def draw(lines: Sequence[str], stream: TextIO) -> None:
    """Draw ``lines`` over the previous frame, from the top left corner."""
    stream.write(HOME + "".join(line + CLEAR_EOL + "\n" for line in lines) + CLEAR_BELOW)
    stream.flush()


def watch(
    rows: Callable[[], Sequence[ConfigStatus]],
    stream: TextIO,
    every: float,
    stop: Callable[[float], bool],
    count: int = 0,
    now: Callable[[], float] = time.time,
) -> int:
    """Draw a frame every ``every`` seconds until ``stop(every)`` (which waits that long,
    and says whether to stop) or ``count`` frames (0: no limit).  Returns the number of
    frames drawn."""
    drawn = 0
    while True:
        width = shutil.get_terminal_size((MIN_WIDTH, 24)).columns
        draw(frame(rows(), now(), width), stream)
        drawn += 1
        if (count and drawn >= count) or stop(every):
            return drawn


def run(rows: Callable[[], Sequence[ConfigStatus]], every: float, count: int = 0) -> int:
    """``dd status --watch`` on stdout until Ctrl-C, SIGTERM or ``count`` frames; exit 0."""
    from sarra.service.signals import SignalReceiver

    with SignalReceiver() as rx:
        watch(rows, sys.stdout, every, rx.wait, count)
    return 0
