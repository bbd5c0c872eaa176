"""tests/fixtures/require.py: a missing tool skips on a laptop and fails under CI."""

from __future__ import annotations

import pytest

from tests.fixtures.require import require, require_module, require_tools


def test_a_missing_tool_skips_the_test_when_ci_is_not_set(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed: no-such-tool-t14"):
        require_tools("sh", "no-such-tool-t14")


def test_a_missing_tool_fails_the_test_when_ci_is_set(monkeypatch):
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="required when CI is set: .*no_such_mod"):
        require_module("no_such_mod_t14")
    with pytest.raises(pytest.fail.Exception, match="the v2 venv"):
        require(False, "the v2 venv")


def test_what_is_there_passes_through(monkeypatch):
    monkeypatch.setenv("CI", "1")
    require(True, "never shown")
    require_tools("sh")
    assert require_module("json").dumps([1]) == "[1]"
