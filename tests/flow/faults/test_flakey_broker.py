"""Flakey broker: a private RabbitMQ node is restarted three times while the flow runs.

The machine's main node is never touched: the test boots its own node (own name, ports,
data dir) and ``stop_app``/``start_app``s that one.  No daemon is restarted by the test:
each reconnects by itself.
"""

from __future__ import annotations

import uuid

import pytest

from tests.fixtures.flowkit import RabbitNode
from tests.fixtures.servers import free_port
from tests.flow.faults.scenario import PIKA_RECONNECT_NOISE

pytestmark = [pytest.mark.flow, pytest.mark.integration]


@pytest.fixture
def node():
    n = RabbitNode(f"faults{uuid.uuid4().hex[:6]}", free_port(), free_port())
    try:
        n.start()
        yield n
    finally:
        n.stop()


def test_broker_restarted_three_times_every_daemon_reconnects_nothing_lost(make_flow, node):
    flow = make_flow(node)
    flow.open_tap()
    for scheme in ("http", "sftp", "file"):
        flow.add_subscriber(scheme, "suppress_duplicates 300", instances=2)
    n = len(flow.expected)
    in_flight = []

    def restart() -> None:
        in_flight.append(flow.backlog())
        node.stop_app()
        node.start_app()

    for scheme in ("http", "sftp", "file"):
        flow.post(scheme)
    restart()  # the first copies are being downloaded
    flow.post("http")
    restart()  # the second http copies are being suppressed
    flow.post("sftp")
    flow.post("file")
    restart()
    flow.wait_settled(flow.expected, timeout=240)
    flow.counts(
        "flakey broker",
        [(f"backlog at restart {i + 1}", b) for i, b in enumerate(in_flight)]
        + [("reconnections logged", len(flow.kit.log_lines(grep="connected to amqp")))],
    )
    assert flow.posted == {"http": 2 * n, "sftp": 2 * n, "file": 2 * n}
    flow.check_trees(flow.expected)
    flow.check_queues_empty()
    # every instance reconnected by itself: a connection at start and at least one after.
    # (Restarts close together may be absorbed by one reconnection after its backoff.)
    for s in flow.subscribers():
        connects = flow.kit.log_lines(
            s.program, s.conf, "", r"\] sarra\.broker\.connection: connected to"
        )
        assert len(connects) >= 2 * 2, (s.conf, connects)  # 2 instances each
    for s in flow.subscribers():
        assert sorted(set(flow.tap.paths(201, s.base_scheme))) == sorted(flow.expected), s.conf
        # pika logs its failed connection attempts at ERROR; sarra's own lines are WARNINGs
        assert flow.kit.errors(s.program, s.conf, allow=PIKA_RECONNECT_NOISE) == [], s.conf
