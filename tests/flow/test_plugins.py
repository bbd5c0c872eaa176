"""A Sarracenia user's plugins, unchanged, in a running dd_subscribe: ``on_message
msg_log`` and ``on_file file_log`` (sarra's built-ins, or v2's own files copied into
``~/.config/sarra/plugins`` as a user migrating from v2 has them) next to an sr3
``flowcb`` class that renames what it accepts."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from tests.fixtures.plugins import v2_plugin
from tests.fixtures.waiting import wait_for
from tests.flow.conftest import count_files

pytestmark = [pytest.mark.flow]

RENAMER = '''
import logging
from sarracenia.flowcb import FlowCB

logger = logging.getLogger(__name__)


class Renamer(FlowCB):
    """Adds renameSuffix to each file name; refuses names ending in .skip."""

    def __init__(self, options):
        super().__init__(options, logger)
        self.o.add_option("renameSuffix", "str", ".none")

    def after_accept(self, worklist):
        keep = []
        for m in worklist.incoming:
            if m["relPath"].endswith(".skip"):
                worklist.rejected.append(m)
            else:
                m["new_file"] += self.o.renameSuffix
                keep.append(m)
        worklist.incoming = keep

    def after_work(self, worklist):
        for m in worklist.ok:
            logger.info("renamer placed %s/%s", m["new_dir"], m["new_file"])
'''


@pytest.mark.parametrize("kind", ["built-in", "v2 files"])
def test_v2_plugins_and_an_sr3_flowcb_in_one_subscriber(flowenv, http_server, kind):
    fe, www = flowenv, http_server.root
    src, dst = www / "plug", fe.root / "dst"
    names = ["a.txt", "sub dir/b #2.txt", "c.skip", "d.txt"]
    for i, name in enumerate(names):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(f"content {i}\n")
    plugins = fe.config_dir / "plugins"
    plugins.mkdir(parents=True)
    (plugins / "renamer.py").write_text(RENAMER)
    if kind == "v2 files":  # found in the plugin directory before sarra's own
        for name in ("msg_log", "file_log"):
            shutil.copy(v2_plugin(name), plugins / f"{name}.py")
    fe.config(
        "subscribe", "plug",
        f"exchange xs_guest\ndirectory {dst}\nmirror True\n"
        "on_message msg_log\non_file file_log\n"
        "renameSuffix .renamed\nflowcb renamer.Renamer\n",
    )  # fmt: skip
    fe.run("dd_subscribe", "declare", "plug")
    fe.post("-u", http_server.url, "-pbd", str(www), str(src))
    proc = fe.foreground("plug")
    wanted = [n for n in names if not n.endswith(".skip")]
    ok = wait_for(lambda: count_files(dst) >= len(wanted), 60, fail=False)
    done = wait_for(lambda: "c.skip: rejected by plugin" in fe.log_text(proc), 30, fail=False)
    rc = fe.terminate(proc)
    text = fe.log_text(proc)
    assert ok and done and rc == 0, text[-3000:]

    for name in wanted:
        got = dst / "plug" / f"{name}.renamed"
        assert got.read_bytes() == (src / name).read_bytes(), name
        url = f"{http_server.url.rstrip('/')}/plug/{name}".replace(" ", "%20").replace("#", "%23")
        assert any("msg_log received: " in line and url in line for line in text.splitlines())
        assert f"file_log downloaded to: {got}" in text
        assert f"renamer placed {got.parent}/{got.name}" in text
    assert not (dst / "plug" / "c.skip").exists() and count_files(dst) == len(wanted)
    assert text.count("msg_log received: ") == len(names)  # c.skip too: it ran first
    assert "Traceback" not in text and "[ERROR]" not in text and " ERROR " not in text
    md5 = hashlib.md5((src / "a.txt").read_bytes()).hexdigest()
    assert f"sum=d,{md5}" in text  # msg_log shows the headers
