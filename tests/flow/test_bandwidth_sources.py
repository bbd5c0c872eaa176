"""Bandwidth per source on a switch: dd_sara (3 instances) ingesting two sources at once.

As in ``test_bandwidth.py``, the rates are the feature under test: they are computed
from the bytes a :class:`~tests.fixtures.linkrate.DiskMeter` sees arrive below each
source's directory of the switch's tree (sampled every 0.1 s), averaged over the time
both sources were busy (from the later one's first byte to the earlier one's last).
Alice posts first, so her messages are ahead of eve's in the one ingest queue: without
the sharing, eve's files would wait behind all of alice's.  The tolerance is wider than
for a config's total (20 %): a share between two sources over some 5 seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures import rabbit
from tests.fixtures.linkrate import DiskMeter, MiB, at, busy, write_set
from tests.fixtures.waiting import wait_for
from tests.flow.switch_net import Net
from tests.flow.test_switches import ingest_conf, post

pytestmark = pytest.mark.flow


@pytest.fixture
def net(rabbit, tmp_path):
    with Net(tmp_path, "A") as n:
        yield n


def ingest_two_sources(net: Net, tmp: Path, extra: str, files: dict) -> tuple:
    """Run the switch's ingest (3 instances) while alice, then eve, post ``files[who]``
    files of 1 MiB; returns (meter, {who: bytes})."""
    www = tmp / "A_www"
    srv = net.serve(www)
    users = {who: net.user(who) for who in ("alice", "eve")}
    net.config(
        "sara", "A", ingest_conf(net, "A", www, srv.url, "directory ${PBD}/${SOURCE}\n" + extra)
    )
    sets = {who: write_set(tmp / who / "set", n, MiB, prefix=who) for who, n in files.items()}
    servers = {who: net.serve(tmp / who) for who in files}
    started = net.run("dd_sara", "start", "A")
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        assert rabbit.wait_for_connections(net.vhosts["A"], 3, timeout=60), net.logs()
        dirs = {who: www / users[who] for who in files}
        with DiskMeter(dirs) as meter:
            for who in files:
                post(net, "A", who, tmp / who, servers[who].url, str(tmp / who / "set"))
            wait_for(
                lambda: all(at(meter.series(w), 1e12) >= sets[w] for w in files),
                120,
                "both sources' files on the switch",
            )
    finally:
        net.run("dd_sara", "stop", "A")
    return meter, sets


def both_busy(meter: DiskMeter, sets: dict) -> dict:
    """Each source's average rate while both were busy."""
    spans = {who: busy(meter.series(who), total) for who, total in sets.items()}
    start = max(s[0] for s in spans.values())
    end = min(s[1] for s in spans.values())
    assert end - start >= 2.0, f"the sources hardly overlapped: {spans}"
    return {
        who: (at(meter.series(who), end) - at(meter.series(who), start)) / (end - start)
        for who in sets
    }


def test_two_sources_with_quotas_get_their_shares(net, tmp_path):
    """alice 4 MiB/s, eve 2 MiB/s (``source_bandwidth`` lines as dd_admin writes them):
    while both send, each gets its quota +-20 %."""
    quotas = {"alice": 4 * MiB, "eve": 2 * MiB}
    extra = "instances 3\nprefetch 50\n" + "".join(
        f"source_bandwidth {net.user(who)} {rate}\n" for who, rate in quotas.items()
    )
    meter, sets = ingest_two_sources(net, tmp_path, extra, {"alice": 32, "eve": 16})
    rates = both_busy(meter, sets)
    print({who: round(r / MiB, 2) for who, r in rates.items()})
    for who, quota in quotas.items():
        assert 0.8 * quota <= rates[who] <= 1.2 * quota, (who, rates)


def test_two_sources_share_a_full_link_fairly(net, tmp_path):
    """``bandwidth 6M`` and no quotas: alice posted three times as much, first; while
    both send, each gets half (3 MiB/s +-20 %), together the total +-10 %."""
    rate = 6 * MiB
    extra = f"instances 3\nprefetch 50\nbandwidth {rate}\n"
    meter, sets = ingest_two_sources(net, tmp_path, extra, {"alice": 36, "eve": 12})
    rates = both_busy(meter, sets)
    print({who: round(r / MiB, 2) for who, r in rates.items()})
    assert 0.9 * rate <= sum(rates.values()) <= 1.1 * rate, rates
    for who in sets:
        assert 0.4 * rate <= rates[who] <= 0.6 * rate, (who, rates)
