"""Removals and renames announced by dd_post reach the subscriber's tree (spec 8.1, 8.4).

``dd_post --remove PATH`` (``-rm``) announces PATH as removed (it need not exist any
more); ``dd_post --moved_from OLD NEW`` (``-mv``) announces a rename of a file or a whole
directory as the R+newname / post+oldname pairs.
"""

from __future__ import annotations

import os

import pytest

from tests.fixtures.waiting import wait_for
from tests.flow.conftest import listing

pytestmark = [pytest.mark.flow]


def test_removal_and_renames_propagate_without_downloading_again(flowenv, http_server):
    fe, www = flowenv, http_server.root
    src, dst = www / "t", fe.root / "dst"
    (src / "dir1" / "sub").mkdir(parents=True)
    for rel, text in [("a.txt", "aaa"), ("gone.txt", "bye"), ("dir1/x", "x"),
                      ("dir1/sub/y", "yy"), ("stay #1.txt", "s")]:  # fmt: skip
        (src / rel).write_text(text)
    os.symlink("a.txt", src / "link")
    fe.config("subscribe", "rr", f"exchange xs_guest\ndirectory {dst}\nmirror True\n")
    fe.run("dd_subscribe", "declare", "rr")
    fe.post("-u", http_server.url, "-pbd", str(www), str(src))
    proc = fe.foreground("rr")
    try:
        assert wait_for(lambda: listing(dst / "t") == listing(src), 60, fail=False), fe.log_text(
            proc
        )

        (src / "gone.txt").unlink()
        fe.post("-u", http_server.url, "-pbd", str(www), "-rm", str(src / "gone.txt"))
        assert wait_for(lambda: not (dst / "t" / "gone.txt").exists(), 60, fail=False), fe.log_text(
            proc
        )

        gets_before = len(http_server.requests)
        os.rename(src / "a.txt", src / "b.txt")
        fe.post("-u", http_server.url, "-pbd", str(www), "-mv", str(src / "a.txt"),
                str(src / "b.txt"))  # fmt: skip
        os.rename(src / "dir1", src / "dir2")
        fe.post("-u", http_server.url, "-pbd", str(www), "-mv", str(src / "dir1"),
                str(src / "dir2"))  # fmt: skip
        assert wait_for(lambda: listing(dst / "t") == listing(src), 60, fail=False), (
            f"{listing(dst / 't')}\n{fe.log_text(proc)[-3000:]}"
        )
    finally:
        rc = fe.terminate(proc)
    log = fe.log_text(proc)
    assert rc == 0 and "Traceback" not in log, log[-3000:]
    assert not (dst / "t" / "dir1").exists()
    assert (dst / "t" / "link").is_symlink()
    # the renamed files were moved locally, not fetched again
    assert http_server.requests[gets_before:] == []
