"""``dd metrics``, ``dd check`` and ``dd status --watch`` over status rows made in memory
(issue 19): the exposition parsed back with prometheus_client's own parser, the check's
states, exit statuses and perfdata, the live view's width."""

from __future__ import annotations

import io
import re
import urllib.request
from pathlib import Path
from typing import Dict, List

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sarra.flow.stats import LAG_BUCKETS, Stats
from sarra.service import check, live, metrics
from sarra.service.health import ConfigStatus, InstanceFacts, Target, instance_facts


def saved(tmp_path: Path, n: int = 1, **counts) -> Dict:
    """A stats.NN.json as an instance saves it: two saves, 10 s apart."""
    s = Stats(pid=100 + n, started=1000.0)
    f = tmp_path / f"stats.{n:02d}.json"
    s.save(f, 2000.0)
    for key, value in counts.items():
        setattr(s, key, value)
    for lag in (0.3, 4.0, 45.0):
        s.lag.observe(lag)
    s.save(f, 2010.0)
    facts = instance_facts(tmp_path, [n], [n])
    return facts[0].saved


def row(
    config: str = "amis",
    state: str = "running",
    instances=(),
    queue=None,
    retry: int = 0,
    program: str = "dd_subscribe",
    error: str = "",
    wanted: bool = True,
) -> ConfigStatus:
    expected, running = {"running": (1, 1), "dead": (1, 0), "partial": (2, 1)}.get(state, (1, 0))
    return ConfigStatus(
        Target(program, config),
        expected=expected,
        running=running,
        wanted=wanted if state != "stopped" else False,
        hung=(1,) if state == "hung" else (),
        queue=queue,
        retry=retry,
        instances=tuple(instances),
        error=error,
        interval=(50, 5000, 10.0),
    )


def families(text: str) -> Dict[str, List]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


# ---------------------------------------------------------------- exposition
def test_exposition_parses_back_with_the_counters_of_each_instance(tmp_path):
    data = saved(tmp_path, ok=40, files=38, bytes=4096, received=42,
                 rejected_by={"duplicate": 2}, failed_by={"404": 3})  # fmt: skip
    r = row(instances=[InstanceFacts(1, True, 5, data)], queue=7)
    fams = families(metrics.exposition(lambda: [r]))
    labels = {"role": "subscribe", "config": "amis", "instance": "1"}

    def value(name: str, **extra) -> float:
        want = dict(labels, **extra)
        (got,) = [
            s.value
            for s in fams[name]
            if s.labels == want
            and s.name.endswith("_total")
            or s.labels == want
            and name in ("sarra_instance_up", "sarra_retry_backlog")
        ]
        return got  # fmt: skip

    assert value("sarra_files") == 38
    assert value("sarra_notices_accepted") == 40
    assert value("sarra_notices_received") == 42
    assert value("sarra_transferred_bytes") == 4096
    assert value("sarra_notices_rejected", reason="duplicate") == 2
    assert value("sarra_notices_failed", code="404") == 3
    assert value("sarra_instance_up") == 1 and value("sarra_retry_backlog") == 5
    (queue,) = fams["sarra_queue_messages"]
    assert queue.labels == {"role": "subscribe", "config": "amis"} and queue.value == 7


def test_the_lag_histogram_is_cumulative_with_fixed_buckets(tmp_path):
    data = saved(tmp_path)
    fams = families(metrics.exposition(lambda: [row(instances=[InstanceFacts(1, True, 0, data)])]))
    samples = fams["sarra_lag_seconds"]
    buckets = [(s.labels["le"], s.value) for s in samples if s.name.endswith("_bucket")]
    assert [float(le) for le, _ in buckets[:-1]] == list(LAG_BUCKETS)
    assert buckets[-1] == ("+Inf", 3.0)
    values = [v for _, v in buckets]
    assert values == sorted(values)  # cumulative
    assert dict(buckets)["0.5"] == 1.0 and dict(buckets)["5.0"] == 2.0
    (total,) = [s.value for s in samples if s.name == "sarra_lag_seconds_sum"]
    assert total == pytest.approx(49.3)


def test_metric_names_follow_the_prometheus_conventions(tmp_path):
    data = saved(tmp_path, failed_by={"503": 1})
    text = metrics.exposition(lambda: [row(instances=[InstanceFacts(1, True, 0, data)])])
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    for name, kind in types.items():
        assert re.fullmatch(r"sarra_[a-z_]+", name), name
        assert (kind == "counter") == name.endswith("_total"), (name, kind)
        assert "bytes" not in name or name.endswith(("_bytes", "_bytes_total")), name
    assert types["sarra_lag_seconds"] == "histogram"


def test_a_dead_instance_is_down_with_its_last_counters_and_a_broken_config_is_flagged(
    tmp_path,
):
    data = saved(tmp_path, files=9)
    dead = row(state="dead", instances=[InstanceFacts(1, False, 0, data)])
    broken = row(config="bad", error="bad.conf:1: unknown option 'x'")
    fams = families(metrics.exposition(lambda: [dead, broken]))
    assert [s.value for s in fams["sarra_instance_up"]] == [0.0]
    assert [s.value for s in fams["sarra_files"] if s.name == "sarra_files_total"] == [9.0]
    got = {s.labels["config"]: s.value for s in fams["sarra_config_broken"]}
    assert got == {"amis": 0.0, "bad": 1.0}


@pytest.mark.parametrize(
    "damage",
    [{"lag": {"counts": [1, 2]}}, {"lag": "x"}, {"rejected_by": [1]}, {"broker": "up"},
     {"ok": "many"}, {"failed_by": {"404": "x"}}],
)  # fmt: skip
def test_a_stats_file_of_another_shape_never_breaks_a_scrape(tmp_path, damage):
    data = saved(tmp_path)
    data["now"].update(damage)
    text = metrics.exposition(lambda: [row(instances=[InstanceFacts(1, True, 0, data)])])
    assert "sarra_instance_up" in {f.name for f in text_string_to_metric_families(text)}


def test_the_endpoint_answers_a_scrape_on_loopback(tmp_path):
    data = saved(tmp_path, files=3)
    server = metrics.make_endpoint(lambda: [row(instances=[InstanceFacts(1, True, 0, data)])])
    import threading

    t = threading.Thread(target=server.handle_request, daemon=True)
    t.start()
    try:
        port = server.server_port
        assert server.server_address[0] == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as got:
            assert got.headers["Content-Type"].startswith("text/plain")
            text = got.read().decode()
    finally:
        t.join(10)
        server.server_close()
    assert 'sarra_files_total{config="amis",instance="1",role="subscribe"} 3.0' in text


DASHBOARD = Path(__file__).resolve().parents[2] / "etc" / "grafana-sarra.json"


def dashboard_queries() -> List[str]:
    """Every PromQL query of the sample Grafana dashboard, its variables filled in."""
    import json

    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    return [
        e.replace("$__rate_interval", "1m").replace("$role", ".*").replace("$config", ".*")
        for e in exprs
    ]


def test_the_grafana_dashboard_queries_only_metrics_dd_metrics_exposes(tmp_path):
    data = saved(tmp_path, failed_by={"503": 1}, rejected_by={"duplicate": 1})
    facts = [InstanceFacts(1, True, 0, dict(data, now=dict(data["now"], last_activity=5.0)))]
    facts[0].saved["now"]["broker"] = {"connected": True, "reconnects": 0}
    text = metrics.exposition(lambda: [row(instances=facts, queue=1)])
    exposed = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    queries = dashboard_queries()
    assert len(queries) >= 10
    for q in queries:
        used = set(re.findall(r"\bsarra_[a-z_]+", q))
        assert used and used <= exposed, (q, used - exposed)


# ---------------------------------------------------------------- the Nagios check
PERF = re.compile(r"^'?[^'=]+'?=-?[\d.]+[a-zA-Z%]*(;[^; ]*){0,4}$")


def plugin(rows, **th) -> tuple:
    return check.evaluate(rows, check.Thresholds(**th))


def test_all_running_is_ok_with_one_line_and_perfdata_after_the_bar():
    code, text = plugin([row(), row("b", "stopped")])
    assert code == 0
    assert "\n" not in text
    status, perf = text.split(" | ")
    assert status == "SARRA OK - 2 configs: 1 running, 1 stopped"
    for item in re.findall(r"'[^']*'=\S+|\S+=\S+", perf):
        assert PERF.match(item), item
    assert "'subscribe/amis running'=1;;;0;1" in perf
    assert "'subscribe/amis backlog'=0;100;1000;0" in perf


@pytest.mark.parametrize("state", ["dead", "partial", "hung"])
def test_a_started_config_down_is_critical(state):
    code, text = plugin([row(), row("down", state)])
    assert code == 2 and text.startswith("SARRA CRITICAL - subscribe/down " + state), text


def test_a_stopped_config_is_ok_and_a_broken_one_warns_unless_started():
    assert plugin([row("off", "stopped")])[0] == 0
    code, text = plugin([row("bad", "broken", error="bad.conf:1: unknown option", wanted=False)])
    assert code == 1 and "subscribe/bad broken: bad.conf:1" in text
    assert plugin([row("bad", "broken", error="x", wanted=True)])[0] == 2


@pytest.mark.parametrize(
    "retry, queue, th, code",
    [
        (5, 10, {}, 0),
        (150, 10, {}, 1),
        (5000, 10, {}, 2),
        (5, 20000, {}, 1),
        (5, 200000, {}, 2),
        (5, 50, {"queue_warning": "40", "queue_critical": "60"}, 1),
        (5, 50, {"queue_warning": "@40:60"}, 1),  # the plugins' "inside" range
        (150, 10, {"backlog_warning": "", "backlog_critical": ""}, 0),  # no threshold
    ],
)
def test_backlog_and_queue_thresholds_give_the_state(retry, queue, th, code):
    got, text = plugin([row(queue=queue, retry=retry)], **th)
    assert got == code, text


def test_lag_over_its_threshold_warns_then_goes_critical(tmp_path):
    s = Stats(pid=5, started=1.0)
    f = tmp_path / "stats.01.json"
    s.save(f, 10.0)
    for _ in range(3):
        s.lag.observe(400.0)
    s.save(f, 20.0)
    (facts,) = instance_facts(tmp_path, [1], [1])
    r = row(instances=[facts])
    assert r.lag == pytest.approx(400.0)
    assert plugin([r])[0] == 1
    code, text = plugin([r], lag_critical="350")
    assert code == 2 and "subscribe/amis lag 400s (outside range 0:350)" in text
    assert "'subscribe/amis lag'=400.0s;300;350;0" in text


def test_no_configuration_is_unknown():
    code, text = plugin([])
    assert code == 3 and text == "SARRA UNKNOWN - no configurations"


def test_verbose_adds_one_line_per_problem():
    code, text = check.evaluate(
        [row("a", "dead"), row("b", "hung"), row()], check.Thresholds(), verbose=1
    )
    lines = text.splitlines()
    assert code == 2 and len(lines) == 3 and "|" in lines[0]
    assert all(line.startswith("critical: subscribe/") for line in lines[1:]), lines


def test_a_config_name_cannot_break_the_output_or_the_perfdata():
    code, text = plugin([row("we'ird=na|me")])
    assert text.count("|") == 1 and code == 0
    assert "'subscribe/we_ird_na_me running'=1" in text


@pytest.mark.parametrize(
    "argv, code, start",
    [
        (["--bogus"], 3, "SARRA UNKNOWN - dd check: unrecognized arguments"),
        (["--lag-warning", "soon"], 3, "SARRA UNKNOWN - bad threshold"),
        (["--lag-warning", "20:10"], 3, "SARRA UNKNOWN - bad threshold"),
        ([], 0, "SARRA OK"),
    ],
)
def test_the_command_line_is_unknown_on_bad_arguments(argv, code, start, capsys):
    lines: List[str] = []
    try:
        got = check.main(argv, lambda ns: [row()], out=lines.append)
    except SystemExit as e:
        got = int(e.code)
        lines.append(capsys.readouterr().out)
    assert got == code and lines[0].startswith(start), lines


def test_an_error_while_probing_is_unknown():
    def rows(ns):
        raise OSError("pidfile unreadable")

    lines: List[str] = []
    assert check.main([], rows, out=lines.append) == 3
    assert lines == ["SARRA UNKNOWN - OSError: pidfile unreadable"]


# ---------------------------------------------------------------- the live view
def test_every_line_of_a_frame_fits_80_columns(tmp_path):
    data = saved(tmp_path, bytes=123_456_789)
    rows = [
        row(
            "a-config-with-a-very-long-name-indeed",
            instances=[InstanceFacts(1, True, 0, data)],
            queue=123_456_789,
            retry=99_999,
        ),  # fmt: skip
        row("bad", error="x" * 300),
        row("d", "dead"),
    ]
    lines = live.frame(rows, 0.0, width=80)
    assert max(len(line) for line in lines) <= 80
    assert lines[1].split() == ["ROLE", "CONFIG", "INST", "STATE", "MSG/S", "BYTES/S",
                                "LAG", "QUEUE", "RETRY"]  # fmt: skip
    first = lines[2].split()
    assert first[0] == "subscribe" and first[3] == "running"
    assert first[4] == "5" and first[5] == "500B" and first[7] == "123M"
    wide = live.frame(rows, 0.0, width=120)
    assert "a-config-with-a-very-long-name-indeed" in wide[2]


def test_frames_are_drawn_over_each_other_from_the_top_left_corner():
    out = io.StringIO()
    drawn = live.watch(lambda: [row()], out, 0.0, stop=lambda s: False, count=3)
    assert drawn == 3
    frames = out.getvalue().split(live.HOME)[1:]
    assert len(frames) == 3
    assert all(f.endswith(live.CLEAR_BELOW) for f in frames)
    assert all(line.endswith(live.CLEAR_EOL) for line in frames[0].splitlines()[:-1])


@pytest.mark.parametrize(
    "n, text", [(None, "-"), (0, "0"), (7, "7"), (2.5, "2.5"), (1234, "1.2k"), (56789, "57k"),
                (3.2e6, "3.2M"), (5e9, "5.0G")],
)  # fmt: skip
def test_short_numbers_fit_their_column(n, text):
    assert live.short_number(n) == text
