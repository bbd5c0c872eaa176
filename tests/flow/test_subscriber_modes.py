"""The modes a Sarracenia user runs a subscriber in, with the lines v2 and sr3 write:

* a subscriber with ``post_broker``/``post_exchange_suffix``/``post_base_url``/
  ``post_base_dir`` announces its *local copy*: a second subscriber downloads every file
  from the first's tree, over the first's own web server;
* ``notify_only``: nothing fetched, the notices posted on as they came;
* ``discard`` + ``delete``: each file is handed to an ``on_file`` script, then deleted
  here, and the source file is deleted once the copy was verified.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.fixtures.waiting import wait_for
from tests.flow.conftest import count_files, listing

pytestmark = [pytest.mark.flow]

NAMES = ["a.txt", "sub dir/b #2.txt", "deep/er/c.bin", "d%zz.txt"]


def make_source(root: Path) -> dict:
    for i, name in enumerate(NAMES):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(f"content {i}\n".encode() * (i + 1))
    return listing(root)


def stop_all(fe, *procs) -> str:
    text = ""
    for proc in procs:
        rc = fe.terminate(proc)
        log = fe.log_text(proc)
        assert rc == 0 and "Traceback" not in log, log[-3000:]
        text += log
    return text


def test_a_subscriber_announces_its_local_copy_to_the_next(flowenv, http_server, http_server2):
    fe, www, mirror = flowenv, http_server.root, http_server2
    want = make_source(www / "src")
    first_tree, dst = mirror.root, fe.root / "dst"
    fe.config(
        "subscribe", "first",  # as v2's guides write it
        f"exchange xs_guest\ndirectory {first_tree}/copy\nmirror True\naccept .*\n"
        f"post_broker {fe.broker}\npost_exchange_suffix relay\n"
        f"post_base_url {mirror.url}\npost_base_dir {first_tree}\n",
    )  # fmt: skip
    fe.config(
        "subscribe", "second",  # and as sr3's
        f"exchangeSuffix relay\ndirectory {dst}\nmirror True\nacceptUnmatched on\n",
    )  # fmt: skip
    fe.run("dd_subscribe", "declare", "first")
    fe.run("dd_subscribe", "declare", "second")
    fe.post("-u", http_server.url, "-pbd", str(www), str(www / "src"))
    first, second = fe.foreground("first"), fe.foreground("second")
    ok = wait_for(lambda: count_files(dst) >= len(NAMES), 60, fail=False)
    text = stop_all(fe, first, second)
    assert ok, text[-3000:]
    fetched = {path for method, path, _ in mirror.requests if method == "GET"}
    assert listing(dst / "copy" / "src") == want  # every file, from the first's tree
    assert len(fetched) == len(NAMES) and all(p.startswith("/copy/src/") for p in fetched)
    assert "not used by dd_subscribe" not in text


def test_notify_only_posts_the_notices_on_without_fetching(flowenv, http_server):
    fe, www = flowenv, http_server.root
    want = make_source(www / "src")
    idle, dst = fe.root / "idle", fe.root / "dst"
    fe.config(
        "subscribe", "notes",
        f"exchange xs_guest\ndirectory {idle}\nnotify_only on\n"
        f"post_broker {fe.broker}\npost_exchange xs_guest_notes\n",
    )  # fmt: skip
    fe.config("subscribe", "reader", f"exchange xs_guest_notes\ndirectory {dst}\nmirror True\n")
    fe.run("dd_subscribe", "declare", "notes")
    fe.run("dd_subscribe", "declare", "reader")
    fe.post("-u", http_server.url, "-pbd", str(www), str(www / "src"))
    notes, reader = fe.foreground("notes"), fe.foreground("reader")
    ok = wait_for(lambda: count_files(dst) >= len(NAMES), 60, fail=False)
    text = stop_all(fe, notes, reader)
    assert ok, text[-3000:]
    assert listing(dst / "src") == want  # fetched from the source, as announced there
    assert not idle.exists()  # the notify-only subscriber fetched nothing


SCRIPT = """#!/bin/sh
cp "$1" {keep}/
"""


def test_discard_and_delete_hand_each_file_on_and_keep_nothing(flowenv):
    fe = flowenv
    src, here, keep = fe.root / "outbox", fe.root / "here", fe.root / "kept"
    keep.mkdir()
    src.mkdir()
    sums = {}
    for i in range(5):
        data = f"file {i}\n".encode() * 50
        (src / f"f{i}.txt").write_bytes(data)
        sums[f"f{i}.txt"] = hashlib.md5(data).hexdigest()
    script = fe.root / "hand on.sh"
    script.write_text(SCRIPT.format(keep=keep))
    script.chmod(0o755)
    fe.config(
        "subscribe", "once",
        f"exchange xs_guest\ndirectory {here}\nfile_sources {src}\nstrip {len(src.parts) - 1}\n"
        f"on_file '{script}'\ndiscard on\ndelete on\n",
    )  # fmt: skip
    fe.run("dd_subscribe", "declare", "once")
    fe.post("-u", "file:", str(src))
    proc = fe.foreground("once")
    ok = wait_for(lambda: count_files(keep) >= 5 and not any(src.iterdir()), 60, fail=False)
    text = stop_all(fe, proc)
    assert ok, text[-3000:]
    assert {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in keep.iterdir()} == sums
    assert count_files(here) == 0  # discarded once the script had it
    assert text.count("discarded ") == 5
