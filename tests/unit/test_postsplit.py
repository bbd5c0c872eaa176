"""sarra.post.split: paths dealt to a forked helper, counts and errors brought back."""

from __future__ import annotations

import os

from sarra.post.split import split_paths


def names(n: int) -> list:
    return [f"/d/f{i:04d}\nodd name ü" if i % 7 == 0 else f"/d/f{i:04d}" for i in range(n)]


def test_few_paths_are_not_split():
    paths, helper = split_paths(iter(names(10)), 256)
    assert helper is None and list(paths) == names(10)


def test_many_paths_are_dealt_between_two_processes_each_once():
    want = names(1000)
    paths, helper = split_paths(iter(want), 256)
    assert helper is not None
    mine = list(paths)
    if helper.is_helper:  # the forked helper: report its share as "errors" and end
        helper.report(len(mine), mine, 0)
    posted, theirs = helper.result()
    assert posted == len(theirs) > 0 and len(mine) > 0
    assert sorted(mine + theirs) == sorted(want)
    assert not set(mine) & set(theirs)


def test_a_helper_ending_without_a_report_is_an_error_naming_the_count():
    paths, helper = split_paths(iter(names(600)), 256)
    assert helper is not None
    if helper.is_helper:
        for _ in paths:
            pass
        os._exit(3)  # as if killed: no report
    mine = list(paths)
    posted, errors = helper.result()
    assert posted == 0 and len(mine) == 300
    assert len(errors) == 1 and "without a report" in errors[0] and "300 paths" in errors[0]
