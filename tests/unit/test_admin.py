"""The admin model without a broker: permission regexes, admin.conf, credentials, drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sarra.admin import command as dd_admin
from sarra.admin import config as admin_conf
from sarra.admin import users as adm
from sarra.config.paths import Paths
from sarra.core.errors import ConfigError, CredentialsError


def allowed(regex: str, name: str) -> bool:
    return re.search(regex, name) is not None  # RabbitMQ matches anywhere, like re.search


@pytest.mark.parametrize(
    "name,configure,write,read",
    [
        ("q_alice.dd_subscribe.x.1.2", True, True, True),
        ("xs_alice", True, True, True),
        ("xs_alice_public", True, True, True),
        ("xr_alice", False, False, True),
        ("xpublic", False, False, True),
        ("xreport", False, False, False),
        ("xs_eve", False, False, False),
        ("xr_eve", False, False, False),
        ("q_eve.dd_log.x", False, False, False),
        ("q_alice2.data", False, False, False),
        ("xs_alice2", False, False, False),
        ("amq.default", False, False, False),
    ],
)
def test_source_permissions(name, configure, write, read):
    p = adm.permissions_for("source", "alice")
    assert (allowed(p.configure, name), allowed(p.write, name), allowed(p.read, name)) == (
        configure,
        write,
        read,
    )


def test_subscriber_may_write_reports_to_its_exchange_but_create_only_queues():
    p = adm.permissions_for("subscriber", "bob")
    assert allowed(p.write, "xs_bob") and not allowed(p.write, "xs_bob_public")
    assert not allowed(p.configure, "xs_bob") and allowed(p.configure, "q_bob.x")
    assert allowed(p.read, "xpublic") and allowed(p.read, "xr_bob") and not allowed(p.read, "xs_al")
    [(exchange, write, _read)] = p.topics
    assert exchange == "xs_bob" and re.search(write, "v02.report.a.b")
    assert not re.search(write, "v02.post.a")


def test_source_topic_permission_allows_posts_and_reports_only():
    [(exchange, write, _read)] = adm.permissions_for("source", "alice").topics
    assert exchange == "xs_alice"
    for topic, ok in (("v02.post", True), ("v02.post.a", True), ("v02.report.a", True)):
        assert bool(re.search(write, topic)) is ok
    assert not re.search(write, "v03.post.a") and not re.search(write, "v02.postx")


def test_user_names_are_escaped_in_regexes():
    p = adm.permissions_for("source", "a.b")
    assert allowed(p.write, "xs_a.b") and not allowed(p.write, "xs_axb")


def test_admin_and_feeder_have_full_access_admin_gets_the_tag():
    assert adm.permissions_for("feeder", "f") == adm.Permissions(".*", ".*", ".*")
    assert adm.permissions_for("admin", "root").tags == "administrator"
    with pytest.raises(ConfigError, match="unknown role 'god'"):
        adm.permissions_for("god", "x")


CONF = """\
# my switch
cluster sw1
admin amqp://root@localhost/sw1
feeder amqp://feeder@localhost/sw1
declare source alice   # a source
declare subscriber bob
declare exchange xs_alice_public
"""


def write_conf(tmp_path: Path, text: str = CONF) -> Path:
    path = tmp_path / "admin.conf"
    path.write_text(text)
    return path


def test_load_admin_config(tmp_path):
    cfg = admin_conf.load_admin_config(write_conf(tmp_path))
    assert cfg.cluster == "sw1" and cfg.vhost == "sw1"
    assert cfg.users == {"alice": "source", "bob": "subscriber", "feeder": "feeder"}
    assert cfg.exchanges == ["xs_alice_public"]
    assert cfg.api_url() == "http://localhost:15672/api"
    assert cfg.user_url("bob", "p w") == "amqp://bob:p%20w@localhost/sw1"


@pytest.mark.parametrize(
    "text,error",
    [
        ("admin amqp://r@h/\ncolour blue\n", "admin.conf:2: unknown setting 'colour'"),
        ("admin amqp://r@h/\ndeclare wizard x\n", "admin.conf:2: bad declare"),
        ("admin http://r@h/\n", "admin.conf:1: not a broker URL"),
        ("cluster x\n", "no 'admin amqp://user@host/vhost' line"),
    ],
)
def test_admin_config_errors_name_file_and_line(tmp_path, text, error):
    with pytest.raises(ConfigError) as e:
        admin_conf.load_admin_config(write_conf(tmp_path, text))
    assert error in str(e.value)


def test_set_declared_adds_and_removes_the_declare_line(tmp_path):
    cfg = admin_conf.load_admin_config(write_conf(tmp_path))
    admin_conf.set_declared(cfg, "carol", "subscriber")
    admin_conf.set_declared(cfg, "alice", None)
    again = admin_conf.load_admin_config(cfg.path)
    assert again.users == {"bob": "subscriber", "carol": "subscriber", "feeder": "feeder"}
    assert "# my switch" in cfg.path.read_text()


def test_store_credential_replaces_same_user_keeps_others_and_is_0600(tmp_path):
    path = tmp_path / "credentials.conf"
    admin_conf.store_credential(path, "amqp://alice:one@localhost/sw1")
    admin_conf.store_credential(path, "amqp://bob:two@localhost/sw1")
    admin_conf.store_credential(path, "amqp://alice:three@localhost/sw1")
    assert path.read_text().splitlines() == [
        "amqp://bob:two@localhost/sw1",
        "amqp://alice:three@localhost/sw1",
    ]
    assert path.stat().st_mode & 0o777 == 0o600
    admin_conf.forget_credential(path, "amqp://alice@localhost/sw1")
    assert path.read_text() == "amqp://bob:two@localhost/sw1\n"


def test_store_credential_refuses_a_group_readable_file_with_the_fix(tmp_path):
    path = tmp_path / "credentials.conf"
    path.write_text("amqp://x:y@h/\n")
    path.chmod(0o644)
    with pytest.raises(CredentialsError, match=f"chmod 600 {path}"):
        admin_conf.store_credential(path, "amqp://alice:one@localhost/sw1")


class FakeAPI:
    """In-memory stand-in for the management API (one vhost)."""

    def __init__(self) -> None:
        self.tags: dict = {}
        self.perms: dict = {}
        self.topics: dict = {}
        self.passwords: dict = {}
        self.xs: set = set()

    def users(self):
        return [{"name": n, "tags": t} for n, t in self.tags.items()]

    def put_user(self, name, password, tags):
        self.tags[name], self.passwords[name] = tags, password

    def delete_user(self, name):
        self.tags.pop(name, None)
        self.perms.pop(name, None)

    def permissions(self, vhost):
        return [{"user": u, **p} for u, p in self.perms.items()]

    def set_permissions(self, vhost, user, p):
        self.perms[user] = {"configure": p.configure, "write": p.write, "read": p.read}
        self.topics[user] = p.topics

    def exchanges(self, vhost):
        return sorted(self.xs)

    def declare_exchange(self, vhost, name):
        self.xs.add(name)


@pytest.fixture
def switch(tmp_path):
    cfg = admin_conf.load_admin_config(write_conf(tmp_path))
    api = FakeAPI()
    api.put_user("root", "rootpw", "administrator")
    api.set_permissions("sw1", "root", adm.permissions_for("admin", "root"))
    return adm.Admin(cfg, api, tmp_path / "credentials.conf")  # type: ignore[arg-type]


def test_add_user_sets_permissions_exchanges_credentials_and_declare(switch):
    url = switch.add_user("carol", "source")
    assert url == "amqp://carol@localhost/sw1"
    api = switch.api
    assert api.perms["carol"]["write"] == adm.permissions_for("source", "carol").write
    assert {"xs_carol", "xr_carol"} <= api.xs
    password = api.passwords["carol"]
    assert len(password) >= 20
    assert f"amqp://carol:{password}@localhost/sw1" in switch.credentials_file.read_text()
    assert "declare source carol" in switch.cfg.path.read_text()


def test_check_reports_missing_wrong_and_extra(switch):
    problems = switch.check()
    assert "missing user alice (declared source): dd_admin add-user" in problems
    assert "missing exchange xpublic: dd_admin declare" in problems
    for name, role in (("alice", "source"), ("bob", "source"), ("feeder", "feeder")):
        switch.api.set_permissions("sw1", name, adm.permissions_for(role, name))
    switch.api.set_permissions("sw1", "mallory", adm.permissions_for("source", "mallory"))
    switch.declare()
    assert switch.check() == [
        "user bob has source permissions, declared subscriber",
        f"extra user mallory (source) not in {switch.cfg.path}",
    ]


def test_list_users_infers_roles_from_permissions(switch):
    switch.add_user("alice", "source")
    switch.api.perms["bob"] = {"configure": ".*", "write": "", "read": ".*"}
    roles = {u.name: u.role for u in switch.list_users()}
    assert roles == {"alice": "source", "bob": "custom", "root": "admin"}


def test_dd_admin_never_prints_the_password(tmp_path, monkeypatch, capsys):
    paths = Paths.under(tmp_path)
    paths.config_dir.mkdir(parents=True)
    write_conf(paths.config_dir)
    cred = paths.credentials_file()
    cred.write_text("amqp://root:rootpw@localhost/\n")
    cred.chmod(0o600)
    fake = FakeAPI()
    monkeypatch.setattr(adm, "ManagementAPI", lambda *a, **k: fake)
    assert dd_admin.main(["add-user", "dave", "--role", "subscriber"], paths=paths) == 0
    out = capsys.readouterr()
    assert fake.passwords["dave"] not in out.out + out.err
    assert "amqp://dave@localhost/sw1" in out.out
    assert dd_admin.main(["check"], paths=paths) == 1  # alice, bob, feeder missing


def test_dd_admin_without_admin_password_says_where_to_put_it(tmp_path, capsys):
    paths = Paths.under(tmp_path)
    paths.config_dir.mkdir(parents=True)
    write_conf(paths.config_dir)
    assert dd_admin.main(["list-users"], paths=paths) == 2
    assert "no password for amqp://root@localhost/sw1" in capsys.readouterr().err


def test_link_records_the_switch_keeps_its_password_out_and_writes_configs(switch, tmp_path):
    switch.cfg.post_base_dir, switch.cfg.post_base_url = "/srv/sw1", "http://sw1.example.com/"
    written = switch.link("sw2", "amqp://feeder:secret@sw2.example.com/sw2", tmp_path / "cfg")
    names = sorted(p.relative_to(tmp_path / "cfg").as_posix() for p in written)
    assert names == ["sara/from_sw2.conf", "sara/ingest.conf", "shovel/reports.conf"]
    conf = switch.cfg.path.read_text()
    assert "link sw2 amqp://feeder@sw2.example.com/sw2" in conf and "secret" not in conf
    assert "amqp://feeder:secret@sw2.example.com/sw2" in switch.credentials_file.read_text()
    relay = (tmp_path / "cfg/sara/from_sw2.conf").read_text().splitlines()
    assert relay[1:5] == [
        "broker amqp://feeder@sw2.example.com/sw2",
        "exchange xpublic",
        "source_from_exchange off",
        "post_broker amqp://feeder@localhost/sw1",
    ]
    reports = (tmp_path / "cfg/shovel/reports.conf").read_text()
    assert "report_route sw2 amqp://feeder@sw2.example.com/sw2\n" in reports
    assert "declare source alice\ndeclare subscriber bob\n" in reports
    ingest = (tmp_path / "cfg/sara/ingest.conf").read_text()
    assert "declare source alice\n" in ingest and "bob" not in ingest
    assert "gateway_for sw2\n" in ingest  # alice may post -to sw2 on this switch
    again = admin_conf.load_admin_config(switch.cfg.path)
    assert again.links == [admin_conf.Link("sw2", "amqp://feeder@sw2.example.com/sw2")]
    switch.link("sw2", "amqp://feeder@sw2b.example.com/sw2", tmp_path / "cfg")
    assert (
        admin_conf.load_admin_config(switch.cfg.path).links[0].url.startswith("amqp://feeder@sw2b")
    )


def test_generated_configs_load_as_sara_and_shovel_configs(switch, tmp_path):
    from sarra.config.loader import load

    switch.cfg.post_base_dir, switch.cfg.post_base_url = "/srv/sw1", "http://sw1.example.com/"
    switch.link("sw2", "amqp://feeder@sw2.example.com/sw2", tmp_path / "cfg" / "sarra")
    paths = Paths(tmp_path / "cfg" / "sarra", tmp_path / "state", tmp_path / "log")
    for program, name in (("dd_sara", "ingest"), ("dd_sara", "from_sw2"), ("dd_shovel", "reports")):
        assert load(program, name, [], paths).broker
