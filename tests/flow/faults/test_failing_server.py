"""Failing server: HTTP 503 for a while, then service; and one file really gone (404).

Transient failures go to the on-disk retry queue (retry_delay 1 s) and are delivered
once the server serves again; the gone file is reported (499 on the report exchange)
once, logged once, and not retried.  Every failed attempt is reported (499).
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.flow, pytest.mark.integration]

FILES = 40


def test_503_then_service_delivers_all_and_404_is_reported_once_not_retried(make_flow, main_rabbit):
    flow = make_flow(main_rabbit, files=FILES, mb_files=1)
    tap = flow.open_tap()
    stage = flow.add_subscriber("http", "attempts 1", start=False)
    gone = sorted(flow.expected)[5]
    flow.post("http")
    (flow.tree / gone).unlink()
    expected = {k: v for k, v in flow.expected.items() if k != gone}
    flow.http.fail_next(60, 503)
    flow.kit.start(stage.program, stage.conf)
    flow.wait_settled(expected, timeout=120, done=lambda: len(tap.seen) >= FILES)
    retries = flow.kit.log_lines(stage.program, stage.conf, "WARNING", "will retry")
    flow.counts(
        "failing server",
        [("503 answers served", 60 - flow.http._failures), ("gone (404)", gone)],
    )
    assert flow.http._failures == 0  # every injected 503 was met
    assert retries, "the 503s must have sent messages to the retry queue"
    flow.check_trees(expected)
    flow.check_queues_empty()
    assert flow.kit.retry_backlog(stage.program, stage.conf) == 0
    # one failure report per failed attempt: the 60 503s, then the 404 once
    assert tap.codes("http://") == {201: FILES - 1, 499: 60 + 1}
    assert len(retries) == 60
    about_gone = [s.text for s in tap.seen if s.relpath == gone]
    assert ["404" in t for t in about_gone].count(True) == 1 and "404" in about_gone[-1]
    failed = flow.kit.errors(stage.program, stage.conf)
    assert len(failed) == 1 and gone in failed[0] and "404" in failed[0], failed
    assert not any(gone in line and "404" in line for line in retries), "a 404 is not retried"
