"""Corrupted data: a file changed after it was posted no longer matches its checksum.

It must never be placed under its final name (nor leave a temp), must be reported as a
failure, retried (retry_delay 1 s) and given up once retry_ttl (4 s) has passed.
"""

from __future__ import annotations

import pytest

from tests.fixtures.flowkit import md5_listing, stray_temps

pytestmark = [pytest.mark.flow, pytest.mark.integration]

FILES = 40


@pytest.mark.parametrize("scheme", ["http", "file"])
def test_file_changed_after_posting_is_never_placed_and_is_reported(make_flow, main_rabbit, scheme):
    flow = make_flow(main_rabbit, files=FILES, mb_files=1)
    tap = flow.open_tap()
    stage = flow.add_subscriber(scheme, "retry_ttl 4\nattempts 1", start=False)
    bad = sorted(k for k in flow.expected if (flow.tree / k).stat().st_size > 0)[3]
    flow.post(scheme)
    data = (flow.tree / bad).read_bytes()
    (flow.tree / bad).write_bytes(bytes([data[0] ^ 0xFF]) + data[1:])  # same size, new sum
    expected = {k: v for k, v in flow.expected.items() if k != bad}
    flow.kit.start(stage.program, stage.conf)
    gave_up = lambda: flow.kit.log_lines(stage.program, stage.conf, "", "giving up on")  # noqa: E731
    flow.wait_settled(expected, timeout=120, done=lambda: bool(gave_up()))
    retries = flow.kit.log_lines(stage.program, stage.conf, "WARNING", "will retry")
    flow.counts(f"corrupted data ({scheme})", [("changed after posting", bad)])
    assert bad not in md5_listing(stage.dest)
    assert stray_temps(stage.dest) == []
    flow.check_trees(expected)
    flow.check_queues_empty()
    assert flow.kit.retry_backlog(stage.program, stage.conf) == 0
    assert len(gave_up()) == 1 and bad in gave_up()[0]
    assert retries and all(bad in line and "checksum mismatch" in line for line in retries)
    failures = [s for s in tap.seen if s.relpath == bad]
    assert failures and all(s.code == 499 for s in failures)
    assert len(failures) == len(retries) + 1  # one report per attempt, the last one too
    assert tap.codes(stage.base_scheme).get(201) == FILES - 1
