"""The bandwidth options as written in configs and admin.conf, and where they lead."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sarra.admin import config as admin_conf
from sarra.admin.switchconf import ingest_config, relay_config
from sarra.config import converters
from sarra.config.loader import load
from sarra.config.paths import Paths
from sarra.core.errors import ConfigError
from sarra.flow.context import Context
from sarra.flow.sharing import SharedSource
from sarra.flow.source import BrokerSource
from tests.fixtures.fakebroker import FakeBroker


def options(tmp_path: Path, program: str, text: str):
    paths = Paths.under(tmp_path)
    target = paths.config_file(program, "t")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("broker amqp://u@localhost/\n" + text)
    defaults = {"source_from_exchange": True} if program == "sara" else None  # as dd_sara's
    return load(program, "t", paths=paths, defaults=defaults), paths


@pytest.mark.parametrize(
    "text, expected",
    [("alice 2M", ("alice", 2 << 20)), ("* 64K", ("*", 65536)), (" bob-1  100 ", ("bob-1", 100))],
)
def test_source_rate_reads_a_source_and_a_rate(text, expected):
    assert converters.source_rate(text) == expected


@pytest.mark.parametrize("text", ["alice", "alice 2M extra", "alice 0", "a/b 1M", "alice fast"])
def test_source_rate_refuses_garbage_quoting_it(text):
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        converters.source_rate(text)


def test_sr3_byte_rate_max_is_the_per_transfer_throttle(tmp_path):
    o, _ = options(tmp_path, "subscribe", "byteRateMax 1M\nbandwidth 20M\n")
    assert o.throttle == 1 << 20 and o.bandwidth == 20 << 20


def test_source_bandwidth_is_a_dd_sara_option(tmp_path, caplog):
    o, _ = options(tmp_path, "sara", "source_bandwidth alice 1M\nsource_bandwidth * 100K\n")
    assert o.source_bandwidth == (("alice", 1 << 20), ("*", 100 << 10))
    options(tmp_path / "sub", "subscribe", "source_bandwidth alice 1M\n")
    assert "option 'source_bandwidth' is not used by dd_subscribe" in caplog.text


def test_no_limit_means_the_plain_broker_source(tmp_path):
    o, paths = options(tmp_path, "subscribe", "")
    ctx = Context("subscribe", o, paths)
    assert ctx.bandwidth() is None
    assert type(ctx.source(FakeBroker(), "q")) is BrokerSource


def test_a_limit_means_a_shared_source_and_one_budget_set_per_process(tmp_path):
    o, paths = options(tmp_path, "subscribe", "bandwidth 20M\ninstances 4\nthreads 2\n")
    ctx = Context("subscribe", o, paths)
    source = ctx.source(FakeBroker(), "q")
    assert isinstance(source, SharedSource) and source.instances == 4
    assert not source.by_source
    assert ctx.bandwidth() is source.bandwidth
    pools = [ctx.transfers(), ctx.transfers()]  # the work threads' pools
    assert pools[0].get("http://h/").pacing is pools[1].get("http://h/").pacing
    assert (paths.state("subscribe", "t") / "bandwidth").exists()


def test_dd_sara_shares_by_source(tmp_path):
    o, paths = options(tmp_path, "sara", "source_bandwidth alice 1M\n")
    source = Context("dd_sara", o, paths).source(FakeBroker(), "q")  # as the command calls it
    assert source.by_source and source.from_exchange


ADMIN = """\
cluster sw1
admin amqp://root@localhost/sw1
feeder amqp://feeder@localhost/sw1
declare source alice
declare source eve
post_base_dir /srv/sw1
post_base_url http://sw1.example.com/
source_bandwidth alice   10M
source_bandwidth * 1M
ingest_bandwidth 40M
"""


def test_admin_conf_quotas_go_to_the_ingest_and_relay_configs(tmp_path):
    (tmp_path / "admin.conf").write_text(ADMIN)
    cfg = admin_conf.load_admin_config(tmp_path / "admin.conf")
    assert cfg.source_bandwidth == ["alice 10M", "* 1M"]
    link = admin_conf.Link("sw2", "amqp://feeder@sw2.example.com/sw2")
    for text in (ingest_config(cfg), relay_config(cfg, link)):
        assert "source_bandwidth alice 10M\nsource_bandwidth * 1M\n" in text
    assert "\nbandwidth 40M\n" in ingest_config(cfg)
    assert "\nbandwidth " not in relay_config(cfg, link)


def test_a_bad_quota_in_admin_conf_names_its_line(tmp_path):
    (tmp_path / "admin.conf").write_text(ADMIN + "source_bandwidth alice lots\n")
    with pytest.raises(ConfigError, match=r"admin.conf:11: bad source_bandwidth"):
        admin_conf.load_admin_config(tmp_path / "admin.conf")
