"""Acceptance of issue 6 against the real broker: users made by dd_admin, refusals for eve.

alice (source), bob (subscriber) and eve (source) are created by ``sarra.admin.command``
in a vhost of their own; the switch's admin is guest (full rights on the test vhost).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from sarra.admin import command as dd_admin
from sarra.admin.config import load_admin_config
from sarra.admin.users import Admin, ManagementAPI
from sarra.broker.connection import Broker, Outgoing
from sarra.config.credentials import Credentials
from sarra.config.paths import Paths
from sarra.core.errors import AccessRefused
from tests.fixtures import rabbit as rmq

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
REPORT_BODY = (
    "20261128220000.5 http://sw1.example.com/ /data/alice/a.txt 201 host1.example.com {u} 0.003000"
)


class Switch:
    """A test vhost run as a switch: admin.conf, credentials.conf, dd_admin, users' URLs."""

    def __init__(self, root: Path, vhost: str) -> None:
        self.root, self.vhost = root, vhost
        self.env = dict(os.environ, HOME=str(root), PYTHONPATH=str(ROOT))
        self.env.update(XDG_CONFIG_HOME=str(root / "cfg"), XDG_CACHE_HOME=str(root / "cache"))
        self.paths = Paths(root / "cfg/sarra", root / "cache/sarra", root / "cache/sarra/log")
        self.paths.config_dir.mkdir(parents=True)
        self.users: list[str] = []
        cred = self.paths.credentials_file()
        cred.write_text("amqp://guest:guest@localhost/\n")
        cred.chmod(0o600)
        (self.paths.config_dir / "admin.conf").write_text(
            f"cluster sw1\nadmin amqp://guest@localhost/{vhost}\n"
            f"feeder amqp://{self.name('feeder')}@localhost/{vhost}\n"
        )

    def name(self, short: str) -> str:
        """``<vhost's random part>-<short>``: user names cannot hold ``_`` or ``.``."""
        return f"{self.vhost.rsplit('_', 1)[-1]}-{short}"

    def admin(self, *argv: str) -> int:
        return dd_admin.main(list(argv), paths=self.paths)

    def add(self, short: str, role: str) -> str:
        user = self.name(short)
        self.users.append(user)
        assert self.admin("add-user", user, "--role", role) == 0
        return user

    def url(self, user: str) -> str:
        """The user's URL with the password dd_admin stored in credentials.conf."""
        creds = Credentials.load(self.paths.credentials_file())
        return creds.resolve(f"amqp://{user}@localhost/{self.vhost}")

    def broker(self, user: str) -> Broker:
        b = Broker(self.url(user), max_backoff=1)
        b.connect()
        return b

    def dd_log(self, user: str, *extra: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "sarra.cli", "dd_log", "-b", f"amqp://{user}@localhost/"]
        cmd[-1] += self.vhost
        cmd += ["--idle_exit", "2", *extra, "foreground"]
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def switch(rabbit, tmp_path: Path) -> Iterator[Switch]:
    vhost = f"t_admin_{uuid.uuid4().hex[:8]}"
    rabbit.add_vhost(vhost)
    sw = Switch(tmp_path, vhost)
    try:
        sw.add("feeder", "feeder")
        sw.alice, sw.bob, sw.eve = (
            sw.add("alice", "source"),
            sw.add("bob", "subscriber"),
            sw.add("eve", "source"),
        )
        assert sw.admin("declare") == 0
        yield sw
    finally:
        api = ManagementAPI("http://127.0.0.1:15672/api", "guest", "guest")
        for user in sw.users:
            api.delete_user(user)
        api.call("DELETE", f"/vhosts/{vhost}")


def post(exchange: str, key: str = "v02.post.data", body: str = "x") -> Outgoing:
    return Outgoing(exchange, key, {}, body.encode())


def test_admin_conf_records_users_and_credentials_file_is_0600(switch):
    cfg = load_admin_config(switch.paths.config_dir / "admin.conf")
    assert cfg.users[switch.alice] == "source" and cfg.users[switch.bob] == "subscriber"
    assert switch.paths.credentials_file().stat().st_mode & 0o777 == 0o600
    assert switch.admin("check") == 0


def test_eve_cannot_publish_to_alice_source_exchange_and_alice_still_can(switch):
    alice, eve = switch.broker(switch.alice), switch.broker(switch.eve)
    q = f"q_{switch.alice}.own"
    alice.declare_queue(q)
    alice.bind(q, f"xs_{switch.alice}", "v02.post.#")
    with pytest.raises(AccessRefused, match="ACCESS_REFUSED"):
        eve.publish(post(f"xs_{switch.alice}"))
    assert alice.publish(post(f"xs_{switch.alice}")) == []
    assert eve.publish(post(f"xs_{switch.eve}")) == []  # eve's own exchange works
    alice.consume(q)
    got = alice.get(10, timeout=5)
    assert [m.body for m in got] == [b"x"]
    alice.ack(got[0])
    eve.close()
    alice.close()


def test_eve_cannot_bind_to_alice_exchanges_nor_consume_or_declare_alice_queues(switch):
    alice, eve = switch.broker(switch.alice), switch.broker(switch.eve)
    alice_q, eve_q = f"q_{switch.alice}.data", f"q_{switch.eve}.snoop"
    alice.declare_queue(alice_q)
    eve.declare_queue(eve_q)
    for x in (f"xr_{switch.alice}", f"xs_{switch.alice}"):
        with pytest.raises(AccessRefused, match=f"exchange '{x}'"):
            eve.bind(eve_q, x, "#")
    with pytest.raises(AccessRefused, match=f"queue 'q_{switch.alice}.mine'"):
        eve.declare_queue(f"q_{switch.alice}.mine")  # no configure on alice's queues
    eve = switch.broker(switch.eve)
    with pytest.raises(AccessRefused, match=alice_q):
        eve.consume(alice_q)
    alice.bind(alice_q, f"xs_{switch.alice}", "v02.post.#")
    assert alice.publish(post(f"xs_{switch.alice}")) == []
    alice.consume(alice_q)
    assert len(alice.get(10, timeout=5)) == 1
    alice.close()


def test_topic_permissions_source_posts_only_v02_and_subscriber_only_reports(switch):
    alice, bob = switch.broker(switch.alice), switch.broker(switch.bob)
    with pytest.raises(AccessRefused, match="topic 'v03.post.x'"):
        alice.publish(post(f"xs_{switch.alice}", "v03.post.x"))
    assert bob.publish(post(f"xs_{switch.bob}", "v02.report.data")) == []
    with pytest.raises(AccessRefused, match="topic 'v02.post.data'"):
        bob.publish(post(f"xs_{switch.bob}", "v02.post.data"))
    alice.close()
    bob.close()


def test_user_named_like_a_prefix_of_another_gets_no_access_to_it(switch):
    alice2 = switch.add("alice2", "source")  # 'alice' is a prefix of 'alice2'
    alice = switch.broker(switch.alice)
    with pytest.raises(AccessRefused):
        alice.publish(post(f"xs_{alice2}"))
    alice.close()


def test_check_reports_changed_permissions_and_extra_users(switch):
    rmq.rabbitmqctl("set_permissions", "-p", switch.vhost, switch.bob, ".*", ".*", ".*")
    extra = switch.name("mallory")
    switch.users.append(extra)
    rmq.add_user(switch.vhost, extra, "pw", ".*", ".*", ".*")
    cfg = load_admin_config(switch.paths.config_dir / "admin.conf")
    problems = Admin.from_config(cfg, switch.paths.credentials_file()).check()
    assert any(switch.bob in p and "declared subscriber" in p for p in problems)
    assert any(p.startswith(f"extra user {extra}") for p in problems)
    assert switch.admin("check") == 1


def test_dd_log_shows_alice_her_reports_and_refuses_eve_with_one_clear_error(switch):
    feeder = switch.broker(switch.name("feeder"))
    headers = {"source": switch.alice, "from_cluster": "sw1", "message": "Downloaded"}
    headers["parts"] = "1,2048,1,0,0"
    first = switch.dd_log(switch.alice)  # creates and binds the queue, sees nothing yet
    assert first.returncode == 0, first.stderr
    for user in ("bob", "carol"):
        rep = Outgoing(f"xr_{switch.alice}", "v02.report.data.alice", dict(headers),
                       REPORT_BODY.format(u=user).encode())  # fmt: skip
        assert feeder.publish(rep) == []
    shown = switch.dd_log(switch.alice)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert len(lines) == 2
    assert "201 /data/alice/a.txt bob@host1.example.com 2.0 KiB 3.0ms Downloaded" in lines[0]

    refused = switch.dd_log(switch.eve, "--exchange", f"xr_{switch.alice}")
    assert refused.returncode == 1
    errors = [ln for ln in refused.stderr.splitlines() if "error" in ln.lower()]
    assert len(errors) == 1 and "ACCESS_REFUSED" in errors[0], refused.stderr
    assert refused.stdout == ""
    own = switch.dd_log(switch.eve)  # eve's own xr_ has none of alice's reports
    assert own.returncode == 0 and own.stdout == "", own.stderr
    feeder.close()
