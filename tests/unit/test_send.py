"""dd_sender's work step against a file: destination: complete files only, hostile paths
refused, errors classed for the flow's boundary."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, List

import pytest

from sarra.config.loader import load
from sarra.config.paths import Paths
from sarra.core import message
from sarra.core.delivery import OK, REJECTED, Delivery
from sarra.core.errors import PathError, TransferError
from sarra.flow.send import RemoteLocator, Sender, inflight_path
from sarra.roles.sender import DEFAULTS
from sarra.transfer.file import FileTransfer


def options(tmp_path: Path, *lines: str) -> Any:
    conf = tmp_path / "s.conf"
    conf.write_text("".join(line + "\n" for line in lines))
    return load("sender", str(conf), paths=Paths.under(tmp_path / "home"), defaults=DEFAULTS)


class Recording(FileTransfer):
    """A file: destination that records every call, and checks at each rename that the
    final name does not hold a partial file (the test's point)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.calls: List[tuple] = []
        self.fail_put: List[TransferError] = []
        self.fail_rename: List[TransferError] = []

    def write_from(self, path: str, chunks: Any, offset: int, *, truncate: bool = True) -> None:
        self.calls.append(("put", path))
        if self.fail_put:
            raise self.fail_put.pop(0)
        super().write_from(path, chunks, offset, truncate=truncate)

    def rename(self, old: str, new: str) -> None:
        self.calls.append(("rename", old, new))
        if self.fail_rename:
            raise self.fail_rename.pop(0)
        super().rename(old, new)

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if name in ("mkdir", "delete", "chmod", "utime"):
            calls = super().__getattribute__("calls")

            def recorded(*args: Any) -> Any:
                calls.append((name, *args))
                return attr(*args)

            return recorded
        return attr


class Pool:
    def __init__(self, transfer: Any) -> None:
        self.transfer = transfer

    def get(self, url: str) -> Any:
        return self.transfer


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "tree"
    (src / "a b").mkdir(parents=True)
    (src / "a b" / "f.txt").write_bytes(b"hello sender")
    return src


def post(relpath: str, data: bytes = b"hello sender", **headers: str) -> Delivery:
    h = {
        "sum": "d," + hashlib.md5(data).hexdigest(),
        "parts": f"1,{len(data)},1,0,0",
        "mode": "640",
        "mtime": "20240102030405.5",
        **headers,
    }
    return Delivery(message.new_post("http://pump/", relpath, h))


def sender(tmp_path: Path, tree: Path, *lines: str, post_url: str | None = None) -> tuple:
    remote = tmp_path / "remote"
    remote.mkdir(exist_ok=True)
    o = options(tmp_path, f"destination file://{remote}/", f"base_dir {tree}", *lines)
    dest = Recording(o.destination)
    s = Sender(
        o, destination=Pool(dest), fetch=None, spool=tmp_path / "spool", post_base_url=post_url
    )
    return s, dest, remote


def test_a_file_is_written_under_its_inflight_name_then_renamed_with_mode_and_time(tmp_path, tree):
    s, dest, remote = sender(tmp_path, tree, "directory out/${YYYY}")
    d = post("a b/f.txt")
    s(d)
    assert d.outcome == OK and d.report == (201, "Sent")
    final = next(remote.glob("out/*/a b/f.txt"))
    assert final.read_bytes() == b"hello sender"
    assert oct(final.stat().st_mode & 0o777) == oct(0o640)
    assert final.stat().st_mtime == message.parse_time("20240102030405.5")
    kinds = [c[0] for c in dest.calls]
    assert kinds.index("put") < kinds.index("chmod") < kinds.index("rename")
    put = next(c for c in dest.calls if c[0] == "put")
    assert put[1] == str(final) + ".tmp"
    assert list(remote.rglob("*.tmp")) == []


@pytest.mark.parametrize(
    "inflight,name",
    [(".tmp", "/r/d/f.txt.tmp"), (".", "/r/d/.f.txt"), ("tmp/", "/r/d/tmp/f.txt"),
     (None, "/r/d/f.txt"), (5.0, "/r/d/f.txt.tmp")],
)  # fmt: skip
def test_inflight_names_follow_v2_spellings(inflight, name):
    assert inflight_path("/r/d/f.txt", inflight) == name


@pytest.mark.parametrize(
    "relpath",
    ["../x", "a/../../x", "a/\0/x", "a/b\nSTOR evil", "a/b\rc", "x" * 300, "a/" + "b/" * 3000],
)
def test_no_notice_path_leaves_the_destination_directory(tmp_path, relpath):
    o = options(tmp_path, "destination sftp://u@h/base/", "directory in", "mirror on")
    with pytest.raises(PathError):
        RemoteLocator(o, "/base/")(post(relpath))


@pytest.mark.parametrize("source", ["../x", "a/b", "..", ".", "", "a\nb"])
def test_a_source_header_used_in_directory_must_be_one_plain_name(tmp_path, source):
    o = options(tmp_path, "destination sftp://u@h/base/", "directory in/${SOURCE}")
    with pytest.raises(PathError):
        RemoteLocator(o, "/base/")(post("f.txt", source=source))


def test_placement_options_apply_as_for_subscribe(tmp_path):
    o = options(
        tmp_path, "destination sftp://u@h/base/", "directory /x/${SOURCE}", "strip 1", "accept .*"
    )
    d = post("top/mid/f.txt", source="alice")
    d.mask = o.masks[0]
    assert RemoteLocator(o, "/base/")(d) == "/base/x/alice/mid/f.txt"
    o = options(tmp_path, "destination sftp://u@h/", "mirror off", "flatten -", "accept .*")
    d = post("top/mid/f.txt")
    d.mask = o.masks[0]
    assert RemoteLocator(o, "/")(d) == "/top-mid-f.txt"


def test_a_transient_failure_is_raised_for_retry_and_leaves_no_inflight_file(tmp_path, tree):
    s, dest, remote = sender(tmp_path, tree)
    dest.fail_rename = [TransferError("connection reset")]
    with pytest.raises(TransferError) as e:
        s(post("a b/f.txt"))
    assert not e.value.permanent
    assert [p for p in remote.rglob("*") if p.is_file()] == []


def test_a_server_that_will_not_rename_onto_a_file_has_it_removed_first(tmp_path, tree):
    s, dest, remote = sender(tmp_path, tree)
    (remote / "a b").mkdir()
    (remote / "a b" / "f.txt").write_text("the old version")
    dest.fail_rename = [TransferError("550 exists", permanent=True)]
    d = post("a b/f.txt")
    s(d)
    assert d.outcome == OK
    assert (remote / "a b" / "f.txt").read_bytes() == b"hello sender"
    assert [c[0] for c in dest.calls][-3:] == ["rename", "delete", "rename"]


def test_a_directory_removed_on_the_server_is_made_again(tmp_path, tree):
    s, dest, remote = sender(tmp_path, tree)
    s(post("a b/f.txt"))
    (remote / "a b" / "f.txt").unlink()
    (remote / "a b").rmdir()
    d = post("a b/f.txt")
    s(d)  # the directory is remembered as made: the first put fails, the second works
    assert d.outcome == OK and (remote / "a b" / "f.txt").is_file()


def test_a_file_missing_from_base_dir_fails_for_good(tmp_path, tree):
    s, _, _ = sender(tmp_path, tree)
    with pytest.raises(TransferError) as e:
        s(post("a b/gone.txt"))
    assert e.value.permanent and e.value.code == 404


def test_base_dir_is_never_left_through_a_link(tmp_path, tree):
    outside = tmp_path / "secret"
    outside.write_text("secret")
    os.symlink(outside, tree / "leak")
    s, _, remote = sender(tmp_path, tree)
    with pytest.raises(PathError):
        s(post("leak"))
    assert list(remote.rglob("leak*")) == []


def test_removals_links_and_blocks(tmp_path, tree):
    s, _, remote = sender(tmp_path, tree)
    s(post("a b/f.txt"))
    gone = Delivery(message.new_post("http://pump/", "a b/f.txt", {"sum": "R,x"}))
    s(gone)
    assert gone.outcome == OK and not (remote / "a b" / "f.txt").exists()
    again = Delivery(message.new_post("http://pump/", "a b/f.txt", {"sum": "R,x"}))
    s(again)  # already gone: done
    assert again.outcome == OK
    link = Delivery(message.new_post("http://pump/", "l", {"sum": "L,x", "link": "a b/f.txt"}))
    s(link)
    assert link.outcome == REJECTED
    with pytest.raises(TransferError) as e:
        s(post("a b/f.txt", parts="i,4,3,0,1"))
    assert e.value.permanent


def test_the_delivered_copy_is_announced_below_post_base_dir(tmp_path, tree):
    (tree / "a b" / "f.txt").write_bytes(b"changed since posted")
    s, _, remote = sender(
        tmp_path, tree, f"post_base_dir {tmp_path}", post_url="http://u:pw@partner/"
    )
    d = post("a b/f.txt", rename="x/other.txt")
    s(d)
    n = d.post_notice
    assert n is not None
    assert (n.baseurl, n.relpath) == ("http://u@partner/", "remote/x/other.txt")
    assert n.topic == "v02.post.remote.x"
    assert "rename" not in n.headers
    assert n.headers["sum"] == "d," + hashlib.md5(b"changed since posted").hexdigest()


class Serving:
    """A fetch transfer serving ``data`` for any path."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def get(self, path: str, dest: Any, *, limit: Any = None, sums: Any = (), **kw: Any) -> int:
        dest.write(self.data)
        for c in sums:
            c.update(self.data)
        return len(self.data)


def test_a_fetched_file_that_fails_its_checksum_is_never_sent(tmp_path):
    remote = tmp_path / "remote"
    remote.mkdir()
    o = options(tmp_path, f"destination file://{remote}/")
    dest = Recording(o.destination)
    fetch = Pool(Serving(b"hello sendes"))  # same size, other bytes
    s = Sender(o, destination=Pool(dest), fetch=fetch, spool=tmp_path / "spool")
    with pytest.raises(TransferError):
        s(post("a b/f.txt"))
    assert dest.calls == [] and list(remote.iterdir()) == []
    assert list((tmp_path / "spool").iterdir()) == []  # the spool file went with it
    fetch.transfer.data = b"hello sender"
    d = post("a b/f.txt")
    s(d)
    assert d.outcome == OK and (remote / "a b" / "f.txt").read_bytes() == b"hello sender"


@pytest.mark.parametrize("line", ["", "destination http://h/", "destination https://h/x/"])
def test_a_sender_without_a_writable_destination_is_a_configuration_error(tmp_path, line):
    from sarra.core.errors import ConfigError
    from sarra.roles.sender import check

    with pytest.raises(ConfigError):
        check(options(tmp_path, line))
