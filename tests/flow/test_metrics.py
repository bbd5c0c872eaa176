"""Monitoring a running flow (issue 19), with the real daemons started by ``dd start``:
500 files through dd_sara and dd_subscribe; ``dd metrics`` scraped over loopback and by a
real Prometheus server show 500 files for each; ``dd check`` is OK, CRITICAL once the
subscriber is killed, OK again after ``dd sanity``; ``dd status --watch`` draws a frame.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from typing import Dict, List

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.prometheus import prometheus  # noqa: F401
from tests.fixtures.waiting import wait_for
from tests.flow.conftest import FlowEnv, count_files, make_small_files
from tests.unit.test_monitoring import dashboard_queries

pytestmark = [pytest.mark.flow, pytest.mark.integration]
FILES = 500


def dd(fe: FlowEnv, *args: str, check: bool = False, timeout: float = 120):
    argv = [sys.executable, "-m", "sarra.service.supervisor", *args]
    got = subprocess.run(
        argv, env=fe.env, cwd=fe.root, capture_output=True, text=True, timeout=timeout
    )
    if check and got.returncode != 0:
        raise AssertionError(f"dd {' '.join(args)}: {got.returncode}\n{got.stdout}{got.stderr}")
    return got


def scrape(url: str) -> Dict[str, List]:
    with urllib.request.urlopen(url, timeout=30) as got:
        text = got.read().decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def per_role(fams: Dict[str, List], name: str, suffix: str = "_total") -> Dict[str, float]:
    """``{role: value summed over configs and instances}`` of one metric's samples."""
    out: Dict[str, float] = {}
    for s in fams.get(name, []):
        if s.name == name + suffix:
            out[s.labels["role"]] = out.get(s.labels["role"], 0.0) + s.value
    return out


def switch_configs(fe: FlowEnv, www, dst) -> None:
    pump = www / "pump"
    pump.mkdir()
    fe.config(
        "sara", "pump",
        f"exchange xs_guest\npost_broker {fe.broker}\npost_exchange xpublic\n"
        f"post_base_dir {pump}\npost_base_url {{URL}}/pump/\ndirectory {pump}\nmirror True\n"
        "declare source guest\nsource_hosts * 127.0.0.1\nmetrics_interval 1\n",
    )  # fmt: skip
    fe.config(
        "subscribe", "sub",
        f"exchange xpublic\ndirectory {dst}\nmirror True\naccept .*\nmetrics_interval 1\n",
    )  # fmt: skip


def test_counts_of_a_500_file_flow_reach_prometheus_and_dd_check_sees_a_killed_instance(
    flowenv,
    http_server,
    prometheus,  # noqa: F811
):
    fe, www = flowenv, http_server.root
    src, dst = www / "m", fe.root / "dst"
    make_small_files(src, FILES, size=256)
    switch_configs(fe, www, dst)
    conf = fe.config_dir / "sara" / "pump.conf"
    conf.write_text(conf.read_text().replace("{URL}", http_server.url))
    dd(fe, "declare", check=True)
    dd(fe, "start", check=True)
    exporter = subprocess.Popen(
        [sys.executable, "-m", "sarra.service.supervisor", "metrics", "--port", "0"],
        env=fe.env, cwd=fe.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        first = exporter.stdout.readline()  # type: ignore[union-attr]
        assert first.startswith("serving metrics on http://127.0.0.1:"), first
        endpoint = first.split()[-1]
        fe.post("-u", http_server.url, "-pbd", str(www), str(src))
        assert wait_for(lambda: count_files(dst) >= FILES, 180, fail=False), count_files(dst)

        # the endpoint, scraped over loopback: the counts of the files delivered
        want = {"sara": float(FILES), "subscribe": float(FILES)}
        wait_for(lambda: per_role(scrape(endpoint), "sarra_files") == want, 60, "500 files each")
        fams = scrape(endpoint)
        assert per_role(fams, "sarra_notices_accepted") == want
        lag = per_role(fams, "sarra_lag_seconds", "_count")
        assert lag["sara"] >= FILES and lag["subscribe"] >= FILES, lag
        assert per_role(fams, "sarra_broker_connected", "") == {"sara": 1.0, "subscribe": 1.0}
        assert per_role(fams, "sarra_instance_up", "") == {"sara": 1.0, "subscribe": 1.0}

        # a real Prometheus scrapes it; its HTTP API returns the series
        prom = prometheus([endpoint.split("/")[2]])
        wait_for(prom.targets_up, 60, "prometheus's scrape of dd metrics to succeed")

        def files() -> Dict[str, str]:
            return {r["metric"]["role"]: r["value"][1] for r in prom.query("sarra_files_total")}

        assert wait_for(lambda: files() == {"sara": "500", "subscribe": "500"}, 60, fail=False), (
            files()
        )
        filled = prom.query('sum by (role) (sarra_lag_seconds_bucket{le="+Inf"})')
        assert {r["metric"]["role"]: float(r["value"][1]) >= FILES for r in filled} == {
            "sara": True,
            "subscribe": True,
        }, filled

        for q in dashboard_queries():  # the sample Grafana dashboard's, all valid PromQL
            prom.query(q)

        # the Nagios check: OK; the subscriber killed: CRITICAL; after dd sanity: OK
        ok = dd(fe, "check")
        assert ok.returncode == 0 and ok.stdout.startswith("SARRA OK - 2 configs: 2 running"), (
            ok.stdout + ok.stderr
        )
        assert "'subscribe/sub running'=1;;;0;1" in ok.stdout
        pid = int(fe.state_dir("subscribe", "sub").joinpath("i01.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 30, "the killed instance to go")
        down = dd(fe, "check")
        assert down.returncode == 2, down.stdout + down.stderr
        assert down.stdout.startswith("SARRA CRITICAL - subscribe/sub dead (0/1 running)")
        dd(fe, "sanity", check=True)
        again = subprocess.run(
            [
                sys.executable,
                "-c",
                "from sarra.service.supervisor import check_entry; check_entry()",
                "subscribe",
                "sub",
            ],
            env=fe.env,
            cwd=fe.root,
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip  (check_sarra, the alias, on the restarted config)
        assert again.returncode == 0 and again.stdout.startswith("SARRA OK"), again.stdout

        frame = dd(fe, "status", "--watch", "--count", "1", "--interval", "0.5")
        assert frame.returncode == 0, frame.stderr
        lines = frame.stdout.replace("\x1b[K", "").replace("\x1b[J", "").split("\x1b[H")[-1]
        rows = [ln.split() for ln in lines.splitlines()]
        assert ["sara", "pump", "1/1", "running"] in [r[:4] for r in rows], lines
        assert ["subscribe", "sub", "1/1", "running"] in [r[:4] for r in rows], lines
        assert max(len(ln) for ln in lines.splitlines()) <= 80
    finally:
        exporter.terminate()
        stopped = exporter.wait(30)
        dd(fe, "stop")
    assert stopped == 0
    for name in ("sara_pump_01.log", "subscribe_sub_01.log"):
        text = (fe.log_dir / name).read_text()
        assert "Traceback" not in text, text[-3000:]
