"""Notices made from local files match the shapes of spec 5, 7, 8.1-8.4 and 11.8."""

from __future__ import annotations

import hashlib
import os

import pytest

from sarra.config.loader import load, table_defaults
from sarra.config.paths import Paths
from sarra.core import message
from sarra.core.errors import ConfigError, PathError
from sarra.post.notices import NoticeMaker, walk
from sarra.roles.post import FileSource, _source, moved_notices


def opts(tmp_path, **kw):
    base = dict(post_base_url="http://localhost:8090/", post_base_dir=str(tmp_path))
    base.update(kw)
    return table_defaults("post").replace(**base)


def maker(tmp_path, **kw):
    return NoticeMaker(opts(tmp_path, **kw), broker_user="guest", broker_host="localhost")


def sha512(text: str) -> str:
    return hashlib.sha512(text.encode()).hexdigest()


def test_file_post_has_sum_parts_times_mode_and_routing_headers(tmp_path):
    (tmp_path / "data").mkdir()
    f = tmp_path / "data" / "hello world.txt"
    f.write_bytes(b"Hello, World!\n")
    f.chmod(0o640)
    [n] = maker(tmp_path).for_path(str(f))
    assert n.topic == "v02.post.data"
    assert n.relpath == "data/hello world.txt"
    assert message.encode(n).body.split(b" ")[2] == b"data/hello%20world.txt"
    h = n.headers
    assert h["sum"] == "d," + hashlib.md5(b"Hello, World!\n").hexdigest()
    assert h["parts"] == "1,14,1,0,0"
    assert h["mode"] == "640"
    assert h["mtime"] == message.format_time_ns(os.stat(f).st_mtime_ns)
    assert (h["to_clusters"], h["from_cluster"], h["source"]) == ("localhost",) * 2 + ("guest",)


def test_header_lines_are_added_to_every_post(tmp_path):
    """Regression: the (name, value) pairs of ``header`` were read as "name=value" text,
    so any ``header`` line crashed dd_post (found when options became typed)."""
    f = tmp_path / "f.txt"
    f.write_text("x")
    pairs = [("-u", "http://h/"), ("-pbd", str(tmp_path)), ("-header", "a=b"), ("header", "c=d e")]
    o = load("dd_post", None, pairs, Paths.under(tmp_path / "conf"))
    for n in [*NoticeMaker(o).for_path(str(f)), NoticeMaker(o).removal(str(f))]:
        assert (n.headers["a"], n.headers["c"]) == ("b", "d e")


def test_blocks_are_announced_one_notice_each_with_the_block_sum(tmp_path):
    data = bytes(range(256)) * 10  # 2560 bytes, blocks of 1000
    (tmp_path / "big").write_bytes(data)
    notices = maker(tmp_path, blocksize=1000).for_path(str(tmp_path / "big"))
    assert [n.headers["parts"] for n in notices] == ["i,1000,3,560,0", "i,1000,3,560,1",
                                                    "i,1000,3,560,2"]  # fmt: skip
    for i, n in enumerate(notices):
        block = data[i * 1000 : (i + 1) * 1000]
        assert n.headers["sum"] == "d," + hashlib.md5(block).hexdigest()


def test_symlink_is_an_L_post_without_parts_or_times(tmp_path):
    os.symlink("../elsewhere/target.txt", tmp_path / "lnk")
    [n] = maker(tmp_path).for_path(str(tmp_path / "lnk"))
    assert n.headers["link"] == "../elsewhere/target.txt"
    assert n.headers["sum"] == "L," + sha512("../elsewhere/target.txt")
    assert not {"parts", "mtime", "atime", "mode"} & set(n.headers)


def test_removal_is_an_R_post_of_the_basename_sum(tmp_path):
    n = maker(tmp_path).removal(str(tmp_path / "d" / "gone.txt"))
    assert n.relpath == "d/gone.txt"
    assert n.headers["sum"] == "R," + sha512("gone.txt")
    assert not {"parts", "mtime", "atime", "mode"} & set(n.headers)


def test_rename_pair_matches_spec_8_4(tmp_path):
    (tmp_path / "watched").mkdir()
    (tmp_path / "watched" / "after.txt").write_bytes(b"fourteen bytes")
    m = maker(tmp_path, post_relpath_slash=True)
    old, new = str(tmp_path / "watched/before.txt"), str(tmp_path / "watched/after.txt")
    first, second = m.rename_pair(old, new)
    assert (first.relpath, first.topic) == ("/watched/before.txt", "v02.post.watched")
    assert first.headers["sum"] == "R," + sha512("before.txt")
    assert first.headers["newname"] == "/watched/after.txt"
    assert "parts" not in first.headers
    assert second.relpath == "/watched/after.txt"
    assert second.headers["oldname"] == "/watched/before.txt"
    assert second.headers["parts"] == "1,14,1,0,0"
    assert second.headers["sum"] == "d," + hashlib.md5(b"fourteen bytes").hexdigest()


def test_moved_directory_gives_a_pair_per_file_then_the_old_directory_removal(tmp_path):
    (tmp_path / "new" / "sub").mkdir(parents=True)
    (tmp_path / "new" / "a").write_text("a")
    (tmp_path / "new" / "sub" / "b").write_text("b")
    m = maker(tmp_path)
    notices = list(moved_notices(m, str(tmp_path / "old"), str(tmp_path / "new"), False))
    shapes = [(n.relpath, n.headers["sum"][0], n.headers.get("newname"),
               n.headers.get("oldname")) for n in notices]  # fmt: skip
    assert shapes == [
        ("old/a", "R", "new/a", None), ("new/a", "d", None, "old/a"),
        ("old/sub/b", "R", "new/sub/b", None), ("new/sub/b", "d", None, "old/sub/b"),
        ("old", "R", "new", None),
    ]  # fmt: skip


def test_moved_from_needs_the_new_name_to_exist(tmp_path):
    with pytest.raises(PathError, match="no such file"):
        list(moved_notices(maker(tmp_path), str(tmp_path / "a"), str(tmp_path / "b"), False))


def test_remove_mode_posts_R_for_named_paths_without_walking(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "still-here").write_text("x")
    o = opts(tmp_path, remove=True)
    src = _source(o, [str(tmp_path / "gone"), str(tmp_path / "dir")], NoticeMaker(o))
    got = src.gather(10, 0)
    assert [(d.notice.relpath, d.notice.headers["sum"][0]) for d in got] == [
        ("gone", "R"), ("dir", "R")]  # fmt: skip


def test_moved_from_takes_exactly_one_path(tmp_path):
    o = opts(tmp_path, moved_from="x")
    with pytest.raises(ConfigError):
        _source(o, ["a", "b"], NoticeMaker(o))


def test_file_url_without_base_dir_posts_the_absolute_path(tmp_path):
    (tmp_path / "f").write_text("x")
    [n] = maker(tmp_path, post_base_url="file:", post_base_dir=None).for_path(str(tmp_path / "f"))
    assert n.baseurl == "file:"
    assert n.relpath == str(tmp_path / "f")


def test_path_outside_base_dir_is_refused(tmp_path):
    (tmp_path / "in").mkdir()
    with pytest.raises(PathError, match="outside"):
        maker(tmp_path / "in").relpath(str(tmp_path / "elsewhere"))


def test_names_v02_cannot_carry_are_refused(tmp_path):
    (tmp_path / "a%20b").write_text("x")
    with pytest.raises(PathError):
        maker(tmp_path).for_path(str(tmp_path / "a%20b"))


def test_missing_file_is_reported_by_the_source_and_the_rest_still_posted(tmp_path):
    (tmp_path / "ok").write_text("x")
    o = opts(tmp_path)
    src = FileSource([str(tmp_path / "missing"), str(tmp_path / "ok")], NoticeMaker(o), False)
    assert [d.notice.relpath for d in src.gather(10, 0)] == ["ok"]
    assert src.errors and "missing" in src.errors[0]


def test_a_post_found_unconfirmed_is_named_and_not_counted_in_or_after_its_batch(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).write_text(name)
    src = FileSource([str(tmp_path / "a"), str(tmp_path / "b")], NoticeMaker(opts(tmp_path)), False)
    a, b = src.gather(10, 0)
    src.late_failure(a, "post of a not confirmed by the broker")  # batch in hand: fails
    for d in (a, b):
        if d.outcome is None:
            d.ok(201, "Published")
        src.settle(d)
    assert src.posted == 1 and src.errors == ["post of a not confirmed by the broker"]
    src.late_failure(b, "post of b not confirmed (connection lost)")  # settled earlier
    assert src.posted == 0 and src.errors[-1] == "post of b not confirmed (connection lost)"


def test_walk_lists_files_and_links_sorted_per_directory(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z").write_text("")
    (tmp_path / "a").write_text("")
    os.symlink("b", tmp_path / "c")
    assert [os.path.relpath(p, tmp_path) for p in walk(str(tmp_path))] == ["a", "b/z", "c"]
