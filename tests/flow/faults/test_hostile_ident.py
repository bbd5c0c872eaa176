"""Hostile identities, reports, secrets and log lines against the real broker and commands.

Issue 13, classes 4, 7, 12, 13, 15 and the log part of 16:

* 7: user names that would overlap (``u``/``u_x``, ``u``/``u.x``) are refused by
  dd_admin; neighbours it accepts (``u``/``ux``, ``u``/``u-x``, ``a``/``a-b-c``) cannot
  reach each other's exchanges or queues (the broker's own permission checks);
* 12: dd_post to an exchange its user may not write is a failed post, named, exit 1;
* 13: eve posting alice's path and checksum first does not make alice's post a duplicate;
* 15: a password in ``-u`` or in dd_sara's ``post_base_url`` is never published;
* 4 and 16: relpaths made to stall the log redaction, or carrying control characters,
  neither stall dd_sara nor reach its log raw.

Each switch test plants a victim file outside the tree and checks it is untouched, and
ends with a normal post delivered by the same daemon.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pika
import pytest
import requests

from sarra.core.errors import AccessRefused
from tests.flow.switch_net import Net
from tests.integration.test_permissions import ROOT, Switch, post
from tests.integration.test_permissions import switch as switch  # noqa: F401 (fixture)

pytestmark = [pytest.mark.flow, pytest.mark.integration]
API = "http://127.0.0.1:15672/api"


# ------------------------------------------------------------------ 7: user names


def broker_user(user: str) -> bool:
    return requests.get(f"{API}/users/{user}", auth=("guest", "guest"), timeout=10).ok


@pytest.mark.parametrize("suffix", ["_x", ".x", "_b_c", "_public"])
def test_7_dd_admin_refuses_a_name_that_overlaps_another(switch, suffix):  # noqa: F811
    first = switch.add("u", "source")
    bad = first + suffix
    assert switch.admin("add-user", bad, "--role", "source") == 2
    assert not broker_user(bad)
    conf = (switch.paths.config_dir / "admin.conf").read_text()
    assert bad not in conf
    assert bad not in switch.paths.credentials_file().read_text()
    assert switch.admin("check") == 0  # nothing half made
    # the first user is untouched and works
    b = switch.broker(first)
    assert b.publish(post(f"xs_{first}")) == []
    b.close()


def refused(fn) -> bool:
    try:
        fn()
    except (AccessRefused, pika.exceptions.ChannelClosedByBroker) as e:
        return "ACCESS_REFUSED" in str(e) or getattr(e, "reply_code", 0) == 403
    return False


def cannot_reach(sw: Switch, me: str, other: str, others_queue: str = "") -> None:
    """``me`` may neither publish to, bind to nor delete ``other``'s exchanges, nor
    delete or consume ``others_queue`` (the broker's permission checks say so)."""
    b = sw.broker(me)
    assert refused(lambda: b.publish(post(f"xs_{other}", "v02.report.x"))), (me, other)
    for x in (f"xr_{other}", f"xs_{other}"):
        b = sw.broker(me)
        b.declare_queue(f"q_{me}.snoop")
        assert refused(lambda: b.bind(f"q_{me}.snoop", x, "#")), (me, x)  # noqa: B023
    conn = pika.BlockingConnection(pika.URLParameters(sw.url(me)))
    assert refused(lambda: conn.channel().exchange_delete(f"xs_{other}"))
    if others_queue:
        assert refused(lambda: conn.channel().queue_delete(others_queue))
        b = sw.broker(me)
        assert refused(lambda: b.consume(others_queue))
    conn.close()
    b.close()


@pytest.mark.parametrize("first, second", [("u", "ux"), ("u", "u-x"), ("a", "a-b-c")])
def test_7_neighbour_names_cannot_reach_each_other(switch, first, second):  # noqa: F811
    one, two = switch.add(first, "source"), switch.add(second, "subscriber")
    assert switch.admin("declare") == 0
    theirs = switch.broker(two)
    theirs.declare_queue(f"q_{two}.data")
    theirs.close()
    cannot_reach(switch, one, two, f"q_{two}.data")
    cannot_reach(switch, two, one)
    # every exchange is still there, and each user still posts on its own
    names = {
        x["name"]
        for x in requests.get(
            f"{API}/exchanges/{switch.vhost}", auth=("guest", "guest"), timeout=10
        ).json()
    }
    assert {f"xs_{one}", f"xs_{two}", f"xr_{one}", f"xr_{two}"} <= names
    b = switch.broker(one)
    assert b.publish(post(f"xs_{one}")) == []
    b.close()


# ------------------------------------------------------------------ 12: dd_post refused


def dd_post(sw: Switch, user: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "sarra.cli", "dd_post",
           "-pb", f"amqp://{user}@localhost/{sw.vhost}", *args]  # fmt: skip
    env = dict(sw.env, PYTHONPATH=str(ROOT))
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def files(root: Path, n: int) -> list[str]:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"f{i:03d}.txt").write_text(f"file {i}\n")
    return [str(root / f"f{i:03d}.txt") for i in range(n)]


@pytest.mark.parametrize(
    "case, n",
    [("other's exchange", 1), ("other's exchange", 3), ("other's exchange", 300),
     ("topic", 2), ("missing exchange", 1)],
)  # fmt: skip
def test_12_a_refused_dd_post_is_a_failed_post_each_named(switch, tmp_path, case, n):  # noqa: F811
    src = tmp_path / "src"
    paths = files(src, n)
    args = ["-u", "http://127.0.0.1:9/", "-dr", str(src)]
    if case == "other's exchange":  # eve may not write alice's exchange
        user, extra = switch.eve, ["-pe", f"xs_{switch.alice}"]
    elif case == "topic":  # a subscriber may publish only reports on its exchange
        user, extra = switch.bob, []
    else:  # write allowed, but the exchange is gone and bob may not declare it
        requests.delete(f"{API}/exchanges/{switch.vhost}/xs_{switch.bob}",
                        auth=("guest", "guest"), timeout=10)  # fmt: skip
        user, extra = switch.bob, []
    alice = switch.broker(switch.alice)
    alice.declare_queue(f"q_{switch.alice}.watch")
    alice.bind(f"q_{switch.alice}.watch", f"xs_{switch.alice}", "#")
    r = dd_post(switch, user, *args, *extra, *paths)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "posted 0 notices" in out, out
    lines = out.splitlines()
    for p in paths:
        name = os.path.basename(p)
        assert len([ln for ln in lines if f"{name}" in ln and "ERROR" in ln]) == 1, (name, out)
    assert f"{n} path(s) not posted" in out
    alice.consume(f"q_{switch.alice}.watch")
    assert alice.get(10, timeout=1) == []  # nothing reached alice's exchange
    alice.close()
    # the same user posting where it may: posted, exit 0
    if case == "other's exchange":
        ok = dd_post(switch, user, *args, paths[0])
        assert ok.returncode == 0 and "posted 1 notices" in ok.stdout + ok.stderr


# ------------------------------------------------------------------ switch tests


@pytest.fixture
def net(rabbit, tmp_path):
    with Net(tmp_path, "A") as n:
        yield n


@pytest.fixture
def victim(tmp_path):
    v = tmp_path / "victim.txt"
    v.write_text("precious\n")
    v.chmod(0o600)
    yield v
    assert v.read_text() == "precious\n" and v.stat().st_mode & 0o777 == 0o600


def start_sara(net: Net, tmp: Path, url: str = "", extra: str = "") -> tuple:
    www = tmp / "A_www"
    srv = net.serve(www)
    base = url or srv.url
    net.config("sara", "A", (
        f"broker {net.url('A', 'feederA')}\ncluster A\n"
        f"declare source {net.user('alice')}\ndeclare source {net.user('eve')}\n"
        f"post_base_url {base}\npost_base_dir {www}\n"
        "source_hosts * 127.0.0.1\n"  # the sources' servers are on loopback (SSRF policy)
        f"{extra}"
    ))  # fmt: skip
    proc = net.foreground("dd_sara", "A")
    net.wait_consuming("A", f"q_{net.user('feederA')}.dd_sara.A")
    return www, srv, proc


def tree(root: Path, files: dict) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def net_post(net: Net, who: str, base: Path, url: str, *paths: str) -> subprocess.CompletedProcess:
    r = net.run("dd_post", "-pb", net.url("A", who), "-u", url, "-pbd", str(base), *paths)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def alive_and_delivering(net: Net, proc, pub, tmp: Path, www: Path, name: str) -> None:
    src = tree(tmp / f"good-{name}", {f"good/{name}.txt": b"good\n"})
    net_post(net, "alice", src, net.serve(src).url, str(src / "good" / f"{name}.txt"))
    got = pub.wait(lambda g: any(n.relpath.endswith(f"{name}.txt") for g_ in [g] for n in g_),
                   60, f"the normal file {name}")  # fmt: skip
    [n] = [n for n in got if n.relpath.endswith(f"{name}.txt")]
    assert (www / n.relpath).read_bytes() == b"good\n"
    assert proc.poll() is None, net.logs()


# ------------------------------------------------------------------ 13: dedup by source


def test_13_eve_posting_alices_file_first_does_not_suppress_alices_post(net, tmp_path, victim):
    pub, rep = net.tap("A", "xpublic"), net.tap("A", "xreport")
    www, _, proc = start_sara(net, tmp_path, extra="suppress_duplicates 300\n")
    data = os.urandom(2000)
    e = tree(tmp_path / "eve", {"obs/prod.bin": data, "obs/second.bin": data})
    a = tree(tmp_path / "alice", {"obs/prod.bin": data, "obs/second.bin": data})
    esrv, asrv = net.serve(e), net.serve(a)
    for rel in ("obs/prod.bin", "obs/second.bin"):
        net_post(net, "eve", e, esrv.url, str(e / rel))
        want = len(rep.got) + 1
        rep.wait(lambda g: len(g) >= want, 30, "eve's report")  # noqa: B023
        net_post(net, "alice", a, asrv.url, str(a / rel))
    reports = rep.wait(lambda g: len(g) >= 4, 30, "four reports")
    alice = net.user("alice")
    assert sorted(r.report.code for r in reports) == [201] * 4, [r.headers for r in reports]
    mine = [n for n in pub.wait(lambda g: len(g) >= 4, 30, "four re-posts")
            if n.headers["source"] == alice]  # fmt: skip
    assert len(mine) == 2
    for n in mine:
        assert (
            hashlib.md5((www / n.relpath).read_bytes()).hexdigest() == hashlib.md5(data).hexdigest()
        )
    alive_and_delivering(net, proc, pub, tmp_path, www, "after13")


# ------------------------------------------------------------------ 15: no password published


@pytest.mark.parametrize("password", ["secret", "p@ss:w0rd"])
def test_15_passwords_in_base_urls_are_never_published(net, tmp_path, victim, password):
    src_tap = net.tap("A", f"xs_{net.user('alice')}")
    pub = net.tap("A", "xpublic")
    www = tmp_path / "A_www"
    srv = net.serve(www)
    switch_url = srv.url.replace("http://", f"http://web:{password}@")
    www, _, proc = start_sara(net, tmp_path, url=switch_url)
    src = tree(tmp_path / "alice", {"d/a.txt": b"alpha\n", "d/b.txt": b"beta\n"})
    asrv = net.serve(src)
    url = asrv.url.replace("http://", f"http://alice:{password}@")
    r = net_post(net, "alice", src, url, str(src / "d"))
    out = r.stdout + r.stderr
    assert password not in out
    assert sum("not published" in ln for ln in out.splitlines()) == 1
    posted = src_tap.wait(lambda g: len(g) >= 2, 30, "alice's two posts")
    got = pub.wait(lambda g: len(g) >= 2, 30, "two re-posts")
    for n in posted + got:
        assert password not in n.baseurl and password not in str(n.headers), n
    assert {n.baseurl for n in posted} == {asrv.url.replace("http://", "http://alice@")}
    assert {n.baseurl for n in got} == {srv.url.replace("http://", "http://web@")}
    log = (tmp_path / "dd_sara_A.out").read_text()
    assert password not in log and log.count("not published") == 1
    alive_and_delivering(net, proc, pub, tmp_path, www, "after15")


# ------------------------------------------------------------------ 4 and 16: log text


HOSTILE_RELPATHS = {
    "300 KB of letters": "a" * 300_000,
    "a:// x 50000": "a://" * 50_000,
    "a://b: x 30000": "a://b:" * 30_000,
    "colons": "x/" + ":" * 200_000,
    "ats": "x/" + "@" * 200_000,
    "escape sequences": "x/\x1b[2J\x1b]0;owned\x07name.txt",
    "forged line": "x/name\n2026-12-07 00:00:00,000 [INFO] sarra.flow.engine: forged",
    "bidi": "x/\u202etxt.exe",
    "c1": "x/\x9b31mred",
}


def publish_raw(net: Net, who: str, relpath: str, headers: dict) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(net.url("A", who)))
    ch = conn.channel()
    body = f"20261207000000.000 http://127.0.0.1:9/ {relpath}".encode()
    topic = "v02.post." + ".".join(relpath.split("/")[:-1])[:200]
    ch.basic_publish(f"xs_{net.user(who)}", topic.rstrip(".") or "v02.post", body,
                     pika.BasicProperties(headers=headers, delivery_mode=2))  # fmt: skip
    conn.close()


def test_4_16_hostile_relpaths_neither_stall_dd_sara_nor_reach_its_log_raw(net, tmp_path, victim):
    pub = net.tap("A", "xpublic")
    www, _, proc = start_sara(net, tmp_path)
    eve = net.user("eve")
    conn = pika.BlockingConnection(pika.URLParameters(net.url("A", "eve")))
    conn.channel().exchange_declare(f"xs_{eve}", "topic", durable=True)
    conn.close()
    for rel in HOSTILE_RELPATHS.values():
        # a bad sum: refused at once, with one log line naming the relpath
        headers = {"sum": "d,nothex", "parts": "1,5,1,0,0", "to_clusters": "A"}
        publish_raw(net, "eve", rel, headers)
        headers = {"sum": "d," + "0" * 32, "parts": "1,5,1,0,0", "to_clusters": "A\x1b[31m"}
        publish_raw(net, "eve", rel, headers)
    alive_and_delivering(net, proc, pub, tmp_path, www, "after16")
    log = (tmp_path / "dd_sara_A.out").read_text(encoding="utf-8", errors="replace")
    bad = sorted({f"{ord(c):#x}" for c in log if (ord(c) < 0x20 and c != "\n")
                  or 0x7F <= ord(c) < 0xA0 or 0x202A <= ord(c) <= 0x202E})  # fmt: skip
    assert not bad, bad
    assert "forged" not in "".join(ln for ln in log.splitlines() if ln.startswith("2026-12-07"))
    assert max(len(ln) for ln in log.splitlines()) < 4096 + 200
