"""doc/admin-guide.rst, run: the same commands, as subprocesses, in a temporary HOME.

Switches are vhosts of the local broker (``<prefix>_sw1``, ``<prefix>_sw2``); users are
broker-wide, so every name gets the run's prefix.  The guide's sections 1 (apt) and 5's
web server are replaced by what the test machine has.  The daemons part is sections 5-7:
dd_sara, the report router, dd_subscribe, and dd_log showing every delivery.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator, List

import pytest

from sarra.admin.users import ManagementAPI
from tests.fixtures.require import require_tools
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.flow, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
API = "http://127.0.0.1:15672/api"


class Guide:
    def __init__(self, home: Path, prefix: str) -> None:
        self.home, self.p = home, prefix
        self.sw1, self.sw2 = f"{prefix}_sw1", f"{prefix}_sw2"
        self.env = dict(os.environ, HOME=str(home), PYTHONPATH=str(ROOT))
        self.env.update(XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"))
        self.cfg = home / ".config" / "sarra"
        self.users: List[str] = []

    def u(self, name: str) -> str:
        """``<random part of the prefix>-<name>``: user names cannot hold ``_`` or ``.``."""
        return f"{self.p.rsplit('_', 1)[-1]}-{name}"

    def run(self, *cmd: str, ok: bool = True, timeout: float = 90) -> subprocess.CompletedProcess:
        argv = list(cmd)
        if argv[0] == "dd":
            argv = [sys.executable, "-m", "sarra.service.supervisor", *argv[1:]]
        elif argv[0] == "dd_admin":
            argv = [sys.executable, str(ROOT / "bin" / "dd_admin"), *argv[1:]]
        elif argv[0].startswith("dd_"):
            argv = [sys.executable, "-m", "sarra.cli", *argv]
        r = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout)
        if ok:
            assert r.returncode == 0, f"{cmd}: {r.stdout}{r.stderr}"
        return r

    def url(self, user: str) -> str:
        return f"amqp://{self.u(user)}@localhost/{self.sw1}"


@pytest.fixture
def guide(rabbit, tmp_path: Path) -> Iterator[Guide]:
    g = Guide(tmp_path, f"t_admin_{uuid.uuid4().hex[:6]}")
    api = ManagementAPI(API, "guest", "guest")
    for vh in (g.sw1, g.sw2):  # no permissions for guest: the guide removes guest
        api.call("PUT", f"/vhosts/{vh}")
        api.call("DELETE", f"/permissions/{vh}/guest")  # the API gives them to the creator
    try:
        yield g
    finally:
        for user in g.users:
            api.delete_user(user)
        for vh in (g.sw1, g.sw2):
            api.call("DELETE", f"/vhosts/{vh}")


def set_up_switch(g: Guide, www: str = "/var/www/sarra", url: str = "http://sw1/") -> None:
    """Sections 2 to 4 of the guide."""
    root = g.u("root")
    g.users.append(root)
    g.run("rabbitmqctl", "-q", "add_user", root, "a-long-root-password")
    g.run("rabbitmqctl", "-q", "set_user_tags", root, "administrator")
    g.run("rabbitmqctl", "-q", "set_permissions", "-p", g.sw1, root, ".*", ".*", ".*")
    g.cfg.mkdir(parents=True)
    cred = g.cfg / "credentials.conf"
    cred.write_text(f"amqp://{root}:a-long-root-password@localhost/\n")
    cred.chmod(0o600)
    (g.cfg / "admin.conf").write_text(
        f"cluster {g.sw1}\nadmin amqp://{root}@localhost/{g.sw1}\nfeeder {g.url('feeder')}\n"
        f"post_base_dir {www}\npost_base_url {url}\nsource_hosts * 127.0.0.1\n"
    )
    for name, role in (("feeder", "feeder"), ("alice", "source"), ("bob", "subscriber")):
        g.users.append(g.u(name))
        g.run("dd_admin", "add-user", g.u(name), "--role", role)
    g.users.append(g.u("eve"))
    g.run("dd_admin", "add-user", g.u("eve"), "--role", "source")
    g.run("dd_admin", "declare")


def test_guide_sections_2_to_4_and_6_set_up_a_checked_switch_with_a_link(guide):
    g = guide
    set_up_switch(g)
    assert "broker matches" in g.run("dd_admin", "check").stdout
    listing = g.run("dd_admin", "list-users").stdout
    for name, role in (("alice", "source"), ("bob", "subscriber"), ("feeder", "feeder")):
        assert any(ln.split()[:2] == [g.u(name), role] for ln in listing.splitlines()), listing
    cred = (g.cfg / "credentials.conf").read_text()
    assert cred.count(f"@localhost/{g.sw1}") == 4
    assert oct((g.cfg / "credentials.conf").stat().st_mode & 0o777) == "0o600"

    sw2_url = f"amqp://{g.u('feeder2')}:pw2@localhost/{g.sw2}"
    out = g.run("dd_admin", "link", "sw2", sw2_url).stdout
    assert "a-long-root-password" not in out and "pw2" not in out
    assert (g.cfg / "sara" / "from_sw2.conf").exists()
    reports = (g.cfg / "shovel" / "reports.conf").read_text()
    assert f"report_route sw2 amqp://{g.u('feeder2')}@localhost/{g.sw2}" in reports
    assert "pw2" not in (g.cfg / "admin.conf").read_text()

    # Section 7, without dd_sara: alice's dd_log binds to her xr_ and finds nothing yet;
    # eve's refused bind on xr_alice is one clear error.
    log = g.run("dd_log", "-b", g.url("alice"), "--idle_exit", "1", "foreground")
    assert log.stdout == ""
    eve = g.run("dd_log", "-b", g.url("eve"), "--exchange", f"xr_{g.u('alice')}",
                "--idle_exit", "1", "foreground", ok=False)  # fmt: skip
    assert eve.returncode == 1 and "ACCESS_REFUSED" in eve.stderr

    # Drift: bob's permissions changed behind the admin's back.
    g.run("rabbitmqctl", "-q", "set_permissions", "-p", g.sw1, g.u("bob"), ".*", ".*", ".*")
    drift = g.run("dd_admin", "check", ok=False)
    assert drift.returncode == 1 and f"user {g.u('bob')} has feeder permissions" in drift.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_guide_sections_5_and_7_deliver_alices_file_and_dd_log_shows_every_delivery(guide):
    g, port = guide, free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        cwd=g.home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    started: List[tuple] = []
    try:
        set_up_switch(g, www=str(g.home / "www"), url=f"{base}/www/")
        (g.home / "www").mkdir()
        for program, conf in (("dd_sara", "ingest"), ("dd_shovel", "reports")):
            g.run(program, "start", conf)
            started.append((program, conf))
        sub = g.cfg / "subscribe" / "obs.conf"
        sub.parent.mkdir(parents=True)
        sub.write_text(f"broker {g.url('bob')}\ndirectory {g.home / 'bob'}\naccept .*\n")
        g.run("dd_subscribe", "start", "obs")
        started.append(("dd_subscribe", "obs"))
        g.run("dd_log", "-b", g.url("alice"), "--idle_exit", "1", "foreground")  # bind

        data = g.home / "alice" / "obs" / "today.csv"
        data.parent.mkdir(parents=True)
        data.write_text("t,v\n1,2\n")
        g.run("dd_post", "-pb", g.url("alice"), "-u", f"{base}/alice/",
              "-pbd", str(g.home / "alice"), str(data))  # fmt: skip
        wait_for((g.home / "bob" / "today.csv").exists, 60, "bob to get the file", every=0.3)
        assert (g.home / "bob" / "today.csv").read_text() == data.read_text()

        deadline, lines = time.monotonic() + 60, [""] * 4
        while time.monotonic() < deadline and f"{g.u('bob')}@" not in lines[3]:
            g.run("dd_log", "-b", g.url("alice"), "--idle_exit", "3", "--keep_journal",
                  "foreground")  # fmt: skip
            out = g.run("dd_log", "-b", g.url("alice"), "--journal", "--summary", "foreground")
            lines = out.stdout.splitlines() + [""] * 4
        # ingest by the switch's dd_sara (as feeder), then bob's download of the copy the
        # switch stores under its own tree: one file, followed by its checksum
        assert lines[0].startswith("obs/today.csv (source "), lines
        assert lines[1].startswith("  also as: ") and lines[1].endswith("obs/today.csv"), lines
        assert lines[2] == f"  switches: {g.sw1}", lines
        assert lines[3].startswith(f"  received by: {g.u('feeder')}@"), lines
        assert f"{g.u('bob')}@" in lines[3], lines
        eve = g.run("dd_log", "-b", g.url("eve"), "--idle_exit", "2", "foreground")
        assert eve.stdout == ""
        monitor_as_in_section_9(g)
    finally:
        for program, conf in reversed(started):
            g.run(program, "stop", conf, ok=False)
        web.terminate()
        web.wait(timeout=10)


def section_9_blocks() -> List[str]:
    """The literal blocks of the guide's section 9 (Monitoring a switch), in order."""
    text = (ROOT / "doc" / "admin-guide.rst").read_text()
    section = text.split("9. Monitoring a switch", 1)[1].split("\n10. ", 1)[0]
    blocks, lines = [], section.splitlines()
    for i, line in enumerate(lines):
        if line.endswith("::"):
            body = []
            for nxt in lines[i + 2 :]:
                if nxt and not nxt.startswith("    "):
                    break
                body.append(nxt[4:])
            blocks.append("\n".join(body).strip())
    return blocks


def monitor_as_in_section_9(g: Guide) -> None:
    """Section 9 on the running switch: dd metrics counts bob's file; the guide's
    Prometheus scrape config is valid; its Nagios command, expanded as Nagios would
    (``$USER1$``, ``$ARGn$``), says OK."""
    served, scrape, nagios = section_9_blocks()
    assert served.startswith("dd metrics --port ")

    def bobs_files() -> bool:
        out = g.run("dd", "metrics").stdout
        return 'sarra_files_total{config="obs",instance="1",role="subscribe"} 1.0' in out

    wait_for(bobs_files, 60, "dd metrics to count bob's file", every=1.0)
    require_tools("promtool")
    (g.home / "prometheus.yml").write_text(scrape + "\n")
    checked = g.run("promtool", "check", "config", str(g.home / "prometheus.yml"), ok=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    plugins = g.home / "plugins"
    plugins.mkdir()
    wrapper = plugins / "check_sarra"
    wrapper.write_text(
        f"#!/bin/sh\nexec {sys.executable} -c "
        "'from sarra.service.supervisor import check_entry; check_entry()' \"$@\"\n"
    )
    wrapper.chmod(0o755)
    line = next(ln.split(None, 1)[1] for ln in nagios.splitlines() if "command_line" in ln)
    args = next(ln.split()[1] for ln in nagios.splitlines() if "check_command" in ln).split("!")
    line = line.replace("$USER1$", str(plugins))
    for n, value in enumerate(args[1:], 1):
        line = line.replace(f"$ARG{n}$", value)
    assert "$" not in line, line
    got = g.run(*shlex.split(line), ok=False)
    assert got.returncode == 0 and got.stdout.startswith("SARRA OK - "), got.stdout + got.stderr
    assert "'subscribe/obs running'=1;;;0;1" in got.stdout
