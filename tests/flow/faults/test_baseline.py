"""Baseline: the sample tree posted twice over http, sftp and file; everything exact."""

from __future__ import annotations

import pytest

from tests.fixtures.flowkit import md5_listing

pytestmark = [pytest.mark.flow, pytest.mark.integration]


def test_tree_posted_twice_arrives_once_per_subscriber_identical(make_flow, main_rabbit):
    flow = make_flow(main_rabbit)
    flow.open_tap()
    for scheme in ("http", "sftp", "file"):
        flow.add_subscriber(scheme, "suppress_duplicates 300")
    n = len(flow.expected)
    for _ in range(2):
        for scheme in ("http", "sftp", "file"):
            flow.post(scheme)
    flow.wait_settled(flow.expected, done=lambda: len(flow.tap.seen) >= 6 * n)
    flow.counts("baseline")
    assert flow.posted == {"http": 2 * n, "sftp": 2 * n, "file": 2 * n}
    flow.check_trees(flow.expected)
    flow.check_queues_empty()
    for s in flow.subscribers():
        assert flow.tap.codes(s.base_scheme) == {201: n, 304: n}, s.conf
        assert sorted(flow.tap.paths(304, s.base_scheme)) == sorted(flow.expected)
        assert flow.kit.log_lines(s.program, s.conf, "ERROR") == []


def test_pump_and_rewatch_stages_carry_the_tree_exactly(make_flow, main_rabbit):
    """source -> dd_post -> dd_sara (pump) -> xpublic -> dd_subscribe -> dd_watch re-post.

    Skips until dd_sara and dd_watch are on this branch; then the stages are these lines.
    """
    flow = make_flow(main_rabbit)
    flow.add_sara()
    watched = flow.kit.tmp / "dest" / "pumped"
    watched.mkdir(parents=True, exist_ok=True)  # dd_watch refuses a missing directory
    flow.add_watch(watched)
    flow.open_tap()
    sub = flow.add_subscriber("pumped", "suppress_duplicates 300", exchange="xpublic")
    for _ in range(2):
        flow.post("http")
    flow.wait_settled(flow.expected)
    flow.counts("pump and rewatch")
    assert sub.dest is not None and md5_listing(sub.dest) == flow.expected
    flow.check_queues_empty()
