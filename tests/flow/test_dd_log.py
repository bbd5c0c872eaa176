"""dd_log end to end: the real command against the local broker, users made by dd_admin.

The reports here are hand-made (published by the switch's feeder to ``xr_alice``). The
whole chain (dd_post -> dd_sara -> dd_subscribe, report router, dd_log showing every
delivery) is in ``test_admin_guide.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from sarra.admin.users import ManagementAPI
from sarra.broker.connection import Outgoing
from tests.fixtures.waiting import wait_for
from tests.integration.test_permissions import Switch

pytestmark = [pytest.mark.flow, pytest.mark.integration]
BODY = "20261128220000.5 http://sw1.example.com/ /data/alice/{f} {code} {host} {user} 0.250000"


@pytest.fixture
def switch(rabbit, tmp_path: Path) -> Iterator[Switch]:
    vhost = f"t_admin_{uuid.uuid4().hex[:8]}"
    rabbit.add_vhost(vhost)
    sw = Switch(tmp_path, vhost)
    try:
        sw.add("feeder", "feeder")
        sw.alice = sw.add("alice", "source")
        assert sw.admin("declare") == 0
        conf = sw.paths.config_dir / "log" / "mine.conf"
        conf.parent.mkdir(parents=True)
        conf.write_text(f"broker amqp://{sw.alice}@localhost/{vhost}\nkeep_journal on\n")
        yield sw
    finally:
        api = ManagementAPI("http://127.0.0.1:15672/api", "guest", "guest")
        for user in sw.users:
            api.delete_user(user)
        api.call("DELETE", f"/vhosts/{vhost}")


def dd_log(sw: Switch, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "sarra.cli", "dd_log", "--idle_exit", "2", *argv]
    return subprocess.run(cmd, env=sw.env, capture_output=True, text=True, timeout=timeout)


def publish_reports(sw: Switch, *reports: tuple) -> None:
    feeder = sw.broker(sw.name("feeder"))
    for f, code, host, user, text in reports:
        headers = {"source": sw.alice, "from_cluster": "sw1", "message": text}
        headers["parts"] = "1,3000000,1,0,0"
        body = BODY.format(f=f, code=code, host=host, user=user)
        out = Outgoing(f"xr_{sw.alice}", "v02.report.data.alice", headers, body.encode())
        assert feeder.publish(out) == []
    feeder.close()


DELIVERIES = (
    ("a.txt", 201, "sw1.example.com", "feeder", "Published"),
    ("a.txt", 201, "h1.example.com", "bob", "Downloaded"),
    ("a.txt", 499, "h2.example.com", "carol", "http download failed"),
    ("b.txt", 201, "h1.example.com", "bob", "Downloaded"),
)


def test_journal_answers_where_did_my_file_go_after_the_fact(switch):
    first = dd_log(switch, "foreground", "mine")  # declares and binds the queue
    assert first.returncode == 0, first.stderr
    publish_reports(switch, *DELIVERIES)
    live = dd_log(switch, "foreground", "mine")
    assert live.returncode == 0, live.stderr
    assert len(live.stdout.splitlines()) == 4
    assert "499 /data/alice/a.txt carol@h2.example.com 2.9 MiB 250.0ms" in live.stdout

    summary = dd_log(switch, "--journal", "--summary", "--path_match", "a\\.txt$",
                     "foreground", "mine")  # fmt: skip
    assert summary.returncode == 0, summary.stderr
    assert summary.stdout.splitlines() == [
        f"/data/alice/a.txt (source {switch.alice}, 3 reports)",
        "  switches: sw1, sw1.example.com",
        "  received by: bob@h1.example.com",
        "  FAILED at carol@h2.example.com: 499 http download failed",
    ]
    failures = dd_log(switch, "--journal", "--code", "4xx", "foreground", "mine")
    assert [ln.split()[3] for ln in failures.stdout.splitlines()] == ["/data/alice/a.txt"]
    by_bob = dd_log(switch, "--journal", "--consumer_match", "^bob@", "foreground", "mine")
    assert len(by_bob.stdout.splitlines()) == 2


def test_dd_log_daemon_keeps_the_journal_while_running(switch):
    conf = switch.paths.config_dir / "log" / "mine.conf"
    conf.write_text(conf.read_text() + "follow on\n")
    assert dd_log(switch, "start", "mine").returncode == 0
    try:
        journal = switch.root / "cache/sarra/log/mine/journal.jsonl"
        api = ManagementAPI("http://127.0.0.1:15672/api", "guest", "guest")
        wait_for(lambda: api.call("GET", f"/queues/{switch.vhost}"), 30, "dd_log's queue")
        publish_reports(switch, DELIVERIES[1])
        wait_for(journal.exists, 30, "the journal", every=0.3)
        [line] = journal.read_text().splitlines()
        assert json.loads(line)["user"] == "bob"
        assert dd_log(switch, "status", "mine").returncode == 0
    finally:
        assert dd_log(switch, "stop", "mine").returncode == 0


def test_a_closed_stdout_ends_dd_log_quietly_and_its_reports_stay_queued(switch):
    assert dd_log(switch, "declare", "mine").returncode == 0  # the queue, bound
    publish_reports(switch, *DELIVERIES)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before dd_log writes anything (| head)
    cmd = [sys.executable, "-m", "sarra.cli", "dd_log", "--follow", "foreground", "mine"]
    try:
        proc = subprocess.Popen(cmd, env=switch.env, stdout=write_end, stderr=subprocess.PIPE)
    finally:
        os.close(write_end)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert b"Traceback" not in err and b"Exception ignored" not in err, err
    again = dd_log(switch, "foreground", "mine")
    assert again.returncode == 0, again.stderr
    assert len(again.stdout.splitlines()) == 4  # none was acknowledged unseen
