"""sarra against MetPX-Sarracenia 3 (metpx-sr3 3.3.1), both directions, v03 and v02
(issue 17).

Each test runs the real programs: ``dd_post``/``dd_subscribe`` from this tree and sr3's
``sr3_post``/``sr3 watch``/``sr3 subscribe`` from the venv ``tools/sr3env`` makes
(``$SARRA_SR3ENV``, default ``<repo>/.sr3env``; without it these tests skip, or fail
under CI), on a private vhost with files served by the loopback range HTTP server.  The
``lab`` of ``conftest.py`` serves both generations: its "v2" side runs the sr3 venv's
programs here.  Files are compared by MD5.  sr3 polls its queue with a back-off: its
consumers are given 40 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from tests.fixtures import rabbit as rmq
from tests.fixtures.require import require
from tests.fixtures.servers import HttpServer
from tests.fixtures.waiting import wait_for
from tests.interop.conftest import REPO, Capture, Captured, Lab, dump
from tests.interop.test_v2_interop import pattern, wait_identical, write

pytestmark = [pytest.mark.interop, pytest.mark.integration]

SR3_WAIT = 40.0


def sr3env_path() -> Path:
    return Path(os.environ.get("SARRA_SR3ENV") or REPO / ".sr3env")


@pytest.fixture(scope="session")
def sr3bin() -> Path:
    env = sr3env_path()
    ready = (env / ".sr3env-complete").exists() and (env / "bin" / "sr3").exists()
    require(ready, f"no metpx-sr3 venv at {env} (run tools/sr3env to make it)")
    return env / "bin"


@pytest.fixture
def lab(sr3bin: Path, http_server: HttpServer, tmp_path: Path) -> Iterator[Lab]:  # noqa: F811
    """The interop lab with sr3 as its other side, on a vhost named without a leading
    slash (sr3 strips the slashes of a broker URL's path, spec 10.6)."""
    rmq.require_rabbit()
    vhost = f"{os.environ.get(rmq.VHOST_PREFIX_ENV, 't')}_sr3_{uuid.uuid4().hex[:8]}"
    rmq.add_vhost(vhost)
    capture = the_lab = None
    try:
        capture = Capture(rmq.amqp_url(vhost))
        the_lab = Lab(tmp_path, vhost, http_server, sr3bin, capture)
        yield the_lab
    finally:
        if the_lab is not None:
            the_lab.stop_all()
        if capture is not None:
            capture.close()
        rmq.delete_vhost(vhost)


def sr3_conf(lab: Lab, component: str, name: str, text: str) -> Path:
    path = lab.home("v2") / ".config" / "sr3" / component / f"{name}.conf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def sr3_poster(lab: Lab, name: str = "lab", base_url: str = "", extra: str = "") -> None:
    sr3_conf(
        lab, "post", name,
        f"post_broker {lab.v2_url}\npost_exchange xs_guest\n"
        f"post_baseUrl {base_url or lab.base_url}\npost_baseDir {lab.data}\n{extra}",
    )  # fmt: skip


def sr3_subscriber(lab: Lab, dl: Path, extra: str = "") -> None:
    sr3_conf(
        lab, "subscribe", "lab",
        f"broker {lab.v2_url}\nexchange xs_guest\ndirectory {dl}\nmirror True\n{extra}"
        "accept .*\n",
    )  # fmt: skip
    lab.start("v2", "sr3", "foreground", "subscribe/lab")
    lab.wait_bound("q_guest.subscribe", timeout=60)


def dd_subscriber(lab: Lab, dl: Path, prefix: str = "v03") -> None:
    lab.dd_subscriber("lab", dl, f"topic_prefix {prefix}\n")
    lab.start("dd", "dd_subscribe", "foreground", "lab")
    lab.wait_bound("q_guest.dd_subscribe")


def v03(messages: List[Captured], kind: str = "post") -> List[dict]:
    """The JSON bodies of the v03 messages captured, posts or reports."""
    out = []
    for m in messages:
        if m.body.startswith("{"):
            body = json.loads(m.body)
            if ("report" in body) == (kind == "report"):
                out.append({**body, "_topic": m.topic})
    return out


ODD = {
    "sr3/hello.txt": b"Hello, world!\n",
    "sr3/empty.txt": b"",
    "sr3/odd dir/file #1 \u00e9.txt": b"odd\n",
    "sr3/a.b.c/sp ace.bin": pattern(70_000, 11, 5),
}


# --------------------------------------------------------------- sr3 -> dd_subscribe


def test_dd_subscribe_downloads_what_sr3_post_posts_in_v03(lab: Lab) -> None:
    sources = {write(lab.data / rel, data): rel for rel, data in ODD.items()}
    link = lab.data / "sr3" / "hello.lnk"
    os.symlink("hello.txt", link)
    dl = lab.root / "dl_dd"
    dd_subscriber(lab, dl)
    sr3_poster(lab)
    for src in [*sources, link]:
        lab.run("v2", "sr3_post", "-c", "lab", str(src))
    wait_identical({s: dl / rel for s, rel in sources.items()}, 30, "dd_subscribe of sr3 posts")
    wait_for((dl / "sr3" / "hello.lnk").is_symlink, 30, "the symbolic link")
    assert os.readlink(dl / "sr3" / "hello.lnk") == "hello.txt"
    posts = v03(lab.capture.drain())
    assert {p["_topic"] for p in posts} >= {"v03.sr3", "v03.sr3.odd dir"}, dump(lab.capture.seen)
    # dd_subscribe reports in the format of the post: v03, which sr3 reads
    reports = wait_for(lambda: len(v03(lab.capture.drain(), "report")) >= 5 and v03(
        lab.capture.seen, "report"), 20, "dd_subscribe's v03 reports")  # fmt: skip
    assert {r["report"]["code"] for r in reports} == {201}
    assert all(r["_topic"].startswith("v03.report.sr3") for r in reports)
    assert sr3_reads(lab, [m for m in lab.capture.seen if m.body.startswith("{")])


def test_dd_subscribe_writes_sr3_inline_content_without_a_fetch(lab: Lab) -> None:
    files = {"inl/t.txt": b"inline text\n", "inl/b.bin": bytes(range(200))}
    sources = {write(lab.data / rel, data): rel for rel, data in files.items()}
    dl = lab.root / "dl_dd"
    dd_subscriber(lab, dl)
    sr3_poster(lab, "inl", base_url="http://127.0.0.1:9/", extra="inline on\n")
    for src in sources:
        lab.run("v2", "sr3_post", "-c", "inl", str(src))
    wait_identical({s: dl / rel for s, rel in sources.items()}, 30, "inline files")
    assert all("content" in p for p in v03(lab.capture.drain())), dump(lab.capture.seen)


def test_dd_subscribe_follows_a_removal_and_a_rename_from_sr3_watch(lab: Lab) -> None:
    watched = lab.data / "watched"
    watched.mkdir()
    dl = lab.root / "dl_dd"
    dd_subscriber(lab, dl)
    sr3_conf(
        lab, "watch", "lab",
        f"post_broker {lab.v2_url}\npost_exchange xs_guest\npost_baseUrl {lab.base_url}\n"
        f"post_baseDir {lab.data}\npath {watched}\nfileEvents create,delete,link,modify\n",
    )  # fmt: skip
    lab.start("v2", "sr3", "foreground", "watch/lab")
    wait_for(lambda: "xs_guest" in rmq.rabbitmqctl("list_exchanges", "-p", lab.vhost), 30)

    def until_posted(action, path: Path, what: str) -> None:
        # sr3 watch has no "ready" state: repeat the change until it is announced
        def seen() -> bool:
            return any(p["relPath"] == path.relative_to(lab.data).as_posix()
                       for p in v03(lab.capture.drain()))  # fmt: skip

        action()
        wait_for(seen, 30, what)

    until_posted(lambda: write(watched / "gone.txt", b"x\n"), watched / "gone.txt", "create")
    wait_for((dl / "watched" / "gone.txt").is_file, 30, "gone.txt to arrive")
    (watched / "gone.txt").unlink()
    wait_for(lambda: not (dl / "watched" / "gone.txt").exists(), 30, "gone.txt removal")
    write(watched / "before.txt", b"y\n")
    wait_for((dl / "watched" / "before.txt").is_file, 30, "before.txt to arrive")
    (watched / "before.txt").rename(watched / "after.txt")
    wait_for((dl / "watched" / "after.txt").is_file, 30, "the rename to after.txt")
    assert (dl / "watched" / "after.txt").read_bytes() == b"y\n"
    renames = [p for p in v03(lab.capture.drain()) if "rename" in p.get("fileOp", {})]
    assert renames, dump(lab.capture.seen)
    # sr3 3.3.1 names the old file by its absolute path on the poster (doc/v03.rst note
    # 8): no such file below dd_subscribe's tree, so the move is a download and
    # before.txt stays; a v2-style R+newname pair would have removed it


# --------------------------------------------------------------- dd_post -> sr3


def test_sr3_subscribe_downloads_what_dd_post_posts_in_v03(lab: Lab) -> None:
    files = {rel.replace("sr3/", "dd/"): data for rel, data in ODD.items()}
    sources = {write(lab.data / rel, data): rel for rel, data in files.items()}
    link = lab.data / "dd" / "hello.lnk"
    os.symlink("hello.txt", link)
    dl = lab.root / "dl_sr3"
    sr3_subscriber(lab, dl)
    lab.dd_post(*sources, link, extra=("--post_format", "v03"))
    wait_identical({s: dl / rel for s, rel in sources.items()}, SR3_WAIT, "sr3 downloads")
    wait_for((dl / "dd" / "hello.lnk").is_symlink, SR3_WAIT, "sr3 to make the link")
    assert os.readlink(dl / "dd" / "hello.lnk") == "hello.txt"
    posts = v03(lab.capture.drain())
    assert len(posts) == 5 and {p["_topic"] for p in posts} == {"v03.dd", "v03.dd.odd dir",
                                                                "v03.dd.a.b.c"}  # fmt: skip

    lab.dd_post(*[s for s in sources if s.name == "hello.txt"], extra=("--remove", "on",
                "--post_format", "v03"))  # fmt: skip
    wait_for(lambda: not (dl / "dd" / "hello.txt").exists(), SR3_WAIT, "sr3 to remove hello.txt")


def test_sr3_subscribe_downloads_what_dd_post_posts_in_v02(lab: Lab) -> None:
    files = {"dd2/hello.txt": b"Hello, v02!\n", "dd2/big.bin": pattern(300_000, 7, 3)}
    sources = {write(lab.data / rel, data): rel for rel, data in files.items()}
    dl = lab.root / "dl_sr3"
    sr3_subscriber(lab, dl, "topicPrefix v02.post\n")
    lab.dd_post(*sources)
    wait_identical({s: dl / rel for s, rel in sources.items()}, SR3_WAIT, "sr3 v02 downloads")


# --------------------------------------------------------------- sr3 reads ours


SR3_IMPORT = """
import json, sys
from sarracenia.postformat import PostFormat
for line in sys.stdin:
    m = json.loads(line)
    ct = 'application/json' if m['body'].startswith('{') else 'text/plain'
    msg = PostFormat.importAny(m['body'], {'topic': m['topic'], **m['headers']}, ct, {})
    ok = msg is not None and all(k in msg for k in ('pubTime', 'baseUrl', 'relPath'))
    print(json.dumps(ok))
"""


def sr3_reads(lab: Lab, messages: List[Captured]) -> bool:
    """sr3's own decoder (``PostFormat.importAny``) takes every one of ``messages``."""
    lines = "".join(json.dumps({"topic": m.topic, "headers": m.headers, "body": m.body},
                               default=str) + "\n" for m in messages)  # fmt: skip
    proc = subprocess.run([str(lab.v2bin / "python"), "-c", SR3_IMPORT], input=lines, text=True,
                          capture_output=True, timeout=60, env=lab.env("v2"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    results: Dict[int, bool] = dict(enumerate(json.loads(x) for x in proc.stdout.split()))
    assert len(results) == len(messages) and all(results.values()), proc.stdout
    return True


# --------------------------------------------------------------- a mixed switch


def test_a_mixed_exchange_delivers_every_file_once_to_both_generations(lab: Lab) -> None:
    """dd_post posting v02 and sr3_post posting v03 on one exchange; dd_subscribe and sr3
    subscribe each bound to both prefixes: every file arrives once at each."""
    v2_files = {f"mix/v2/f{i}.txt": f"from dd_post {i}\n".encode() for i in range(3)}
    v3_files = {f"mix/v3/g{i}.bin": pattern(1000 + i, 3, i) for i in range(3)}
    files = {**v2_files, **v3_files}
    sources = {write(lab.data / rel, data): rel for rel, data in files.items()}
    dl_dd, dl_sr3 = lab.root / "dl_dd", lab.root / "dl_sr3"
    dd_subscriber(lab, dl_dd, "v02.post,v03")
    sr3_subscriber(lab, dl_sr3, "topicPrefix v02.post\nsubtopic #\ntopicPrefix v03\nsubtopic #\n")
    sr3_poster(lab)
    lab.dd_post(*[s for s, rel in sources.items() if rel in v2_files])
    for src in [s for s, rel in sources.items() if rel in v3_files]:
        lab.run("v2", "sr3_post", "-c", "lab", str(src))
    wait_identical({s: dl_dd / rel for s, rel in sources.items()}, 30, "dd_subscribe (mixed)")
    wait_identical({s: dl_sr3 / rel for s, rel in sources.items()}, SR3_WAIT, "sr3 (mixed)")

    def dd_reports() -> Dict[str, int]:
        counts: Dict[str, int] = {}
        for m in lab.capture.drain():
            n = None
            if m.topic.startswith(("v02.report", "v03.report")):
                n = json.loads(m.body)["relPath"] if m.body.startswith("{") else m.fields[2]
            if n is not None:
                counts[n.lstrip("/")] = counts.get(n.lstrip("/"), 0) + 1
        return counts

    wait_for(lambda: set(dd_reports()) >= set(files), 20, "dd_subscribe's reports")
    assert dd_reports() == dict.fromkeys(files, 1)  # each file fetched and reported once
    log = (lab.root / "v2_sr3_1.log").read_text(errors="replace")
    for rel in files:
        assert log.count(f"downloaded ok: {dl_sr3 / rel} ") == 1, log[-3000:]
