"""``on_file <script>``: runs once per file placed, with the path and the message fields."""

from __future__ import annotations

import hashlib

import pytest

from tests.fixtures.waiting import wait_for
from tests.flow.conftest import count_files

pytestmark = [pytest.mark.flow]

SCRIPT = """#!/bin/sh
printf '%s|%s|%s|%s|%s\\n' "$1" "$SARRA_RELPATH" "$SARRA_SUM" "$SARRA_BASEURL" "$SARRA_SOURCE" \\
    >> {log}
case "$1" in *fails*) echo "cannot handle $1" >&2; exit 7;; esac
"""


def test_on_file_script_runs_once_per_file_with_path_and_fields(flowenv, http_server):
    fe, www = flowenv, http_server.root
    src, dst = www / "trig", fe.root / "dst"
    (src / "sub dir").mkdir(parents=True)
    names = [f"sub dir/f #{i}.txt" for i in range(20)] + ["fails.txt", "after.txt"]
    for i, name in enumerate(names):
        (src / name).write_text(f"content {i}\n")
    log = fe.root / "trigger.log"
    script = fe.root / "on file.sh"
    script.write_text(SCRIPT.format(log=log))
    script.chmod(0o755)
    fe.config(
        "subscribe", "trig",
        f"exchange xs_guest\ndirectory {dst}\nmirror True\non_file '{script}'\n",
    )  # fmt: skip
    fe.run("dd_subscribe", "declare", "trig")
    fe.post("-u", http_server.url, "-pbd", str(www), str(src))
    proc = fe.foreground("trig")
    ok = wait_for(
        lambda: log.exists() and len(log.read_text().splitlines()) >= len(names), 60, fail=False
    )
    # give a wrongly repeated trigger the chance to show up before stopping
    wait_for(lambda: len(log.read_text().splitlines()) > len(names), 1, fail=False)
    rc = fe.terminate(proc)
    text = fe.log_text(proc)
    assert ok and rc == 0, text[-3000:]
    assert count_files(dst) == len(names)

    lines = [line.split("|") for line in log.read_text().splitlines()]
    assert len(lines) == len(names)  # exactly once per file
    by_path = {fields[0]: fields for fields in lines}
    assert set(by_path) == {str(dst / "trig" / name) for name in names}
    for name in names:
        path, relpath, sum_, baseurl, source = by_path[str(dst / "trig" / name)]
        assert relpath == f"trig/{name}"
        assert sum_ == "d," + hashlib.md5((src / name).read_bytes()).hexdigest()
        assert baseurl == http_server.url
        assert source == "guest"
    # a failing script is logged with its name; the file stays and the daemon goes on
    assert "on file.sh" in text and "exit status 7" in text
    assert (dst / "trig" / "fails.txt").exists() and (dst / "trig" / "after.txt").exists()
    assert "Traceback" not in text
