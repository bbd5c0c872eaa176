"""tests/fixtures/waiting.py: the one helper every test waits with."""

from __future__ import annotations

import pytest

from tests.fixtures.waiting import WaitTimeout, wait_for


def test_returns_the_first_true_value_the_condition_gives():
    values = iter([0, None, "", ["here"]])
    assert wait_for(lambda: next(values), 5, "a list", every=0) == ["here"]


def test_timeout_raises_an_assertion_error_naming_what_and_the_last_value():
    with pytest.raises(WaitTimeout, match=r"waiting for the queue to empty \(last: 0\)"):
        wait_for(lambda: 0, 0.05, "the queue to empty", every=0.01)
    assert issubclass(WaitTimeout, AssertionError)  # a test failure, not an error


def test_without_fail_a_timeout_returns_the_last_false_value():
    assert wait_for(lambda: [], 0.05, every=0.01, fail=False) == []


def test_a_pause_that_crosses_the_deadline_is_followed_by_one_more_look():
    calls = []

    def cond() -> bool:
        calls.append(1)
        return len(calls) >= 2

    assert wait_for(cond, 0.01, "a second call", every=0.1) is True
