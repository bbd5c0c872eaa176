"""The command line as a user types it: config errors stop with file:line and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(program: str, *args: str, home: Path) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_CACHE_HOME=str(home / "cache"),
        HOME=str(home),
    )
    return subprocess.run(
        [sys.executable, "-m", "sarra.cli", program, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def write_conf(home: Path, text: str, name: str = "bad") -> Path:
    d = home / "config" / "sarra" / "subscribe"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.conf"
    path.write_text(text)
    return path


def test_unknown_option_stops_with_file_and_line_and_exit_2(tmp_path):
    path = write_conf(tmp_path, "broker amqp://localhost/\n# comment\n\nbogus_option 3\n")
    done = run("dd_subscribe", "foreground", "bad", home=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == f"dd_subscribe: error: {path}:4: unknown option 'bogus_option'"


def test_bad_value_names_the_option_and_quotes_the_value(tmp_path):
    path = write_conf(tmp_path, "broker amqp://localhost/\nprefetch lots\n")
    done = run("dd_subscribe", "foreground", "bad", home=tmp_path)
    assert done.returncode == 2
    assert f"{path}:2:" in done.stderr and "prefetch" in done.stderr and "'lots'" in done.stderr


def test_unreadable_include_is_reported_where_it_is_included(tmp_path):
    path = write_conf(tmp_path, "broker amqp://localhost/\ninclude nowhere.inc\n")
    done = run("dd_subscribe", "foreground", "bad", home=tmp_path)
    assert done.returncode == 2
    assert f"{path}:2:" in done.stderr and "nowhere.inc" in done.stderr


def test_unknown_action_and_missing_config_are_usage_errors(tmp_path):
    assert run("dd_subscribe", "dance", "x", home=tmp_path).returncode == 2
    done = run("dd_subscribe", "foreground", "nosuch", home=tmp_path)
    assert done.returncode == 2 and "nosuch" in done.stderr


@pytest.mark.parametrize("program", ["dd_post", "dd_subscribe", "dd_sara", "dd_shovel"])
def test_help_lists_the_options(program, tmp_path):
    done = run(program, "--help", home=tmp_path)
    assert (
        done.returncode == 0
        and "--broker" in done.stdout + done.stderr
        or "--post_broker" in done.stdout
    )


def test_unreachable_broker_is_one_clear_line(tmp_path):
    write_conf(tmp_path, "broker amqp://guest:guest@127.0.0.1:1/\nexchange xpublic\n", "nobroker")
    # a one-shot dd_post gives up after its first attempts with a clear message
    src = tmp_path / "f.txt"
    src.write_text("x")
    env_args = [
        "-pb",
        "amqp://guest:secret@127.0.0.1:1/",
        "-u",
        "http://h/",
        "-pbd",
        str(tmp_path),
        str(src),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sarra.cli", "dd_post", *env_args],
        env=dict(
            os.environ,
            PYTHONPATH=str(REPO),
            HOME=str(tmp_path),
            XDG_CONFIG_HOME=str(tmp_path / "c"),
            XDG_CACHE_HOME=str(tmp_path / "k"),
        ),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, err = proc.communicate(timeout=8)
    except subprocess.TimeoutExpired:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "127.0.0.1:1" in err and "secret" not in err


def test_post_short_broker_flag_is_the_post_broker_and_prefixes_never_match():
    from sarra import cli

    ns = cli.parse("dd_post", ["-b", "amqp://h/", "-ex", "xs_me", "f.txt"])
    assert ("post_broker", "amqp://h/") in ns.overrides
    assert ("post_exchange", "xs_me") in ns.overrides
    with pytest.raises(SystemExit):
        cli.parse("dd_subscribe", ["-bro", "amqp://h/", "foreground", "x"])


def test_dd_log_with_options_and_no_action_runs_in_the_foreground():
    from sarra import cli

    ns = cli.parse("dd_log", ["-b", "amqp://alice@h/"])
    assert cli._split_words("dd_log", ns) == ("foreground", None)
