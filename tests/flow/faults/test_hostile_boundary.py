"""Issue 13, classes 3 and 11: one message never stops a daemon; a deleted queue is noticed.

Against the real broker and a real ``dd_subscribe``: posts whose local placement fails
for good (a 256/300/1000-byte name component, a parent that is a file, a read-only or
immutable target directory), a plugin raising an unexpected exception, and a plugin that
kills the process (``os._exit``) on one message.  Each time: the daemon stays alive (or,
killed, does not crash-loop), each bad message gets one log line and a failure report,
the queue ends empty, nothing outside the tree changes, and a normal file posted
afterwards arrives.  Then a subscriber whose queue is deleted under it.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pika
import pytest

from sarra.core.message import format_time
from tests.fixtures import rabbit
from tests.fixtures.waiting import wait_for
from tests.flow.conftest import FlowEnv

pytestmark = [pytest.mark.flow, pytest.mark.integration]

GOOD = b"good!"


class Rig:
    """A subscriber config on ``xs_guest``, a publishing channel and a report queue."""

    def __init__(self, fe: FlowEnv, www: Path, base: str, extra: str = "") -> None:
        self.fe, self.www, self.base = fe, www, base
        self.dst = fe.root / "dst"
        self.dst.mkdir()
        fe.config(
            "subscribe",
            "bd",
            f"exchange xs_guest\ndirectory {self.dst}\nmirror True\nretry_delay 0.2\n{extra}",
        )
        fe.run("dd_subscribe", "declare", "bd")
        params = pika.URLParameters(f"amqp://guest:guest@localhost/{fe.vhost}")
        self.conn = pika.BlockingConnection(params)
        self.ch = self.conn.channel()
        self.ch.exchange_declare("xs_guest", "topic", durable=True)
        self.reports = self.ch.queue_declare("", exclusive=True).method.queue
        self.ch.queue_bind(self.reports, "xs_guest", "v02.report.#")

    def post(self, relpath: str, data: bytes = GOOD) -> None:
        md5 = hashlib.md5(data).hexdigest()
        headers = {"sum": f"d,{md5}", "parts": f"1,{len(data)},1,0,0", "to_clusters": "x"}
        body = f"{format_time(time.time())} {self.base} {relpath.replace(' ', '%20')}"
        self.ch.basic_publish(
            "xs_guest", "v02.post.bd", body, pika.BasicProperties(headers=headers)
        )

    def serve(self, relpath: str, data: bytes = GOOD) -> None:
        p = self.www / relpath
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)

    def codes(self) -> Dict[str, List[int]]:
        """Report codes by the report's relpath (as the body carries it)."""
        out: Dict[str, List[int]] = {}
        while True:
            method, _props, body = self.ch.basic_get(self.reports, auto_ack=True)
            if method is None:
                return out
            fields = body.decode().split(" ")
            out.setdefault(fields[2], []).append(int(fields[3]))

    def add_plugin(self, action: str) -> None:
        """The config runs a plugin whose ``on_message`` does ``action`` for poison files."""
        plugin = self.fe.root / "badhook.py"
        plugin.write_text(HOOK.replace("{action}", action))
        conf = self.fe.config_dir / "subscribe" / "bd.conf"
        conf.write_text(conf.read_text() + f"plugin {plugin}\n")

    def normal_file_then_stop(self, proc: Any) -> Tuple[bool, bool, bool, Dict, int]:
        """After the hostile posts: a normal file posted, then (arrived, the daemon alive,
        its queue emptied, the report codes, its exit status once terminated)."""
        self.serve("after/normal.txt")
        self.post("after/normal.txt")
        arrived = wait_for(lambda: (self.dst / "after" / "normal.txt").exists(), 60, fail=False)
        alive = proc.poll() is None
        emptied = wait_for(lambda: self.queue_counts() == (0, 0), 30, fail=False)
        codes = self.codes()
        return bool(arrived), alive, bool(emptied), codes, self.fe.terminate(proc)

    def queue_counts(self) -> Tuple[int, int]:
        queue = next(self.fe.state_dir("subscribe", "bd").glob("queue_name.*")).read_text()
        return rabbit.queue_counts(self.fe.vhost, queue.strip())

    def close(self) -> None:
        if self.conn.is_open:
            self.conn.close()


@pytest.fixture
def rig(flowenv, http_server):
    made: List[Rig] = []

    def make(extra: str = "") -> Rig:
        r = Rig(flowenv, http_server.root, http_server.url, extra)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def _victims(root: Path) -> Dict[Path, Tuple[bytes, int]]:
    """Files outside the tree that must keep their content and mode."""
    out = {}
    for i, name in enumerate(("victim", "bd/victim", "dst.txt")):
        p = root / "outside" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"victim %d" % i)
        p.chmod(0o600)
        out[p] = (p.read_bytes(), p.stat().st_mode)
    return out


def _unchanged(victims: Dict[Path, Tuple[bytes, int]]) -> bool:
    return all(p.read_bytes() == c and p.stat().st_mode == m for p, (c, m) in victims.items())


def _flow_lines(log: str, word: str) -> List[str]:
    """The daemon's lines for messages that failed for good: ERROR "failed ...", or a
    path refused before the disk is touched (safefs: INFO "rejected ...")."""
    return [
        ln
        for ln in log.splitlines()
        if (" ERROR " in ln and word in ln)
        or re.search(r" INFO (sarra\.flow\.engine: )?rejected ", ln)
    ]


#: what a line says for each errno: the errno's name (the boundary's text) or the
#: strerror / safefs's own words for a path refused before the disk is touched
SAYS = {
    "ENAMETOOLONG": "ENAMETOOLONG|longer than 255 bytes|File name too long",
    "ENOTDIR|EEXIST": "ENOTDIR|EEXIST|Not a directory|File exists|in the way|unusable",
    "EROFS": "EROFS|Read-only file system",
    "EPERM": "EPERM|Operation not permitted",
}


def _readonly_dirs(dst: Path) -> List[Tuple[str, List[str]]]:
    """Directories below ``dst`` that even root cannot write: a read-only tmpfs (EROFS)
    and an immutable directory (EPERM).  Each as (name, command to undo); those the
    machine cannot make are left out."""
    made = []
    ro = dst / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)],
                      capture_output=True).returncode == 0:  # fmt: skip
        made.append(("ro", ["umount", str(ro)]))
    imm = dst / "imm"
    imm.mkdir()
    if subprocess.run(["chattr", "+i", str(imm)], capture_output=True).returncode == 0:
        made.append(("imm", ["chattr", "-i", str(imm)]))
    return made


@pytest.mark.parametrize("threads", [1, 3])
def test_permanent_local_errors_are_reported_acked_and_the_daemon_goes_on(rig, threads):
    r = rig(f"threads {threads}\n")
    fe = r.fe
    victims = _victims(fe.root)
    (r.dst / "afile").write_bytes(b"a file, not a dir")
    (r.dst / "deep" / "x").mkdir(parents=True)
    (r.dst / "deep" / "x" / "f").write_bytes(b"also a file")
    undo = _readonly_dirs(r.dst)
    bad = {
        "long256/" + "n" * 256 + ".txt": "ENAMETOOLONG",
        "long300/" + "é" * 150 + ".txt": "ENAMETOOLONG",  # 300 bytes, 150 characters
        "long1000/" + "L" * 1000: "ENAMETOOLONG",
        "afile/child.txt": "ENOTDIR|EEXIST",  # mkdir of a name that is a file: EEXIST
        "deep/x/f/g/h.txt": "ENOTDIR|EEXIST",
    }
    for name, _cmd in undo:
        bad[f"{name}/blocked.txt"] = "EROFS" if name == "ro" else "EPERM"
    try:
        for rel in bad:
            r.serve(rel.split("/")[0] + "/served")  # the server has something; not these
            r.post(rel)
        proc = fe.foreground("bd")
        assert wait_for(
            lambda: len(_flow_lines(fe.log_text(proc), "failed ")) >= len(bad), 60, fail=False
        )
        arrived, alive, emptied, codes, rc = r.normal_file_then_stop(proc)
    finally:
        for _name, cmd in undo:
            subprocess.run(cmd, check=False)
    log = fe.log_text(proc)
    assert arrived and alive and emptied and rc == 0, log[-4000:]
    assert (r.dst / "after" / "normal.txt").read_bytes() == GOOD
    assert "Traceback" not in log, log[-4000:]
    failed = _flow_lines(log, "failed ")
    assert len(failed) == len(bad), failed
    for rel, errname in bad.items():
        head = rel[:40]
        mine = [ln for ln in failed if head in ln]
        assert len(mine) == 1 and re.search(SAYS[errname], mine[0]), (rel, errname, failed)
    assert all(len(ln) < 1000 for ln in failed)  # long names are cut
    failures = [c for rel, cs in codes.items() if not rel.startswith("after") for c in cs]
    assert len(failures) == len(bad) and all(c >= 400 for c in failures), codes
    assert codes.get("after/normal.txt") == [201], codes
    assert not list(fe.state_dir("subscribe", "bd").glob("retry.*/*.json"))
    assert _unchanged(victims)


HOOK = """
from sarra.hooks import Hook

class Bad(Hook):
    def on_message(self, d):
        if "poison" in d.notice.relpath:
            {action}
        return True
"""


@pytest.mark.parametrize(
    "action",
    ["raise KeyError('no such key')", "{}['x']", "raise ValueError('\\x1b[31mred\\x00' * 50)"],
)
def test_a_hook_raising_unexpectedly_is_retried_then_given_up(rig, action):
    r = rig("")
    fe = r.fe
    r.add_plugin(action)
    victims = _victims(fe.root)
    r.serve("p/poison.txt")
    r.post("p/poison.txt")
    proc = fe.foreground("bd")
    gave_up = wait_for(lambda: "giving up on p/poison.txt" in fe.log_text(proc), 60, fail=False)
    arrived, alive, emptied, codes, rc = r.normal_file_then_stop(proc)
    log = fe.log_text(proc)
    assert gave_up and arrived and alive and emptied and rc == 0, log[-4000:]
    assert log.count("Traceback") == 1, log[-4000:]  # the first error only
    assert len(_flow_lines(log, "unexpected error in the filter step of p/poison.txt")) == 3
    assert len(_flow_lines(log, "giving up on p/poison.txt after 3 unexpected errors")) == 1
    assert "\x1b" not in log and "\x00" not in log
    assert not (r.dst / "p" / "poison.txt").exists()
    assert codes.get("p/poison.txt") == [500, 500, 500], codes
    assert not list(fe.state_dir("subscribe", "bd").glob("retry.*/*.json"))
    assert _unchanged(victims)


def test_a_message_that_kills_the_process_is_given_up_after_three_crashes(rig):
    r = rig("")
    fe = r.fe
    r.add_plugin("import os; os._exit(7)")
    r.serve("k/poison.txt")
    r.post("k/poison.txt")
    codes = []
    for _ in range(3):
        proc = fe.foreground("bd")
        codes.append(proc.wait(60))
    assert codes == [7, 7, 7], fe.log_text(proc)[-3000:]
    proc = fe.foreground("bd")
    gave_up = wait_for(lambda: "given up: in hand at 3" in fe.log_text(proc), 60, fail=False)
    arrived, alive, emptied, reports, rc = r.normal_file_then_stop(proc)
    log = fe.log_text(proc)
    assert gave_up and arrived and alive and emptied and rc == 0, log[-4000:]
    assert len(_flow_lines(log, "k/poison.txt")) == 1
    assert "in hand at 3 consecutive crashes" in log
    assert reports.get("k/poison.txt") == [500], reports
    assert not list((fe.state_dir("subscribe", "bd") / "inhand").iterdir())


def test_a_deleted_queue_is_declared_again_and_delivery_resumes(rig):
    r = rig("")
    fe = r.fe
    proc = fe.foreground("bd")
    r.serve("q/before.txt")
    r.post("q/before.txt")
    assert wait_for(lambda: (r.dst / "q" / "before.txt").exists(), 60, fail=False), fe.log_text(
        proc
    )
    queue = next(fe.state_dir("subscribe", "bd").glob("queue_name.*")).read_text().strip()
    r.ch.queue_delete(queue)
    assert wait_for(lambda: "declaring it again" in fe.log_text(proc), 30, fail=False), fe.log_text(
        proc
    )

    def declared() -> bool:
        ch = r.conn.channel()
        try:
            ch.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            return False
        ch.close()
        return True

    assert wait_for(declared, 30, fail=False)
    for i in range(3):
        r.serve(f"q/after{i}.txt", b"after %d" % i)
        r.post(f"q/after{i}.txt", b"after %d" % i)
    arrived = wait_for(
        lambda: all((r.dst / "q" / f"after{i}.txt").exists() for i in range(3)), 60, fail=False
    )
    alive = proc.poll() is None
    rc = fe.terminate(proc)
    log = fe.log_text(proc)
    assert arrived and alive and rc == 0, log[-4000:]
    assert log.count("declaring it again") == 1
    assert "Traceback" not in log
    assert declared() and rabbit.queue_counts(fe.vhost, queue) == (0, 0)


@pytest.fixture
def net(rabbit, tmp_path):
    from tests.flow.switch_net import Net

    with Net(tmp_path, "A") as n:
        yield n


def test_dd_sara_survives_posts_it_cannot_place_and_reports_them(net, tmp_path):
    from sarra.core import message
    from tests.flow.test_switches import post, start_ingest, tree

    pub = net.tap("A", "xpublic")
    alice = net.user("alice")
    reports = net.tap("A", "xreport", "v02.report.#")
    www, _srv = start_ingest(net, tmp_path)
    planted = www / time.strftime("%Y%m%d", time.gmtime()) / alice / "afile"
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_bytes(b"a file where a directory is wanted")
    src = tree(tmp_path / "alice", {"ok/normal.txt": b"normal\n"})
    asrv = net.serve(src)
    bad = ["l/" + "n" * 300 + ".txt", "l/" + "é" * 200, "afile/child.txt", "afile/x/y.txt"]
    conn = pika.BlockingConnection(pika.URLParameters(net.url("A", "alice")))
    ch = conn.channel()
    for rel in bad:
        n = message.new_post(
            asrv.url, rel, {"sum": "d," + hashlib.md5(GOOD).hexdigest(), "parts": "1,5,1,0,0"}
        )
        enc = message.encode(n)
        ch.basic_publish(f"xs_{alice}", enc.topic, enc.body,
                         pika.BasicProperties(headers=enc.headers, delivery_mode=2))  # fmt: skip
    conn.close()
    got = reports.wait(lambda g: len(g) >= len(bad), 30, "the failure reports")
    post(net, "A", "alice", src, asrv.url, str(src / "ok"))
    [re_post] = pub.wait(lambda g: len(g) >= 1, 30, "the normal file re-posted")
    assert re_post.relpath.endswith("ok/normal.txt")
    assert all(p.poll() is None for p in net.procs), net.logs()
    # a name too long or a file in the way: refused before the disk is touched (403)
    assert all(r.report.code in (400, 403) for r in got), [r.report for r in got]
    assert len(got) == len(bad), [r.report for r in got]
    assert wait_for(
        lambda: net.messages("A", f"q_{net.user('feederA')}.dd_sara.A") == 0, 30, fail=False
    )
    log = net.logs()
    assert "Traceback" not in log
    assert len(_flow_lines(log, "failed ")) == len(bad), log
    assert planted.read_bytes() == b"a file where a directory is wanted"
