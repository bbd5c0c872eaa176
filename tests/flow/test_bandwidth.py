"""Bandwidth limits end to end: real daemons, a long link on loopback, rates measured.

The rates *are* the feature under test here, so these tests assert rates; they are
computed, never slept for.  How: the files are served by the test HTTP server behind
``bench/delayproxy.py`` (25 ms each way, 4 MiB in flight per connection: one stream
could carry about 80 MiB/s, so the link is long but never what holds the rate down);
a :class:`~tests.fixtures.linkrate.DiskMeter` samples the bytes written below the
destination every 0.1 s (inflight files included), and the rate over a window is the
bytes it gained divided by its length.  The windows lie between the first byte and the
last, where the limit is what binds; the tolerance is the issue's (10 %) for the total
of a config, wider where a share between two parties is measured over a few seconds.

Figures: the issue asks for 4 instances x 2 threads moving 200 MiB at 20 MiB/s; this
machine (2 cores shared with the broker, the proxy, the server and the other tests)
pushes that, so the test uses those figures.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.fixtures import rabbit
from tests.fixtures.linkrate import (
    DiskMeter,
    MiB,
    busy,
    delay_proxy,
    when,
    window_rates,
    write_set,
)
from tests.fixtures.waiting import wait_for
from tests.flow.conftest import count_files, listing

pytestmark = [pytest.mark.flow]

TOTAL_RATE = 20 * MiB
SET_FILES, SET_SIZE = 100, 2 * MiB  # 200 MiB: 10 s at the limit
WINDOW = 10.0


def run_until_arrived(fe, config: str, dst: Path, count: int, post_args: list, *, instances: int):
    """Start ``config`` (``instances`` daemons), post, sample ``dst`` until ``count``
    files arrived, stop; returns the meter."""
    fe.run("dd_subscribe", "declare", config)
    out = fe.run("dd_subscribe", "start", config).stdout
    try:
        assert rabbit.wait_for_connections(fe.vhost, instances, timeout=60), out
        with DiskMeter({"dst": dst}) as meter:
            fe.post(*post_args)
            wait_for(lambda: count_files(dst) >= count, 180, f"{count} files in {dst}")
    finally:
        stopped = fe.run("dd_subscribe", "stop", config, check=False)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    return meter


def rates_of(meter: DiskMeter, total: int, width: float, name: str | None = None) -> tuple:
    """(rates of every window of ``width`` s between the first and the last byte,
    the average over the whole run)."""
    series = meter.series(name)
    start, end, average = busy(series, total)
    return window_rates(series, start, end, min(width, end - start)), average


def test_four_instances_of_two_threads_hold_the_config_total(flowenv, http_server):
    """``bandwidth 20M`` with 4 instances x 2 threads: the 8 streams together move the
    200 MiB set at 20 MiB/s +-10 % over every 10 s window (and on average), not 8 x 20."""
    fe, www = flowenv, http_server.root
    total = write_set(www / "set", SET_FILES, SET_SIZE)
    dst = fe.root / "dst"
    with delay_proxy(http_server.port) as port:
        fe.config(
            "subscribe", "bw",
            f"exchange xs_guest\ndirectory {dst}\nmirror True\ninstances 4\nthreads 2\n"
            f"prefetch 4\nbatch 4\nbandwidth {TOTAL_RATE}\n",
        )  # fmt: skip
        meter = run_until_arrived(
            fe, "bw", dst, SET_FILES,
            ["-u", f"http://127.0.0.1:{port}/", "-pbd", str(www), str(www / "set")],
            instances=4,
        )  # fmt: skip
    assert listing(dst / "set") == listing(www / "set")
    rates, average = rates_of(meter, total, WINDOW)
    mib = [round(r / MiB, 1) for r in rates]
    print(f"10 s windows (MiB/s): {mib}; average {average / MiB:.1f} MiB/s")
    assert rates and all(0.9 * TOTAL_RATE <= r <= 1.1 * TOTAL_RATE for r in rates), mib
    assert 0.9 * TOTAL_RATE <= average <= 1.1 * TOTAL_RATE
    logs = [(fe.log_dir / f"subscribe_bw_{n:02d}.log").read_text() for n in (1, 2, 3, 4)]
    assert all(log.count("downloaded ") for log in logs), "every instance took a share"
    assert "bandwidth: this host takes 4/4" in "".join(logs)


def test_two_configs_fetching_from_one_server_share_its_per_host_limit(flowenv, http_server):
    """Two subscriber configs (2 threads each) take the same 24 MiB set from one server
    with ``bandwidth_per_host 6M``: together at 6 MiB/s +-10 % (5 s windows), and each
    gets a fair part of it (30 to 70 % of the bytes while both run)."""
    fe, www = flowenv, http_server.root
    rate, count = 6 * MiB, 12
    total = write_set(www / "set", count, 2 * MiB)
    dirs = {name: fe.root / name for name in ("one", "two")}
    with delay_proxy(http_server.port) as port:
        for name, dst in dirs.items():
            fe.config(
                "subscribe", name,
                f"exchange xs_guest\ndirectory {dst}\nmirror True\nthreads 2\nprefetch 4\n"
                f"batch 4\nbandwidth_per_host {rate}\n",
            )  # fmt: skip
            fe.run("dd_subscribe", "declare", name)
        procs = [fe.foreground(name) for name in dirs]
        assert rabbit.wait_for_connections(fe.vhost, 2, timeout=60)
        with DiskMeter(dirs) as meter:
            fe.post("-u", f"http://127.0.0.1:{port}/", "-pbd", str(www), str(www / "set"))
            wait_for(lambda: all(count_files(d) >= count for d in dirs.values()), 120, "both")
        for p in procs:
            assert fe.terminate(p) == 0
    for dst in dirs.values():
        assert listing(dst / "set") == listing(www / "set")
    rates, average = rates_of(meter, 2 * total, 5.0)
    mib = [round(r / MiB, 2) for r in rates]
    print(f"both configs, 5 s windows (MiB/s): {mib}; average {average / MiB:.2f}")
    assert rates and all(0.9 * rate <= r <= 1.1 * rate for r in rates), mib
    both = meter.series()
    end_of_first = min(when(meter.series(n), total) for n in dirs)  # while both run
    mid = [(t, v) for t, v in meter.samples if t <= end_of_first]
    share = mid[-1][1]["one"] / max(1, sum(mid[-1][1].values()))
    assert 0.3 <= share <= 0.7, f"config one moved {share:.0%} of the bytes while both ran"
    assert both[-1][1] == 2 * total


def test_a_limit_change_takes_effect_on_restart(flowenv, http_server):
    """``bandwidth 3M``, then 8M after a restart: each set of files moves at its
    limit (+-15 % over the run, which lasts about 4 s each time)."""
    fe, www = flowenv, http_server.root
    dst = fe.root / "dst"
    measured = []
    with delay_proxy(http_server.port) as port:
        for n, (rate, files) in enumerate(((3 * MiB, 6), (8 * MiB, 16))):
            total = write_set(www / f"set{n}", files, 2 * MiB, prefix=f"s{n}-")
            fe.config(
                "subscribe", "lim",
                f"exchange xs_guest\ndirectory {dst}\nmirror True\ninstances 2\nprefetch 4\n"
                f"batch 4\nbandwidth {rate}\n",
            )  # fmt: skip
            before = count_files(dst)
            meter = run_until_arrived(
                fe, "lim", dst, before + files,
                ["-u", f"http://127.0.0.1:{port}/", "-pbd", str(www), str(www / f"set{n}")],
                instances=2,
            )  # fmt: skip
            series = [(t, b - meter.series()[0][1]) for t, b in meter.series()]
            measured.append(busy(series, total)[2])
            assert listing(dst / f"set{n}") == listing(www / f"set{n}")
            assert wait_for(lambda: rabbit.open_connections(fe.vhost) == [], 30, fail=False)
    print(f"before/after restart (MiB/s): {[round(r / MiB, 2) for r in measured]}")
    assert 0.85 * 3 * MiB <= measured[0] <= 1.15 * 3 * MiB
    assert 0.85 * 8 * MiB <= measured[1] <= 1.15 * 8 * MiB


def test_two_sender_instances_hold_the_total_they_send(flowenv, sftp_server):
    """dd_sender (2 instances) with ``bandwidth 3M`` sends 24 MiB over SFTP at 3 MiB/s
    +-10 % (5 s windows, measured where the server writes)."""
    fe, rate, count = flowenv, 3 * MiB, 12
    src = fe.root / "out"
    total = write_set(src / "set", count, 2 * MiB)
    remote = sftp_server.root / f"bw{os.getpid()}"
    remote.mkdir()
    url = f"sftp://root@127.0.0.1:{sftp_server.port}/"
    fe.add_credentials(
        f"{url} ssh_keyfile={sftp_server.client_key},known_hosts={sftp_server.known_hosts}"
    )
    fe.config(
        "sender", "bw",
        f"exchange xs_guest\ndestination {url}\ndirectory {remote}\nbase_dir {src}\n"
        f"instances 2\nprefetch 2\nbatch 2\nbandwidth {rate}\naccept .*\n",
    )  # fmt: skip
    try:
        fe.run("dd_sender", "declare", "bw")
        fe.run("dd_sender", "start", "bw")
        assert rabbit.wait_for_connections(fe.vhost, 2, timeout=60)
        with DiskMeter({"remote": remote}) as meter:
            fe.post("-u", "http://pump.example/", "-pbd", str(src), str(src / "set"))
            wait_for(lambda: count_files(remote) >= count, 120, f"{count} files sent")
    finally:
        fe.run("dd_sender", "stop", "bw", check=False)
        arrived = listing(remote)
        shutil.rmtree(remote, ignore_errors=True)
    assert arrived == listing(src)
    rates, average = rates_of(meter, total, 5.0)
    mib = [round(r / MiB, 2) for r in rates]
    print(f"sent, 5 s windows (MiB/s): {mib}; average {average / MiB:.2f}")
    assert rates and all(0.9 * rate <= r <= 1.1 * rate for r in rates), mib
