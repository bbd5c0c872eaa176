"""dd_log's flow against the in-memory fake broker: reports shown and journaled before
they are acknowledged, filters, masks, summaries, idle exit, a closed stdout."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from sarra.config.loader import load
from sarra.config.paths import Paths
from sarra.core import message
from sarra.flow.context import Context
from sarra.roles import log
from tests.fixtures.fakebroker import FakeBroker

URL = "amqp://alice@localhost/"


def report(rel: str, code: int = 201, user: str = "bob", text: str = "Downloaded"):
    headers = {"source": "alice", "from_cluster": "sw1", "parts": "1,1536,1,0,0"}
    post = message.new_post("http://sw1/", rel, headers, pubtime="20261128215959.5")
    return message.make_report(post, code, text, "h1", user, 0.25)


class Rig:
    """A real Context (options, paths) around dd_log's flow on a fake broker."""

    def __init__(self, tmp_path: Path, *overrides: tuple, out=None) -> None:
        paths = Paths.under(tmp_path)
        o = load("log", None, [("broker", URL), *overrides], paths, defaults=log.DEFAULTS)
        self.ctx = Context("dd_log", o, paths)
        self.broker = FakeBroker()
        self.out = out if out is not None else io.StringIO()
        self.flow = log.build(self.ctx, self.broker, log.printer(self.ctx, self.out))

    def lines(self) -> list:
        return self.out.getvalue().splitlines()

    def journaled(self) -> list:
        path = self.ctx.state_dir / "journal.jsonl"
        return [json.loads(line)["relpath"] for line in path.read_text().splitlines()]


def test_reports_are_printed_one_line_each_then_acknowledged(tmp_path):
    rig = Rig(tmp_path)
    for rel in ("/data/a.txt", "/data/b.txt"):
        rig.broker.put(report(rel), exchange="xr_alice")
    assert rig.flow.run_once() == 2
    assert [line.split()[3] for line in rig.lines()] == ["/data/a.txt", "/data/b.txt"]
    assert "201 /data/a.txt bob@h1 1.5 KiB 250.0ms Downloaded" in rig.lines()[0]
    assert len(rig.broker.acked) == 2 and not rig.broker.nacked


def test_a_post_on_the_report_queue_is_dropped_not_shown(tmp_path, caplog):
    rig = Rig(tmp_path, ("keep_journal", "on"))
    rig.broker.put(message.new_post("http://sw1/", "/data/p.txt", {}), exchange="xr_alice")
    rig.broker.put(report("/data/a.txt"), exchange="xr_alice")
    with caplog.at_level("INFO", logger="sarra"):
        rig.flow.run_once()
    assert [line.split()[3] for line in rig.lines()] == ["/data/a.txt"]
    assert rig.journaled() == ["/data/a.txt"]
    assert len(rig.broker.acked) == 2  # the post can never be shown: it is not kept
    assert any("not a v02 report" in r.getMessage() for r in caplog.records)


def test_the_journal_keeps_every_report_the_filters_only_choose_what_is_shown(tmp_path):
    rig = Rig(tmp_path, ("keep_journal", "on"), ("code", "4xx"))
    rig.broker.put(report("/data/a.txt"), exchange="xr_alice")
    rig.broker.put(report("/data/b.txt", 499, "carol", "failed"), exchange="xr_alice")
    rig.flow.run_once()
    assert [line.split()[3] for line in rig.lines()] == ["/data/b.txt"]
    assert rig.journaled() == ["/data/a.txt", "/data/b.txt"]
    assert len(rig.broker.acked) == 2


def test_reject_masks_decide_which_reports_are_taken_at_all(tmp_path):
    rig = Rig(tmp_path, ("keep_journal", "on"), ("reject", r".*secret.*"))
    rig.broker.put(report("/data/secret.txt"), exchange="xr_alice")
    rig.broker.put(report("/data/a.txt"), exchange="xr_alice")
    rig.flow.run_once()
    assert [line.split()[3] for line in rig.lines()] == ["/data/a.txt"]
    assert rig.journaled() == ["/data/a.txt"]
    assert len(rig.broker.acked) == 2


def test_without_follow_the_flow_ends_when_idle_and_prints_the_summary(tmp_path):
    rig = Rig(tmp_path, ("summary", "on"), ("idle_exit", "0"))
    rig.broker.put(report("/data/a.txt"), exchange="xr_alice")
    rig.broker.put(report("/data/a.txt", 499, "carol", "failed"), exchange="xr_alice")
    assert rig.flow.run() == 0  # returns: the queue is empty, idle_exit 0
    assert rig.lines() == [
        "/data/a.txt (source alice, 2 reports)",
        "  switches: sw1",
        "  received by: bob@h1",
        "  FAILED at carol@h1: 499 failed",
    ]
    assert len(rig.broker.acked) == 2


def test_follow_runs_until_stopped(tmp_path):
    rig = Rig(tmp_path, ("follow", "on"), ("idle_exit", "0"))
    assert rig.flow.idle_exit is None


class ClosedPipe(io.StringIO):
    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_stdout_ends_dd_log_with_nothing_acknowledged(tmp_path):
    rig = Rig(tmp_path, ("keep_journal", "on"), out=ClosedPipe())
    rig.broker.put(report("/data/a.txt"), exchange="xr_alice")
    with pytest.raises(BrokenPipeError):
        rig.flow.run()
    assert not rig.broker.acked and not rig.broker.nacked  # shown next time


def test_journal_replay_prints_what_the_filters_keep_without_a_broker(tmp_path):
    first = Rig(tmp_path, ("keep_journal", "on"))
    first.broker.put(report("/data/a.txt"), exchange="xr_alice")
    first.broker.put(report("/data/b.txt", 499, "carol", "failed"), exchange="xr_alice")
    first.flow.run_once()
    paths = Paths.under(tmp_path)
    overrides = [("broker", URL), ("journal", "on"), ("consumer_match", "^carol@")]
    o = load("log", None, overrides, paths, defaults=log.DEFAULTS)
    out = io.StringIO()
    assert log.run(Context("dd_log", o, paths), out) == 0
    assert [line.split()[3] for line in out.getvalue().splitlines()] == ["/data/b.txt"]


def test_a_report_that_cannot_be_shown_is_settled_alone_and_dd_log_goes_on(
    tmp_path, monkeypatch, caplog
):
    """Whatever fails on one report's line fails in the select step, inside the flow's
    boundary: never in the sink, where it would stop dd_log at every run."""
    import sarra.report.printer as printer

    real = printer.format_line

    def fragile(e):
        if "bad" in e.relpath:
            raise RuntimeError("a bug met by one report")
        return real(e)

    monkeypatch.setattr(printer, "format_line", fragile)
    rig = Rig(tmp_path, ("idle_exit", "0"))
    for rel in ("/data/a.txt", "/data/bad.txt", "/data/b.txt"):
        rig.broker.put(report(rel), exchange="xr_alice")
    rig.flow.run()
    assert [line.split()[3] for line in rig.lines()] == ["/data/a.txt", "/data/b.txt"]
    assert len(rig.broker.acked) == 3
    assert any("bad.txt" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
