"""Where a notice's file lands: mirror/strip/flatten/rename, and no way out of the target."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from sarra.core import message
from sarra.core.errors import PathError
from sarra.fs.placement import (
    expand_directory,
    inflight_path,
    message_values,
    relative_target,
    target_path,
)  # fmt: skip


def notice(rel: str, **headers: str) -> message.Notice:
    h = {"sum": "d,746308829575e17c3331bbcb00c0898b", "parts": "1,14,1,0,0", **headers}
    return message.new_post("http://localhost:8090/", rel, h)


@pytest.mark.parametrize("rel", ["a/b/c.txt", "/a/b/c.txt"])
def test_mirror_keeps_the_path_without_a_leading_slash(rel):
    assert relative_target(notice(rel), mirror=True) == "a/b/c.txt"


def test_without_mirror_only_the_file_name_is_kept():
    assert relative_target(notice("a/b/c.txt"), mirror=False) == "c.txt"


def test_flatten_joins_the_path_with_its_separator():
    assert relative_target(notice("a/b/c.txt"), mirror=False, flatten="-") == "a-b-c.txt"


@pytest.mark.parametrize("rel", ["a/b/c.txt", "/a/b/c.txt"])
def test_strip_count_ignores_a_leading_slash(rel):
    assert relative_target(notice(rel), mirror=True, strip=1) == "b/c.txt"


def test_strip_regex_removes_the_first_match():
    got = relative_target(notice("data/2024/x.txt"), mirror=True, strip=re.compile(r"data/\d+/"))
    assert got == "x.txt"


def test_strip_of_every_component_is_refused():
    with pytest.raises(PathError):
        relative_target(notice("a/b.txt"), mirror=True, strip=5)


def test_rename_header_replaces_the_relpath():
    n = notice("a/b.txt", rename="/elsewhere/new.txt")
    assert relative_target(n, mirror=True) == "elsewhere/new.txt"


def test_rename_header_ending_in_slash_keeps_the_file_name():
    n = notice("a/b.txt", rename="/elsewhere/")
    assert relative_target(n, mirror=True) == "elsewhere/b.txt"


@pytest.mark.parametrize("rel", ["../x", "a/../../x", "a/..", "/../etc/passwd"])
def test_dot_dot_anywhere_is_refused(rel):
    with pytest.raises(PathError, match="escapes"):
        relative_target(notice(rel), mirror=True)


def test_dot_dot_in_a_rename_header_is_refused():
    with pytest.raises(PathError):
        relative_target(notice("a/b.txt", rename="../../evil"), mirror=True)


def test_absolute_relpath_stays_below_the_root(tmp_path):
    rel = relative_target(notice("/etc/passwd"), mirror=True)
    assert target_path(str(tmp_path), rel) == tmp_path / "etc" / "passwd"


def test_symlinked_parent_leading_outside_is_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    os.symlink(outside, root / "evil")
    with pytest.raises(PathError, match="link"):
        target_path(str(root), "evil/x.txt")
    with pytest.raises(PathError, match="link"):
        target_path(str(root), "evil/not/yet/made/x.txt")


def test_symlinked_parent_inside_the_root_is_fine(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink("real", tmp_path / "alias")
    assert target_path(str(tmp_path), "alias/x.txt") == tmp_path / "alias" / "x.txt"


def test_root_itself_may_be_a_symlink(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    assert target_path(str(tmp_path / "link"), "a/x") == tmp_path / "link" / "a" / "x"


@pytest.mark.parametrize(
    "inflight, name",
    [(".tmp", "f.txt.tmp"), (".", ".f.txt"), ("tmp/", "tmp/f.txt"), ("NONE", "f.txt"),
     (None, "f.txt")],
)  # fmt: skip
def test_inflight_names(inflight, name):
    assert inflight_path(Path("/d/f.txt"), inflight) == Path("/d") / name


def test_directory_patterns_expand_message_values():
    values = message_values(notice("a.txt", source="alice"))
    assert expand_directory("/data/${SOURCE}/${YYYYMMDD}", values).startswith("/data/alice/2")


def test_unknown_directory_variable_is_an_error():
    with pytest.raises(PathError, match="NOPE_NOT_SET"):
        expand_directory("/d/${NOPE_NOT_SET}", {})
