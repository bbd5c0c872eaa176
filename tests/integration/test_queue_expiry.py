"""How long a subscriber's queue outlives the subscriber, read from the broker itself.

v2's sr_subscribe(1) and sr3's sr3_options(7) both document ``expire`` as 5 minutes by
default ("RECOMMEND OVERRIDING": sr3's subscriber guide keeps it short so experiments
do not clutter a pump, and asks for longer in operations); sarra's default is the same,
and ``expire 1d`` or ``expire None`` (never) are read as they write them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sarra.config.loader import load
from sarra.config.paths import Paths
from sarra.flow.context import Context
from sarra.roles import subscribe

pytestmark = pytest.mark.integration


def declared_arguments(rabbit, vhost: str, tmp_path: Path, amqp_url: str, lines: str) -> dict:
    """``dd_subscribe declare`` of a config holding ``lines``; the queue's arguments as the
    broker reports them."""
    paths = Paths.under(tmp_path)
    conf = paths.config_file("subscribe", "feed")
    conf.parent.mkdir(parents=True)
    conf.write_text(f"broker {amqp_url}\nexchange xs_feed\n{lines}")
    o = load("dd_subscribe", "feed", paths=paths, defaults=subscribe.DEFAULTS)
    ctx = Context("subscribe", o, paths)
    try:
        subscribe.declare(ctx)
    finally:
        ctx.close()
    out = rabbit.rabbitmqctl("list_queues", "-p", vhost, "--formatter", "json", "name", "arguments")
    [queue] = json.loads(out)
    assert queue["name"].startswith("q_guest.dd_subscribe.feed.")
    args = queue["arguments"]  # 3.10 prints [name, type, value] triples; later a mapping
    return dict(args) if isinstance(args, dict) else {a[0]: a[-1] for a in args}


def test_a_subscribers_queue_expires_after_five_minutes_by_default(
    rabbit, vhost, tmp_path, amqp_url
):
    assert declared_arguments(rabbit, vhost, tmp_path, amqp_url, "")["x-expires"] == 300_000


@pytest.mark.parametrize(
    "line, expires",
    [("expire 1d\n", 86_400_000), ("expiry 10m\n", 600_000), ("expire None\n", None)],
)
def test_expire_as_v2_and_sr3_write_it(rabbit, vhost, tmp_path, amqp_url, line, expires):
    args = declared_arguments(rabbit, vhost, tmp_path, amqp_url, line)
    assert args.get("x-expires") == expires
