"""sarra.watch.watcher under load, on real inotify: a 10,000-file burst and close-to-event latency.

Measurements are printed (run with ``-s``), never asserted: the only limits are generous
overall waits for the events to arrive.
"""

from __future__ import annotations

import collections
import statistics
import threading
import time

import pytest

from sarra.watch.watcher import Watcher

pytestmark = pytest.mark.integration


def test_ten_thousand_file_burst_gives_each_file_exactly_once(tmp_path):
    n = 10_000
    with Watcher([str(tmp_path)]) as w:

        def burst():
            for i in range(n):
                with open(f"{tmp_path}/f{i:05d}", "wb") as f:
                    f.write(b"x")

        t0 = time.monotonic()
        writer = threading.Thread(target=burst)
        writer.start()
        counts: collections.Counter = collections.Counter()
        deadline = t0 + 180
        while sum(counts.values()) < n and time.monotonic() < deadline:
            for ev in w.get_events(0.5, max_count=5000):
                counts[(ev.kind, ev.path)] += 1
        elapsed = time.monotonic() - t0
        writer.join()
        quiet_end = time.monotonic() + 2
        while time.monotonic() < quiet_end:
            for ev in w.get_events(0.2):
                counts[(ev.kind, ev.path)] += 1
    print(f"\n10,000-file burst: all events in {elapsed:.2f} s")
    assert len(counts) == n
    assert set(counts.values()) == {1}
    assert {kind for kind, _ in counts} == {"file"}


def test_close_to_event_latency_over_200_files(tmp_path):
    closed_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    with Watcher([str(tmp_path)]) as w:

        def writer():
            for i in range(200):
                path = f"{tmp_path}/lat{i:03d}"
                with open(path, "wb") as f:
                    f.write(b"y" * 1000)
                closed_at[path] = time.monotonic()
                time.sleep(0.02)  # files closed one by one, as a producer does

        t = threading.Thread(target=writer)
        t.start()
        deadline = time.monotonic() + 60
        while len(seen_at) < 200 and time.monotonic() < deadline:
            for ev in w.get_events(0.5):
                assert ev.path not in seen_at
                seen_at[ev.path] = time.monotonic()
        t.join()
    lat = [seen_at[p] - closed_at[p] for p in seen_at]
    print(
        f"\nclose -> get_events latency over {len(lat)} files: median "
        f"{statistics.median(lat) * 1000:.2f} ms, p90 "
        f"{sorted(lat)[int(len(lat) * 0.9)] * 1000:.2f} ms, max {max(lat) * 1000:.2f} ms"
    )
    assert len(seen_at) == 200
