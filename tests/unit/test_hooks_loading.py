"""Finding plugins as v2 and sr3 find them, sarra's built-in plugins under their v2 and
sr3 names, trigger scripts, native Hook classes, and the errors at start-up."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sarra.core.delivery import FAILED, REJECTED
from sarra.core.errors import ConfigError
from sarra.hooks import ScriptHook
from tests.fixtures.plugins import config, delivery, hooks, write_plugin

REPO = Path(__file__).resolve().parents[2]

NATIVE = """
from sarra.hooks import Hook

class Tagger(Hook):
    def on_message(self, d):
        d.notice = d.notice.with_headers(tagged=self.options.config)
        return True
"""


def labels(hs):
    return [h.label for h in hs.hooks]


def test_on_file_runs_a_script_when_no_plugin_has_that_name(tmp_path):
    script = write_plugin(tmp_path / "bin", "done.sh", "#!/bin/sh\nexit 0\n", 0o755)
    py_script = write_plugin(
        tmp_path / "bin", "done.py", "#!/usr/bin/env python3\nprint(1)\n", 0o755
    )
    _, hs = hooks(tmp_path, f"on_file {script}\non_part {py_script}\non_file true\n")
    assert all(isinstance(h, ScriptHook) for h in hs.hooks) and len(hs.hooks) == 3
    _, hs = hooks(tmp_path, "on_file file_log\n")
    assert labels(hs) == ["on_file file_log"] and not isinstance(hs.hooks[0], ScriptHook)
    with pytest.raises(ConfigError, match="no plugin or program named '/nowhere/x.sh'"):
        hooks(tmp_path, "on_file /nowhere/x.sh\n")


def test_native_hook_classes_by_file_by_file_and_class_and_by_dotted_path(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "mypkg"
    write_plugin(pkg, "__init__.py", "")
    path = write_plugin(pkg, "tags.py", NATIVE)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for spec in (str(path), f"{path}:Tagger", "mypkg.tags.Tagger"):
        _, hs = hooks(tmp_path, f"plugin {spec}\n")
        d = delivery()
        assert hs.accepts(d) and d.notice.headers["tagged"] == "subscribe"
    _, hs = hooks(tmp_path, "callback mypkg.tags.Tagger\n")
    assert type(hs.hooks[0]).__name__ == "Tagger"


def test_plugin_lines_run_in_file_order_across_options_and_includes(tmp_path):
    (tmp_path / "more.inc").write_text("on_message msg_skip_old\n")
    _, hs = hooks(
        tmp_path, "on_file file_log\ninclude more.inc\ncallback log\non_message msg_log\n"
    )
    assert labels(hs) == [
        "on_file file_log",
        "on_message msg_skip_old",
        "callback log",
        "on_message msg_log",
    ]


def test_plugin_options_are_kept_only_for_configs_that_name_plugins(tmp_path):
    o = config(tmp_path, "msg_skip_threshold 10\non_message msg_skip_old\n")
    assert o.extras == (("msg_skip_threshold", "10", f"{tmp_path}/subscribe.conf:2"),)
    assert [line[0] for line in o.hook_lines] == ["on_message"]
    with pytest.raises(ConfigError, match=r"subscribe.conf:2: unknown option 'msg_skip_threshold'"):
        config(tmp_path, "msg_skip_threshold 10\n")


def dd_subscribe(tmp_path, action, text):
    """``dd_subscribe <action> p`` with config ``p`` holding ``text``, whose broker cannot
    be reached (TEST-NET-1): what is checked is checked before any connection."""
    d = tmp_path / "config" / "sarra" / "subscribe"
    d.mkdir(parents=True, exist_ok=True)
    (d / "p.conf").write_text(f"broker amqp://u@192.0.2.1/\n{text}")
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        HOME=str(tmp_path),
    )
    return subprocess.run(
        [sys.executable, "-m", "sarra.cli", "dd_subscribe", action, "p"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_plugin_that_cannot_be_found_stops_foreground_at_once_with_exit_2(tmp_path):
    conf = tmp_path / "config" / "sarra" / "subscribe" / "p.conf"
    for action in ("foreground", "start"):
        done = dd_subscribe(tmp_path, action, "accept .*\non_message msg_nowhere\n")
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"dd_subscribe: error: {conf}:3: on_message msg_nowhere: no plugin named "
            f"'msg_nowhere' (looked in {tmp_path}/config/sarra/plugins and the built-in plugins)"
        ]


def test_an_option_no_plugin_declares_stops_foreground_before_connecting(tmp_path):
    conf = tmp_path / "config" / "sarra" / "subscribe" / "p.conf"
    done = dd_subscribe(tmp_path, "foreground", "on_message msg_log\nmsg_dleay 30\n")
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        f"dd_subscribe: error: {conf}:3: unknown option 'msg_dleay' (no plugin declares it)"
    )
    assert "connect" not in done.stderr and "Traceback" not in done.stderr


# ---------------------------------------------------------------- built-in plugins
def test_msg_skip_old_and_msg_by_source(tmp_path):
    conf = "msg_skip_threshold 1m\non_message msg_skip_old\nmsg_by_source alice,carol\n"
    _, hs = hooks(tmp_path, conf + "msg_by_source bob\non_message msg_by_source\n")
    assert hs.accepts(delivery(age=10, source="bob"))
    old, eve = delivery(age=120, source="bob"), delivery(source="eve")
    assert not hs.accepts(old) and old.outcome == REJECTED
    assert not hs.accepts(eve) and "msg_by_source" in eve.reason
    with pytest.raises(ConfigError, match="option msg_by_source is needed"):
        hooks(tmp_path, "on_message msg_by_source\n")


def test_msg_delay_built_in_defers_then_takes(tmp_path):
    _, hs = hooks(tmp_path, "msg_delay 30\non_message msg_delay\n")
    young, old = delivery(age=1), delivery(age=31)
    assert not hs.accepts(young) and young.outcome == FAILED and young.report is None
    assert hs.accepts(old)
    _, sr3 = hooks(tmp_path, "msgDelay 30\ncallback accept.messagedelay\n")
    assert not sr3.accepts(delivery(age=1))


def test_renaming_built_ins_change_where_the_file_goes(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "localtime", lambda *a: time.gmtime(0))
    base = f"directory {tmp_path}/in\nmirror on\n"
    cases = [
        ("on_message msg_rename_whatfn\n", "AACN27:pxatx:CWAO", "in/a/AACN27"),
        ("flowcb accept.renamewhatfn.RenameWhatFn\n", "AACN27:pxatx", "in/a/AACN27"),
        ("on_message msg_rename_dmf\n", "f.txt", "in/a/f.txt:19700101000000"),
        ("msg_replace_new_dir /in/,/out/\non_message msg_replace_new_dir\n", "f", "out/a/f"),
    ]
    for conf, name, expected in cases:
        _, hs = hooks(tmp_path, base + conf)
        d = delivery(f"a/{name}")
        assert hs.accepts(d)
        assert d.local_path == tmp_path / expected, conf


def test_msg_http_to_https_and_the_accelerators(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        _, hs = hooks(tmp_path, "plugin accel_wget\non_message msg_http_to_https\n")
    assert "sarra's transfers are built in" in caplog.text
    d = delivery()
    assert hs.accepts(d) and d.notice.baseurl == "https://src.example/data/"
    assert not hs.has("on_file")


def test_post_log_and_hb_log(tmp_path, caplog):
    _, hs = hooks(tmp_path, "on_post post_log\non_heartbeat hb_log\n", program="shovel")
    d = delivery("x/f.txt")
    d.post_notice = d.notice
    with caplog.at_level(logging.INFO):
        hs.emit("on_post", d)
        hs.safe_emit("on_housekeeping")
    assert "post_log notice=" in caplog.text and "http://src.example/data/x/f.txt" in caplog.text
    assert "heartbeat. sarra version is" in caplog.text
