"""dd_sara's flow against the in-memory fake broker and a fake transfer."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from sarra.config.loader import load
from sarra.config.paths import Paths
from sarra.core import message
from sarra.flow.context import Context
from sarra.logs.progress import Progress
from sarra.roles import sara
from tests.fixtures.fakebroker import FakeBroker

DATA = b"hello, switch\n"


class FakeTransfer:
    def __init__(self, files):
        self.files = files

    def get(
        self, remote, dest, *, offset=0, length=None, limit=None, sums=(), progress=None, throttle=0
    ):
        data = self.files[remote.lstrip("/")]
        dest.write(data)
        for s in sums:
            s.update(data)
        return len(data)


class FakePool:
    def __init__(self, files):
        self.t = FakeTransfer(files)

    def get(self, baseurl):
        return self.t


class FakeCtx:
    def __init__(self, options, state, files):
        self.options, self.state_dir, self.instance = options, state, 1
        self.files = files
        self.paths = Paths.under(state)

    def transfers(self):
        return FakePool(self.files)

    def progress(self, broker=None):
        return Progress()

    def host(self, url):
        return "localhost"

    def user(self, url):
        return "feeder"

    def stop(self):
        return False

    # the real construction of the instance's retry queue and the config's cache
    retry_queue = Context.retry_queue
    dedup_cache = Context.dedup_cache
    reset_queue = Context.reset_queue
    downloader = Context.downloader
    hooks = Context.hooks
    # the real flow source, with bandwidth sharing when the options ask for it
    program = "dd_sara"
    role = Context.role
    _bandwidth = None
    source = Context.source
    bandwidth = Context.bandwidth


def setup(tmp_path: Path, extra: str = "", files=None):
    conf = tmp_path / "sw.conf"
    conf.write_text(
        "broker amqp://feeder@localhost/\ncluster A\ndeclare source alice\ndeclare source eve\n"
        f"post_base_url http://a.example/\npost_base_dir {tmp_path / 'tree'}\n{extra}"
    )
    paths = Paths.under(tmp_path / "home")
    o = load("sara", str(conf), (), paths, defaults=sara.DEFAULTS)
    ctx = FakeCtx(o, tmp_path / "state", files or {"tree/f.txt": DATA})
    b = FakeBroker()
    return b, sara.build(ctx, b, b)


def post(rel="tree/f.txt", data=DATA, **headers):
    h = {"sum": "d," + hashlib.md5(data).hexdigest(), "parts": f"1,{len(data)},1,0,0", **headers}
    return message.new_post("http://src.example/", rel, h)


def decoded(out):
    return message.decode(out.routing_key, out.headers, out.body)


def test_ingest_stores_file_and_reposts_with_switch_url_and_source_from_exchange(tmp_path):
    b, flow = setup(tmp_path)
    b.put(post(source="alice", from_cluster="x"), exchange="xs_eve")
    flow.run_once()
    [pub] = [decoded(o) for o in b.published if o.exchange == "xpublic"]
    assert pub.baseurl == "http://a.example/"
    assert pub.headers["source"] == "eve" and pub.headers["from_cluster"] == "A"
    assert pub.relpath.endswith("/eve/tree/f.txt")
    assert (tmp_path / "tree" / pub.relpath).read_bytes() == DATA
    assert pub.topic == message.post_topic(pub.relpath)
    [rep] = [decoded(o) for o in b.published if o.exchange == "xreport"]
    assert rep.report.code == 201 and rep.report.user == "feeder"
    assert len(b.acked) == 1


def test_pubtime_and_headers_are_kept(tmp_path):
    b, flow = setup(tmp_path, "gateway_for C\n")
    n = post(mtime="20240102030405.5", to_clusters="C")
    b.put(n, exchange="xs_alice")
    flow.run_once()
    [pub] = [decoded(o) for o in b.published if o.exchange == "xpublic"]
    assert pub.pubtime == n.pubtime
    assert pub.headers["mtime"] == "20240102030405.5" and pub.headers["to_clusters"] == "C"


def test_post_from_undeclared_source_is_refused_reported_and_acked(tmp_path):
    b, flow = setup(tmp_path)
    b.put(post(source="alice"), exchange="xs_mallory")
    flow.run_once()
    assert not [o for o in b.published if o.exchange == "xpublic"]
    [rep] = [decoded(o) for o in b.published if o.exchange == "xreport"]
    assert rep.report.code == 403 and rep.headers["source"] == "mallory"
    assert len(b.acked) == 1


def test_post_for_an_unknown_cluster_is_refused_without_download_reported_and_acked(
    tmp_path, caplog
):
    b, flow = setup(tmp_path, "gateway_for C\n", files={})  # a download would raise KeyError
    b.put(post(source="alice", to_clusters="Z,Y"), exchange="xs_alice")
    with caplog.at_level(logging.INFO, logger="sarra"):
        flow.run_once()
    assert not [o for o in b.published if o.exchange == "xpublic"]
    [rep] = [decoded(o) for o in b.published if o.exchange == "xreport"]
    assert rep.report.code == 403 and rep.headers["source"] == "alice"
    assert rep.headers["message"] == "Forbidden : unknown destination cluster"
    assert len(b.acked) == 1 and not b.nacked
    lines = [r.getMessage() for r in caplog.records if "'Z,Y'" in r.getMessage()]
    assert len(lines) == 1 and "rejected" in lines[0] and "(A, C)" in lines[0]
    assert not list((tmp_path / "tree").rglob("*.txt"))


def test_path_escape_is_refused_without_download(tmp_path):
    b, flow = setup(tmp_path, files={})
    b.put(post(rel="../../etc/passwd"), exchange="xs_alice")
    flow.run_once()
    [rep] = [decoded(o) for o in b.published if o.exchange == "xreport"]
    assert rep.report.code == 403
    assert len(b.acked) == 1


def test_same_file_twice_from_one_source_is_reposted_once(tmp_path):
    b, flow = setup(tmp_path, "suppress_duplicates 60\n", {"tree/f.txt": DATA})
    b.put(post(), exchange="xs_alice")
    b.put(post(), exchange="xs_alice")
    flow.run_once()
    assert len([o for o in b.published if o.exchange == "xpublic"]) == 1
    codes = sorted(decoded(o).report.code for o in b.published if o.exchange == "xreport")
    assert codes == [201, 304]


@pytest.mark.parametrize("basis", ["path", "name", "data"])
@pytest.mark.parametrize("claimed", [None, "alice", "bob"])
def test_a_source_posting_anothers_file_first_does_not_make_it_a_duplicate(
    tmp_path, basis, claimed
):
    b, flow = setup(tmp_path, f"suppress_duplicates 60\nsuppress_basis {basis}\n")
    first = post() if claimed is None else post(source=claimed)
    b.put(first, exchange="xs_eve")
    b.put(post(source="alice"), exchange="xs_alice")
    flow.run_once()
    pubs = [decoded(o) for o in b.published if o.exchange == "xpublic"]
    assert sorted(p.headers["source"] for p in pubs) == ["alice", "eve"]
    reports = [decoded(o) for o in b.published if o.exchange == "xreport"]
    assert sorted(r.report.code for r in reports) == [201, 201]
    assert (tmp_path / "tree" / pubs[0].relpath).read_bytes() == DATA


def test_same_bytes_at_another_path_are_reposted_unless_basis_is_data(tmp_path):
    files = {"tree/f.txt": DATA, "other/g.txt": DATA}
    b, flow = setup(tmp_path, "suppress_duplicates 60\n", files)
    b.put(post(), exchange="xs_alice")
    b.put(post(rel="other/g.txt"), exchange="xs_eve")
    flow.run_once()
    assert len([o for o in b.published if o.exchange == "xpublic"]) == 2
    (tmp_path / "d").mkdir()
    b, flow = setup(tmp_path / "d", "suppress_duplicates 60\nsuppress_basis data\n", files)
    b.put(post(), exchange="xs_alice")
    b.put(post(rel="other/g.txt"), exchange="xs_alice")
    flow.run_once()
    assert len([o for o in b.published if o.exchange == "xpublic"]) == 1


def test_redelivery_after_crash_before_post_is_processed(tmp_path):
    b, flow = setup(tmp_path, "suppress_duplicates 60\n")
    r = b.put(post(), exchange="xs_alice")
    b.lose_connection_on = "publish"
    try:
        flow.run_once()
    except Exception:
        pass
    assert not b.acked
    b.queue.append(r)  # the broker redelivers it
    flow.run_once()
    assert len([o for o in b.published if o.exchange == "xpublic"]) == 1


def test_redelivery_after_confirmed_post_is_not_reposted(tmp_path):
    b, flow = setup(tmp_path, "suppress_duplicates 60\n")
    r = b.put(post(), exchange="xs_alice")
    flow.run_once()
    b.queue.append(r)  # as if the ack had been lost in a crash
    flow.run_once()
    assert len([o for o in b.published if o.exchange == "xpublic"]) == 1


def test_relay_keeps_source_and_from_cluster_and_ignores_other_clusters(tmp_path):
    b, flow = setup(tmp_path, "source_from_exchange off\nexchange xpublic\ndirectory ${PBD}\n")
    b.put(post(source="alice", from_cluster="Q", to_clusters="A"), exchange="xpublic")
    b.put(post(rel="tree/g.txt", source="alice", from_cluster="Q", to_clusters="B"))
    b.put(post(rel="tree/h.txt", source="alice", from_cluster="A", to_clusters="A"))
    flow.run_once()
    [pub] = [decoded(o) for o in b.published if o.exchange == "xpublic"]
    assert pub.relpath == "tree/f.txt"
    assert pub.headers["source"] == "alice" and pub.headers["from_cluster"] == "Q"
    assert len([o for o in b.published if o.exchange == "xreport"]) == 1
    assert len(b.acked) == 3


# ---------------------------------------------------------------- dd_shovel


class RemoteBrokers:
    def __init__(self):
        self.made = {}

    def __call__(self, url):
        return self.made.setdefault(url, FakeBroker())


def shovel_setup(tmp_path: Path, text: str):
    from sarra.roles import shovel

    conf = tmp_path / "r.conf"
    conf.write_text("broker amqp://feeder@localhost/\n" + text)
    o = load("shovel", str(conf), (), Paths.under(tmp_path / "home"), defaults=shovel.DEFAULTS)
    ctx = FakeCtx(o, tmp_path / "state", {})
    remote = RemoteBrokers()
    ctx.broker = lambda url, what="": remote(url)
    b = FakeBroker()
    return b, shovel.build(ctx, b, b), remote


def rep(user="bob", **headers):
    return message.make_report(post(**headers), 201, "Downloaded", "h", user, 0.1)


def test_report_router_routes_each_report_one_hop(tmp_path):
    b, flow, remote = shovel_setup(
        tmp_path,
        "report_router on\ncluster B\ndeclare source carol\ndeclare subscriber bob\n"
        "report_route A amqp://up@a/\n",
    )
    b.put(rep(user="bob", source="carol", from_cluster="B"), exchange="xs_bob")
    b.put(rep(user="mallory", source="carol", from_cluster="B"), exchange="xs_bob")
    b.put(rep(source="carol", from_cluster="B"), exchange="xreport")
    b.put(rep(source="alice", from_cluster="A"), exchange="xreport")
    b.put(rep(source="dave", from_cluster="B"), exchange="xreport")
    flow.run_once()
    assert [o.exchange for o in b.published] == ["xreport", "xr_carol"]
    [up] = remote.made["amqp://up@a/"].published
    assert up.exchange == "xreport" and decoded(up).headers["source"] == "alice"
    assert len(b.acked) == 5


def test_plain_shovel_copies_selected_notices_unchanged(tmp_path):
    b, flow, _ = shovel_setup(tmp_path, "exchange xpublic\npost_exchange xcopy\nreject .*skip.*\n")
    n = post(source="alice")
    b.put(n)
    b.put(post(rel="tree/skip.txt"))
    flow.run_once()
    [out] = b.published
    assert out.exchange == "xcopy" and decoded(out).headers == n.headers
    assert len(b.acked) == 2
