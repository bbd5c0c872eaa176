"""Numbers for people: sizes and rates as log lines and ``dd status`` show them."""

from __future__ import annotations


def human_size(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'`` (binary units, as file sizes are shown by ls -h)."""
    import humanize  # imported on first use: one-shot commands may never show a size

    return humanize.naturalsize(n, binary=True)


def human_rate(nbytes: float, seconds: float) -> str:
    """Throughput for people: ``human_rate(3 * 2**20, 2)`` -> ``'1.5 MiB/s'``."""
    if seconds <= 0:
        return "n/a"
    return f"{human_size(nbytes / seconds)}/s"
