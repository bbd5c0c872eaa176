"""dd_sara end to end: switches as vhosts of the local RabbitMQ, real commands.

Each test builds its own network (``tests/flow/switch_net.py``): vhosts, broker users,
trees served over HTTP on loopback, ``dd_sara``/``dd_shovel``/``dd_subscribe`` daemons run
with ``foreground`` and ``dd_post`` one-shots.  Waits are bounded.
"""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

import pika
import pytest

from sarra.core import message
from tests.fixtures.waiting import wait_for
from tests.flow.switch_net import Net

pytestmark = pytest.mark.flow


@pytest.fixture
def net(rabbit, tmp_path):
    with Net(tmp_path, "ABC") as n:
        yield n


def tree(root: Path, files: dict) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def ingest_conf(net: Net, sw: str, www: Path, url: str, extra: str = "") -> str:
    return (
        f"broker {net.url(sw, 'feeder' + sw)}\ncluster {sw}\n"
        f"declare source {net.user('alice')}\ndeclare source {net.user('eve')}\n"
        # the sources' web servers are on loopback, which the SSRF policy refuses unless listed
        f"source_hosts * 127.0.0.1\n"
        f"post_base_url {url}\npost_base_dir {www}\n{extra}"
    )


def relay_conf(net: Net, up: str, sw: str, www: Path, url: str, extra: str = "") -> str:
    return (
        f"broker {net.url(up, 'feeder' + sw)}\nexchange xpublic\nsource_from_exchange off\n"
        f"post_broker {net.url(sw, 'feeder' + sw)}\ncluster {sw}\ndirectory ${{PBD}}\n"
        f"post_base_url {url}\npost_base_dir {www}\n{extra}"
    )


def post(net: Net, sw: str, who: str, base: Path, url: str, *paths: str, to: str = "") -> None:
    args = ["-pb", net.url(sw, who), "-u", url, "-pbd", str(base)]
    if to:
        args += ["-to", to]
    r = net.run("dd_post", *args, *paths)
    assert r.returncode == 0, r.stdout + r.stderr


def start_ingest(net: Net, tmp: Path, extra: str = "") -> tuple:
    www = tmp / "A_www"
    srv = net.serve(www)
    net.config("sara", "A", ingest_conf(net, "A", www, srv.url, extra))
    net.foreground("dd_sara", "A")
    net.wait_consuming("A", f"q_{net.user('feederA')}.dd_sara.A")
    return www, srv


def test_ingest_stores_and_readvertises_with_source_from_exchange(net, tmp_path):
    pub = net.tap("A", "xpublic")
    www, _ = start_ingest(net, tmp_path)
    src = tree(tmp_path / "alice", {"tree/a.txt": b"alpha\n", "tree/sub/b.bin": os.urandom(5000)})
    asrv = net.serve(src)
    post(net, "A", "alice", src, asrv.url, str(src / "tree"))
    got = pub.wait(lambda g: len(g) >= 2, 30, "two re-posts on xpublic")
    alice = net.user("alice")
    for n in got:
        assert n.baseurl == net.servers[0].url
        assert n.headers["source"] == alice and n.headers["from_cluster"] == "A"
        assert f"/{alice}/tree/" in "/" + n.relpath
        stored = www / n.relpath
        assert md5(stored) == md5(src / n.relpath.split(f"{alice}/", 1)[1])


def test_post_on_xs_eve_claiming_alice_arrives_as_eve(net, tmp_path):
    pub = net.tap("A", "xpublic")
    start_ingest(net, tmp_path)
    src = tree(tmp_path / "eve", {"spoof.txt": b"not alice's\n"})
    asrv = net.serve(src)
    data = b"not alice's\n"
    n = message.new_post(
        asrv.url,
        "spoof.txt",
        {
            "sum": "d," + hashlib.md5(data).hexdigest(),
            "parts": f"1,{len(data)},1,0,0",
            "source": net.user("alice"),
            "from_cluster": "A",
            "to_clusters": "A",
        },
    )
    enc = message.encode(n)
    conn = pika.BlockingConnection(pika.URLParameters(net.url("A", "eve")))
    ch = conn.channel()
    ch.exchange_declare(f"xs_{net.user('eve')}", "topic", durable=True)
    ch.basic_publish(
        f"xs_{net.user('eve')}",
        enc.topic,
        enc.body,
        pika.BasicProperties(headers=enc.headers, delivery_mode=2),
    )
    conn.close()
    [got] = pub.wait(lambda g: len(g) >= 1, 30, "the re-post")
    assert got.headers["source"] == net.user("eve")


def test_post_for_an_unknown_cluster_is_refused_unfetched_and_reported_to_its_source(net, tmp_path):
    pub = net.tap("A", "xpublic")
    alice = net.user("alice")
    xr_alice = net.tap("A", "xr_" + alice)
    start_ingest(net, tmp_path, "gateway_for C\n")
    net.config("shovel", "rA", router_conf(net, "A", f"declare source {alice}\n"))
    net.foreground("dd_shovel", "rA")
    net.wait_consuming("A", f"q_{net.user('feederA')}.dd_shovel.rA")
    src = tree(tmp_path / "alice", {"lost.txt": b"for nowhere\n", "kept.txt": b"for C\n"})
    asrv = net.serve(src)
    post(net, "A", "alice", src, asrv.url, str(src / "lost.txt"), to="Z,Y")
    post(net, "A", "alice", src, asrv.url, str(src / "kept.txt"), to="C")
    reports = xr_alice.wait(lambda g: len(g) >= 2, 30, "alice's two reports")
    codes = sorted((r.relpath, r.report.code, r.headers["message"]) for r in reports)
    assert codes == [
        ("kept.txt", 201, "Downloaded"),
        ("lost.txt", 403, "Forbidden : unknown destination cluster"),
    ]
    [kept] = pub.wait(lambda g: len(g) >= 1, 30, "the re-post of kept.txt")
    assert kept.relpath.endswith("/kept.txt") and kept.headers["to_clusters"] == "C"
    assert [p for _m, p, _r in asrv.box.requests if "lost" in p] == []  # never fetched
    assert not list(tmp_path.glob("A_www/**/lost.txt"))
    queue = f"q_{net.user('feederA')}.dd_sara.A"
    wait_for(lambda: net.messages("A", queue) == 0, 30, f"{queue} empty and nothing unacked")
    log = (tmp_path / "dd_sara_A.out").read_text()
    assert len([ln for ln in log.splitlines() if "'Z,Y'" in ln]) == 1, log[-3000:]


def router_conf(net: Net, sw: str, extra: str) -> str:
    return f"broker {net.url(sw, 'feeder' + sw)}\nreport_router on\ncluster {sw}\n{extra}"


def test_tree_to_c_is_relayed_through_b_and_reports_reach_only_alice(net, tmp_path):
    xr_alice = net.tap("A", "xr_" + net.user("alice"))
    xr_eve = net.tap("A", "xr_" + net.user("eve"))
    www = {s: tmp_path / f"{s}_www" for s in "ABC"}
    srv = {s: net.serve(www[s]) for s in "ABC"}
    alice, eve, bob = net.user("alice"), net.user("eve"), net.user("bob")
    # A takes posts for C (B fetches them from A's xpublic); B is C's gateway
    net.config("sara", "A", ingest_conf(net, "A", www["A"], srv["A"].url, "gateway_for C\n"))
    net.config("sara", "B", relay_conf(net, "A", "B", www["B"], srv["B"].url, "gateway_for C\n"))
    net.config("sara", "C", relay_conf(net, "B", "C", www["C"], srv["C"].url))
    net.config(
        "shovel", "rA", router_conf(net, "A", f"declare source {alice}\ndeclare source {eve}\n")
    )
    net.config("shovel", "rB", router_conf(net, "B", f"report_route A {net.url('A', 'feederB')}\n"))
    net.config(
        "shovel",
        "rC",
        router_conf(
            net, "C", f"declare subscriber {bob}\nreport_route * {net.url('B', 'feederC')}\n"
        ),
    )
    bobdir = tmp_path / "bob"
    net.config(
        "subscribe",
        "bob",
        (
            f"broker {net.url('C', 'bob')}\nexchange xpublic\nqueue_name q_{bob}.dd_subscribe.bob\n"
            f"mirror on\ndirectory {bobdir}\naccept .*\n"
        ),
    )
    for s in "ABC":
        net.foreground("dd_sara", s)
        net.foreground("dd_shovel", f"r{s}")
    net.foreground("dd_subscribe", "bob")
    queues = [
        ("A", f"q_{net.user('feederA')}.dd_sara.A"),
        ("A", f"q_{net.user('feederB')}.dd_sara.B"),
        ("B", f"q_{net.user('feederC')}.dd_sara.C"),
        ("C", f"q_{bob}.dd_subscribe.bob"),
    ]
    queues += [(s, f"q_{net.user('feeder' + s)}.dd_shovel.r{s}") for s in "ABC"]
    for sw, q in queues:
        net.wait_consuming(sw, q)

    src = tree(
        tmp_path / "alice",
        {
            "only_a.txt": b"stays home\n",
            "tree/a.txt": b"alpha\n",
            "tree/sub/b.bin": os.urandom(20000),
        },
    )
    asrv = net.serve(src)
    post(net, "A", "alice", src, asrv.url, str(src / "only_a.txt"), to="A")
    post(net, "A", "alice", src, asrv.url, str(src / "tree"), to="C")

    def received():
        done = [p for p in bobdir.rglob("*") if p.is_file() and not p.name.endswith(".tmp")]
        return sorted(p.relative_to(bobdir).as_posix() for p in done)

    try:
        got = wait_for(lambda: len(received()) >= 2 and received(), 60, "bob's two files")
    except AssertionError:
        raise AssertionError(net.logs()) from None
    for rel in got:
        tail = rel.split(f"{alice}/", 1)[1]
        assert md5(bobdir / rel) == md5(src / tail)
        for s in "ABC":
            assert md5(www[s] / rel) == md5(src / tail), f"{rel} on {s}"
    assert list(www["A"].rglob("only_a.txt"))
    assert not list(www["B"].rglob("only_a.txt")) and not list(www["C"].rglob("only_a.txt"))

    want = {net.user(f"feeder{s}") for s in "ABC"} | {bob}

    def complete(reports):
        by_file = {}
        for r in reports:
            by_file.setdefault(r.relpath.rsplit("/", 1)[-1], set()).add(r.report.user)
        return all(want <= by_file.get(name, set()) for name in ("a.txt", "b.bin"))

    try:
        reports = xr_alice.wait(complete, 60, "reports of A, B, C and bob in xr_alice")
    except AssertionError:
        raise AssertionError(
            f"{[(r.relpath, r.report.user) for r in xr_alice.got]}\n{net.logs()}"
        ) from None
    assert all(r.report.code == 201 for r in reports)
    assert all(r.headers["source"] == alice for r in reports)
    assert xr_eve.drain() == []


def test_same_data_posted_twice_by_a_source_is_readvertised_once_and_by_another_again(
    net, tmp_path
):
    pub = net.tap("A", "xpublic")
    rep = net.tap("A", "xreport")
    start_ingest(net, tmp_path, "suppress_duplicates 60\n")
    data = os.urandom(3000)
    # a product posted twice by its source: same path, same bytes (spec 6.6 fingerprint)
    a = tree(tmp_path / "alice", {"obs/mine.bin": data, "obs/empty.txt": b""})
    e = tree(tmp_path / "eve", {"obs/mine.bin": data, "obs/other_empty.txt": b""})
    asrv, esrv = net.serve(a), net.serve(e)
    post(net, "A", "alice", a, asrv.url, str(a / "obs" / "mine.bin"))
    post(net, "A", "alice", a, asrv.url, str(a / "obs" / "mine.bin"))
    reports = rep.wait(lambda g: len(g) >= 2, 30, "two ingest reports")
    assert sorted(r.report.code for r in reports) == [201, 304]
    # the same path and bytes from another source are that source's own product
    post(net, "A", "eve", e, esrv.url, str(e / "obs" / "mine.bin"))
    reports = rep.wait(lambda g: len(g) >= 3, 30, "eve's report")
    assert sorted(r.report.code for r in reports) == [201, 201, 304]
    assert sorted(n.headers["source"] for n in pub.drain()) == sorted(
        [net.user("alice"), net.user("eve")]
    )
    # different files with the same bytes (two empty files) are not duplicates
    post(net, "A", "alice", a, asrv.url, str(a / "obs" / "empty.txt"))
    post(net, "A", "eve", e, esrv.url, str(e / "obs" / "other_empty.txt"))
    names = lambda g: {n.relpath.rsplit("/", 1)[-1] for n in g}  # noqa: E731
    got = pub.wait(lambda g: {"empty.txt", "other_empty.txt"} <= names(g), 30, "both empties")
    assert sorted(names(got) - {"mine.bin"}) == ["empty.txt", "other_empty.txt"]


def queue_depth(net: Net, sw: str, q: str) -> int:
    import requests

    from tests.flow.switch_net import API, AUTH, quote

    r = requests.get(f"{API}/queues/{quote(net.vhosts[sw], safe='')}/{q}", auth=AUTH, timeout=10)
    j = r.json()
    return int(j.get("messages_ready", 0)) + int(j.get("messages_unacknowledged", 0))


def test_kill_9_mid_flow_loses_nothing_and_readvertises_nothing_twice(net, tmp_path):
    pub = net.tap("A", "xpublic")
    www = tmp_path / "A_www"
    srv = net.serve(www)
    net.config(
        "sara",
        "A",
        ingest_conf(net, "A", www, srv.url, "suppress_duplicates 600\nbatch 2\nprefetch 4\n"),
    )
    q = f"q_{net.user('feederA')}.dd_sara.A"
    r = net.run("dd_sara", "declare", "A")
    assert r.returncode == 0, r.stderr
    files = {f"many/f{i:02d}.bin": os.urandom(20000) for i in range(20)}
    src = tree(tmp_path / "alice", files)
    asrv = net.serve(src)
    asrv.box.rate = 100_000  # 0.2 s per file: the kill lands mid-flow
    post(net, "A", "alice", src, asrv.url, str(src / "many"))
    # the first run is our child, so that we reap it after kill -9 (this sandbox's init
    # does not reap orphans, and a zombie looks alive to "start")
    first = net.foreground("dd_sara", "A")
    pub.wait(lambda g: len(g) >= 3, 60, "first re-posts")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    seen_at_kill = len(pub.drain())
    assert seen_at_kill < 20, "the kill came too late to test anything"
    r = net.run("dd_sara", "start", "A")
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        pub.wait(lambda g: len({n.relpath for n in g}) >= 20, 60, "all 20 re-posts")
        wait_for(lambda: queue_depth(net, "A", q) == 0, 30, "an empty, fully acked queue")
    except AssertionError:
        raise AssertionError(
            r.stdout + net.logs() + "\n".join(p.read_text() for p in net.home.rglob("*.log"))
        ) from None
    finally:
        net.run("dd_sara", "stop", "A")
    posts = pub.drain()
    rels = [n.relpath for n in posts]
    assert len(rels) == len(set(rels)) == 20
    for n in posts:
        assert md5(www / n.relpath) == md5(src / n.relpath.split(net.user("alice") + "/", 1)[1])


def test_partitioned_file_is_stored_as_parts_on_the_switch_and_assembled_by_bob(net, tmp_path):
    pub = net.tap("A", "xpublic")
    www, srv = start_ingest(net, tmp_path)
    dl = tmp_path / "bob_dl"
    net.config(
        "subscribe", "bob",
        f"broker {net.url('A', 'bob')}\nexchange xpublic\ndirectory {dl}\naccept .*\n",
    )  # fmt: skip
    sub = net.foreground("dd_subscribe", "bob")
    data = os.urandom(5 * 1024 + 100)
    src = tree(tmp_path / "alice", {"big/parted.bin": data})
    asrv = net.serve(src)
    try:
        wait_for(lambda: "running" in net.logs(), 30, "bob's subscriber")
        wait_for(
            lambda: net.consumers("A", _bob_queue(net)) if _bob_queue(net) else 0,
            30,
            "bob consuming",
        )
        args = ["-pb", net.url("A", "alice"), "-u", asrv.url, "-pbd", str(src), "--blocksize", "1K"]
        r = net.run("dd_post", *args, str(src / "big" / "parted.bin"))
        assert r.returncode == 0, r.stdout + r.stderr
        got = pub.wait(lambda g: len(g) >= 6, 30, "six block re-posts on xpublic")
        # the switch never holds the whole file: it stores and announces part files (7.7)
        assert {n.headers["parts"].split(",")[0] for n in got} == {"p"}
        assert all(n.relpath.endswith(".Part") for n in got)
        assert not list(www.rglob("parted.bin"))
        wait_for(lambda: (dl / "parted.bin").is_file(), 60, "bob's assembled file")
        assert (dl / "parted.bin").read_bytes() == data
        assert not [p for p in dl.iterdir() if p.name != "parted.bin"]
    finally:
        sub.send_signal(signal.SIGTERM)
        sub.wait(timeout=30)


def _bob_queue(net: Net) -> str:
    for p in net.home.rglob("queue_name.*"):
        if "subscribe" in str(p):
            return p.read_text().strip()
    return ""
