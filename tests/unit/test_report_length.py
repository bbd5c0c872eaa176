"""A failure report is never dropped for the length of its reason: it is cut, UTF-8-safe."""

from __future__ import annotations

import pytest

from sarra.core import message
from sarra.core.delivery import Delivery
from sarra.core.message import MAX_HEADER_BYTES, cut_header, make_report
from sarra.flow.engine import BrokerSource, Flow
from sarra.flow.sinks import NoticePublisher, Reporter
from tests.fixtures.fakebroker import FakeBroker

LIMIT = MAX_HEADER_BYTES - 1
REASONS = {
    "200 ascii": "r" * 200,
    "252 ascii": "r" * 252,
    "253 ascii": "r" * 253,
    "300 ascii": "r" * 300,
    "10000 ascii": "r" * 10_000,
    "2-byte chars": "\u00e9" * 200,
    "3-byte chars": "\u65e5" * 100,
    "4-byte chars": "\U0001f600" * 80,
    "mixed at the edge": "x" * 248 + "\u65e5\u65e5\u65e5",
}


def post(**headers: str) -> message.Notice:
    h = {"sum": "d,746308829575e17c3331bbcb00c0898b", "parts": "1,14,1,0,0", "source": "alice"}
    h.update(headers)
    return message.new_post("http://localhost:8090/", "data/f.txt", h)


@pytest.mark.parametrize("name", sorted(REASONS))
def test_cut_header_fits_the_limit_on_a_character_boundary(name):
    reason = REASONS[name]
    cut = cut_header(reason)
    size = len(cut.encode("utf-8"))
    assert size <= LIMIT
    if len(reason.encode("utf-8")) <= LIMIT:
        assert cut == reason
    else:
        assert cut.endswith("...") and reason.startswith(cut[:-3])
        assert size > LIMIT - 6  # no more than one character lost to the boundary


@pytest.mark.parametrize("name", sorted(REASONS))
def test_failure_reports_of_any_length_are_published(name, tmp_path):
    reason = REASONS[name]
    broker = FakeBroker()
    broker.put(post())

    def failing(d: Delivery) -> None:
        d.fail(reason, code=404, permanent=True)

    flow = Flow(
        source=BrokerSource(broker),
        work=failing,
        publisher=NoticePublisher(broker, "xpublic"),
        reporter=Reporter(broker, "xs_alice", "alice", "host.example"),
    )
    flow.run_once()
    reports = [o for o in broker.published if o.exchange == "xs_alice"]
    assert len(reports) == 1
    text = reports[0].headers["message"]
    assert len(text.encode("utf-8")) <= LIMIT
    assert reason.startswith(text.removesuffix("..."))
    decoded = message.decode(reports[0].routing_key, reports[0].headers, reports[0].body)
    assert decoded.report is not None and decoded.report.code == 404


def test_a_long_header_of_the_post_is_cut_in_its_report():
    long = post(comment="c" * 400)  # a v03 post may carry what v02 cannot
    rep = make_report(long, 404, "not found", "h", "u", 0.1)
    assert len(rep.headers["comment"].encode()) <= LIMIT
    message.encode(rep)
