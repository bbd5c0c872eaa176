"""Hostile notices against the local tree of a real dd_subscribe and a real dd_sara
(issue 13, classes 1, 2, 3, 5, 6).

Each test publishes crafted notices straight into the daemon's exchange with pika: link
notices whose targets leave the tree, posts of names where links were planted (at the
inflight name, at the final name, at a parent directory; by a notice or on disk),
hostile ``${SOURCE}`` values, names too long, a file where a directory should be, and
``file:`` URLs naming this host's own files.  Then one ordinary file is posted with
dd_post.  Asserted: the victim files outside the tree keep their bytes and their mode,
nothing is written outside, the daemon is still running and the ordinary file arrives.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

import pika
import pytest

from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.flow, pytest.mark.integration]

EVIL = b"attacker bytes\n"
PUBTIME = "20260101000000.000"


class Victims:
    """Files and a directory outside every tree, with their content and mode."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sarra-victims."))
        self.files: Dict[Path, Tuple[bytes, int]] = {}
        for name in ("victim1", "victim2", "victim3", "shadow"):
            p = self.dir / name
            p.write_bytes(f"precious {name}\n".encode())
            p.chmod(0o600)
            self.files[p] = (p.read_bytes(), 0o600)
        self.empty = self.dir / "empty"
        self.empty.mkdir()

    def check(self) -> None:
        for p, (data, mode) in self.files.items():
            assert p.read_bytes() == data, f"{p} was overwritten"
            assert stat.S_IMODE(p.stat().st_mode) == mode, f"{p} was chmod-ed"
        assert sorted(os.listdir(self.dir)) == sorted([p.name for p in self.files] + ["empty"])
        assert os.listdir(self.empty) == [], "something was written outside the tree"

    def close(self) -> None:
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def victims():
    v = Victims()
    try:
        yield v
    finally:
        v.close()


def post_msg(base: str, rel: str, **headers: str) -> Tuple[str, dict, bytes]:
    topic_dirs = ".".join(p for p in rel.split("/")[:-1] if p and p not in ("#", "*"))
    topic = "v02.post" + (f".{topic_dirs}" if topic_dirs else "")
    return topic[:200], headers, f"{PUBTIME} {base} {rel}".encode()


def file_msg(base: str, rel: str, data: bytes = EVIL, **extra: str) -> Tuple[str, dict, bytes]:
    h = {"sum": "d," + hashlib.md5(data).hexdigest(), "parts": f"1,{len(data)},1,0,0",
         "mode": "777", "mtime": PUBTIME, "atime": PUBTIME}  # fmt: skip
    h.update(extra)
    return post_msg(base, rel, **h)


def link_msg(base: str, rel: str, target: str) -> Tuple[str, dict, bytes]:
    return post_msg(base, rel, sum="L," + hashlib.md5(target.encode()).hexdigest(), link=target)


def publish(url: str, exchange: str, msgs: List[Tuple[str, dict, bytes]]) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = conn.channel()
        for topic, headers, body in msgs:
            props = pika.BasicProperties(headers=headers, delivery_mode=2)
            ch.basic_publish(exchange, topic, body, props)
    finally:
        conn.close()


def link_attacks(base: str, v: Victims, prefix: str) -> List[Tuple[str, dict, bytes]]:
    """Classes 1 and 2: links by notice, then posts of the names they would redirect."""
    out = [
        link_msg(base, f"{prefix}dir/name.tmp", str(v.dir / "victim1")),
        link_msg(base, f"{prefix}dir/name2", str(v.dir / "victim1")),
        link_msg(base, f"{prefix}out", str(v.empty)),
        link_msg(base, f"{prefix}up", "../../../../../../../../.."),
        link_msg(base, f"{prefix}dir/up2", "a/../../../../../../../../../.."),
        link_msg(base, f"{prefix}pw", "/etc/passwd"),
        file_msg(base, f"{prefix}dir/name"),
        file_msg(base, f"{prefix}dir/name2"),
        file_msg(base, f"{prefix}out/x"),
        file_msg(base, f"{prefix}up/x"),
        file_msg(base, f"{prefix}pre/name"),  # pre/name.tmp planted on disk -> victim2
        file_msg(base, f"{prefix}pre/final"),  # pre/final planted on disk -> victim3
        file_msg(base, f"{prefix}predir/x"),  # predir planted on disk -> outside
        file_msg(base, f"{prefix}chain/x"),  # chain -> c1, c1 -> .. planted: resolves out
    ]
    return out


def path_attacks(base: str, prefix: str) -> List[Tuple[str, dict, bytes]]:
    """Class 3: names the filesystem refuses."""
    return [
        file_msg(base, f"{prefix}{'n' * 300}"),
        file_msg(base, f"{prefix}{'/'.join(['d' * 250] * 17)}/f"),
        file_msg(base, f"{prefix}plain"),
        file_msg(base, f"{prefix}plain/under"),  # a file where a directory should be
    ]


def plant(tree: Path, prefix: str, v: Victims) -> None:
    """Links a local user or an older version left in the tree."""
    base = tree / prefix
    (base / "pre").mkdir(parents=True, exist_ok=True)
    (base / "pre" / "name.tmp").symlink_to(v.dir / "victim2")
    (base / "pre" / "final").symlink_to(v.dir / "victim3")
    (base / "predir").symlink_to(v.empty)
    (base / "c1").symlink_to("..")
    (base / "chain").symlink_to("c1/../" + os.path.relpath(v.empty, base.parent.parent))


def serve_evil(tree: Path, prefix: str) -> None:
    """The attacker's bytes on the HTTP server under every name posted."""
    for rel in ("dir/name", "dir/name2", "out/x", "up/x", "pre/name", "pre/final",
                "predir/x", "chain/x", "plain"):  # fmt: skip
        p = tree / prefix / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(EVIL)


def ordinary_file_arrives(flow, where: Path, name: str) -> None:
    src = flow.tree / "ordinary" / name
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(b"ordinary\n")
    flow.post("http", paths=[src])
    wait_for(lambda: (where / "ordinary" / name).is_file(), 60, f"{name} to arrive")
    assert (where / "ordinary" / name).read_bytes() == b"ordinary\n"


def test_dd_subscribe_cannot_be_made_to_write_outside_its_tree(make_flow, main_rabbit, victims):
    flow = make_flow(main_rabbit, files=1, mb_files=0)
    base = flow.base_urls["http"]
    serve_evil(flow.tree, "h/")
    dest = flow.kit.tmp / "dest" / "hostile"
    conf, queue = "sub_hostile", "q_guest.dd_subscribe.sub_hostile"
    flow.kit.write_config(
        "dd_subscribe",
        conf,
        f"broker {flow.url}\nexchange xs_guest_http\nqueue_name {queue}\n"
        f"directory {dest}/${{SOURCE}}\nmirror True\naccept .*\nretry_delay 1\n",
    )
    flow.kit.run("dd_subscribe", "declare", conf)
    plant(dest / "guest", "h/", victims)
    flow.kit.start("dd_subscribe", conf)
    msgs = [(t, {**h, "source": "guest"}, b) for t, h, b in link_attacks(base, victims, "h/")]
    msgs += [(t, {**h, "source": "guest"}, b) for t, h, b in path_attacks(base, "h/")]
    # class 6: hostile ${SOURCE} values
    escape = "../" + os.path.relpath(victims.empty, dest)
    for source in (escape, "a/b", "..", "", "\x01", "x" * 300):
        topic, headers, body = file_msg(base, "h/dir/name")
        msgs.append((topic, {**headers, "source": source}, body))
    # class 5: this host's own files named by a file: URL
    shadow = str(victims.dir / "shadow")
    for b, rel in (("file:/", shadow.lstrip("/")), ("file:", shadow), ("file:///", shadow)):
        msgs.append(post_msg(b, rel, sum="n,x", source="guest"))
    publish(flow.url, "xs_guest_http", msgs)
    ordinary_file_arrives(flow, dest / "guest", "after.txt")
    victims.check()
    assert not (dest / "guest" / "shadow").exists()
    assert not list(dest.rglob("shadow")), "a local file was copied in through file:"
    assert (dest / "guest" / "h" / "dir" / "name").read_bytes() == EVIL  # placed, not through
    assert not (dest / "guest" / "h" / "dir" / "name.tmp").is_symlink()
    for name in ("out", "up", "pw", "dir/up2"):
        assert not (dest / "guest" / "h" / name).is_symlink(), f"link {name} was made"
    assert flow.kit.pids("dd_subscribe", conf), "dd_subscribe must still be running"


def test_dd_sara_cannot_be_made_to_write_or_expose_outside_its_tree(
    make_flow, main_rabbit, victims
):
    flow = make_flow(main_rabbit, files=1, mb_files=0)
    base = flow.base_urls["http"]
    serve_evil(flow.tree, "s/")
    pump = flow.kit.tmp / "pump"
    plant(pump, "s/", victims)
    stage = flow.add_sara()
    msgs = link_attacks(base, victims, "s/") + path_attacks(base, "s/")
    shadow = str(victims.dir / "shadow")
    msgs.append(file_msg("file:/", shadow.lstrip("/"), data=b"precious shadow\n"))
    publish(flow.url, "xs_guest_http", msgs)
    ordinary_file_arrives(flow, pump, "after.txt")
    victims.check()
    assert not list(pump.rglob("shadow"))
    assert (pump / "s" / "dir" / "name").read_bytes() == EVIL
    for name in ("out", "up", "pw", "dir/up2"):
        assert not (pump / "s" / name).is_symlink(), f"link {name} was made"
    assert flow.kit.pids(stage.program, stage.conf), "dd_sara must still be running"
