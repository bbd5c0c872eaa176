"""dd_log's view of reports: entries from notices, filters, lines, summaries, journal."""

from __future__ import annotations

import calendar
import re

import pytest

from sarra.core import message
from sarra.report import view as rv

T0 = calendar.timegm((2026, 11, 28, 22, 0, 0))


def report(user="bob", host="h1", code=201, text="Downloaded", relpath="/data/a b.txt", **hdr):
    headers = {"source": "alice", "from_cluster": "sw1", "parts": "1,1536,1,0,0", **hdr}
    post = message.new_post("http://sw1/", relpath, headers, pubtime="20261128215959.5")
    return message.make_report(post, code, text, host, user, 0.0034)


def entry(received=T0, **kw):
    return rv.entry_from_notice(report(**kw), received)


def test_entry_takes_consumer_size_and_origin_from_the_report():
    e = entry()
    assert (e.consumer, e.code, e.size, e.source, e.from_cluster) == (
        "bob@h1",
        201,
        1536,
        "alice",
        "sw1",
    )
    assert e.relpath == "/data/a b.txt" and e.message == "Downloaded"


def test_entry_survives_the_wire_round_trip():
    enc = message.encode(report())
    notice = message.decode(enc.topic, enc.headers, enc.body)
    assert rv.entry_from_notice(notice, T0) == entry()


def test_size_is_not_trusted_on_removal_reports():
    e = entry(sum="R,0")
    assert e.size is None


def test_post_is_not_an_entry():
    post = message.new_post("http://sw1/", "/a.txt", {})
    with pytest.raises(message.MessageError):
        rv.entry_from_notice(post, T0)


def test_format_line_shows_time_code_file_consumer_human_size_and_duration():
    line = rv.format_line(entry())
    assert line == "2026-11-28 22:00:00 201 /data/a b.txt bob@h1 1.5 KiB 3.4ms Downloaded"


@pytest.mark.parametrize(
    "seconds,text", [(0.0034, "3.4ms"), (2.5, "2.5s"), (125, "2m05s"), (7300, "2h01m")]
)
def test_human_duration(seconds, text):
    assert rv.human_duration(seconds) == text


@pytest.mark.parametrize(
    "code,patterns,ok",
    [(201, (), True), (201, ("2xx",), True), (201, ("4",), False), (499, ("201", "49x"), True)],
)
def test_code_patterns_accept_exact_codes_classes_and_prefixes(code, patterns, ok):
    assert rv.code_matches(code, patterns) is ok


def test_filter_by_path_consumer_code_and_time_range():
    e = entry()
    assert rv.Filter(path=re.compile(r"a b"))(e)
    assert not rv.Filter(path=re.compile(r"^/other"))(e)
    assert not rv.Filter(consumer=re.compile("carol"))(e)
    assert not rv.Filter(codes=("4xx",))(e)
    assert rv.Filter(since=T0 - 1, until=T0 + 1)(e)
    assert not rv.Filter(since=T0 + 1)(e)


def test_parse_when_relative_compact_and_iso():
    assert rv.parse_when("2h", T0) == T0 - 7200
    assert rv.parse_when("20261128220000", 0) == T0
    assert rv.parse_when("2026-11-28T22:00", 0) == T0
    with pytest.raises(ValueError, match="'yesterday'"):
        rv.parse_when("yesterday", T0)


def test_summary_lists_switches_receivers_and_failures_not_recovered():
    entries = [
        entry(T0, user="feeder", host="sw1", text="Published"),
        entry(T0 + 1, user="feeder", host="sw2", text="Published"),
        entry(T0 + 2, user="bob", host="h1"),
        entry(T0 + 3, user="carol", host="h2", code=499, text="http download failed"),
        entry(T0 + 4, user="dan", host="h3", code=499, text="http download failed"),
        entry(T0 + 5, user="dan", host="h3"),
    ]
    [s] = rv.summarize(entries)
    assert s.switches == ["sw1", "sw2"]
    assert s.received_by == ["bob@h1", "dan@h3"]
    assert list(s.failures) == ["carol@h2"]
    text = "\n".join(rv.format_summary(s))
    assert "FAILED at carol@h2: 499 http download failed" in text
    assert text.startswith("/data/a b.txt (source alice, 6 reports)")


def test_journal_appends_and_reads_back_skipping_bad_lines(tmp_path, caplog):
    j = rv.Journal(tmp_path / "log" / "journal.jsonl")
    assert list(j.read()) == []
    j.append([entry(T0)])
    with open(j.path, "a") as f:
        f.write("not json\n")
    j.append([entry(T0 + 1, user="carol")])
    got = list(j.read())
    assert [e.user for e in got] == ["bob", "carol"] and got[0] == entry(T0)
    assert "journal.jsonl:2" in caplog.text


def test_summary_follows_a_file_across_hops_by_checksum_and_name():
    sums = {"sum": "d,746308829575e17c3331bbcb00c0898b"}
    entries = [
        entry(T0, user="feeder", host="sw1", relpath="/obs/a.csv", **sums),
        entry(T0 + 1, user="bob", host="h1", relpath="/20261128/alice/obs/a.csv", **sums),
        entry(T0 + 2, user="bob", host="h1", relpath="/obs/other.csv", **sums),
    ]
    first, other = rv.summarize(entries)
    assert first.received_by == ["feeder@sw1", "bob@h1"]
    assert rv.format_summary(first)[1] == "  also as: /20261128/alice/obs/a.csv"
    assert other.relpath == "/obs/other.csv"


@pytest.mark.parametrize("field", ["text", "user", "relpath"])
def test_lines_and_summaries_escape_what_the_report_publisher_wrote(field):
    """A report's fields reach the terminal: an ESC sequence or a newline shows as text."""
    hostile = {"text": "ok\x1b[2J\nforged", "user": "b\x1b]0;x\x07ob", "relpath": "/a\x9b.txt"}
    e = rv.entry_from_notice(report(**{field: hostile[field]}), T0)
    shown = [rv.format_line(e), *rv.format_summary(rv.summarize([e])[0])]
    for text in shown:
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text), text
    assert any("\\x1b" in t or "\\x9b" in t for t in shown)


@pytest.mark.parametrize("elapsed", ["inf", "nan", "1e999", "-5e400"])
@pytest.mark.parametrize("parts", ["1,1536,1,0,0", "1," + "9" * 320 + ",1,0,0"])
def test_a_report_with_absurd_numbers_is_still_shown(elapsed, parts):
    """Infinite durations and sizes no file can have used to stop dd_log (a float
    overflow in the line), at every run, on the same queued report."""
    body = f"20261128215959.5 http://sw1/ /data/a.txt 201 h1 bob {elapsed}".encode()
    notice = message.decode("v02.report.data", {"parts": parts}, body)
    e = rv.entry_from_notice(notice, T0)
    assert rv.format_line(e).startswith("2026-11-28 22:00:00 201 /data/a.txt bob@h1 ")
    assert rv.format_summary(rv.summarize([e])[0])
    assert rv.Entry.from_json(e.to_json()) == e


def test_a_journal_line_with_an_infinite_duration_or_huge_size_is_still_shown():
    e = rv.Entry(T0, "/a", 201, "ok", "bob", "h1", float("inf"), size=10**400)
    assert rv.format_line(e) == "2026-11-28 22:00:00 201 /a bob@h1 - - ok"
