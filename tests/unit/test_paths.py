"""Directory layout in user and system mode, program short names."""

from __future__ import annotations

from pathlib import Path

import pytest

from sarra.config.paths import Paths, short_name
from sarra.core.errors import ConfigError


def test_user_mode_honours_xdg_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    paths = Paths.user()
    assert paths.config_dir == tmp_path / "cfg" / "sarra"
    assert paths.state_dir == tmp_path / "cache" / "sarra"
    assert paths.log_dir == tmp_path / "cache" / "sarra" / "log"


def test_user_mode_defaults_to_dot_config_and_dot_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    paths = Paths.user()
    assert paths == Paths(
        tmp_path / ".config" / "sarra", tmp_path / ".cache" / "sarra", tmp_path / ".cache/sarra/log"
    )


def test_system_mode_uses_etc_var_lib_and_var_log():
    assert Paths.system() == Paths(
        Path("/etc/sarra"), Path("/var/lib/sarra"), Path("/var/log/sarra")
    )


def test_from_env_chooses_system_mode_only_when_sarra_system_is_1(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert Paths.from_env({"SARRA_SYSTEM": "1"}) == Paths.system()
    assert Paths.from_env({"SARRA_SYSTEM": "0"}) == Paths.user()
    assert Paths.from_env({}) == Paths.user()
    monkeypatch.setenv("SARRA_SYSTEM", "1")
    assert Paths.from_env() == Paths.system()


@pytest.mark.parametrize(
    "program, short",
    [("dd_post", "post"), ("dd_subscribe", "subscribe"), ("dd_sara", "sara"), ("dd_log", "log"),
     ("dd_watch", "watch"), ("dd_shovel", "shovel"), ("subscribe", "subscribe"),
     ("dd_sender", "sender"), ("sr_poll", "poll"),
     ("sr_subscribe", "subscribe"), ("/usr/bin/dd_post", "post")],
)  # fmt: skip
def test_short_names(program, short):
    assert short_name(program) == short


def test_unknown_program_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown program 'dd_winnow'"):
        short_name("dd_winnow")


def test_derived_paths():
    paths = Paths(Path("/c"), Path("/s"), Path("/l"))
    assert paths.program_config_dir("dd_subscribe") == Path("/c/subscribe")
    assert paths.config_file("dd_subscribe", "foo") == Path("/c/subscribe/foo.conf")
    assert paths.config_file("subscribe", "foo.conf") == Path("/c/subscribe/foo.conf")
    assert paths.state("dd_sara", "pump") == Path("/s/sara/pump")
    assert paths.pid_file("dd_sara", "pump", 3) == Path("/s/sara/pump/i03.pid")
    assert paths.log_file("dd_sara", "pump", 1) == Path("/l/sara_pump_01.log")
    assert paths.log_file("watch", "w.conf", 12) == Path("/l/watch_w_12.log")
    assert paths.credentials_file() == Path("/c/credentials.conf")
    assert paths.default_conf() == Path("/c/default.conf")


def test_under_puts_everything_below_one_root(tmp_path):
    assert Paths.under(tmp_path) == Paths(tmp_path / "config", tmp_path / "state", tmp_path / "log")


def test_paths_are_immutable():
    with pytest.raises(AttributeError):
        Paths.system().config_dir = Path("/x")  # type: ignore[misc]
