"""The download work step with a fake transfer: nothing wrong is ever placed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from sarra.config.loader import table_defaults
from sarra.core import message
from sarra.core.delivery import Delivery
from sarra.core.errors import ChecksumMismatch, TransferError
from sarra.flow.download import Downloader
from sarra.fs.placement import place_of, relative_target
from sarra.logs.progress import Progress

BASE = "http://server/"


class FakeTransfer:
    """Serves ``files`` (server path -> bytes); records every path fetched."""

    def __init__(self, files):
        self.files = files
        self.fetched = []

    def get(
        self, path, dest, *, offset=0, length=None, limit=None, sums=(), progress=None, throttle=0
    ):
        self.fetched.append(path)
        if path not in self.files:
            raise TransferError(f"404 {path}", permanent=True, code=404)
        data = self.files[path]
        dest.write(data)
        for s in sums:
            s.update(data)
        if progress is not None:
            progress(len(data))
        return len(data)


class Pool:
    def __init__(self, transfer):
        self.transfer = transfer

    def get(self, baseurl):
        return self.transfer


class Recorder(Progress):
    def __init__(self):
        super().__init__()
        self.events = []

    def start(self, name, size):
        self.events.append(("start", name, size))

    def add(self, n):
        self.events.append(("add", n))

    def done(self):
        self.events.append(("done",))


def downloader(tmp_path, files, **opts):
    o = table_defaults("subscribe").replace(**opts)
    transfer = FakeTransfer(files)
    placed = []

    def locate(d):
        d.place = place_of(str(tmp_path), relative_target(d.notice, mirror=True))
        d.local_path = d.place.path

    dl = Downloader(o, locate=locate, transfers=Pool(transfer), after_file=placed.append)
    return dl, transfer, placed


def post(rel, data, **headers):
    h = {"sum": "d," + hashlib.md5(data).hexdigest(), "parts": f"1,{len(data)},1,0,0",
         "mode": "600", "mtime": "20240102030405.5"}  # fmt: skip
    h.update(headers)
    return Delivery(message.new_post(BASE, rel, h))


def test_good_file_is_placed_with_mode_and_mtime_and_no_temp_left(tmp_path):
    dl, _t, placed = downloader(tmp_path, {"/a/f.txt": b"hello"})
    d = post("a/f.txt", b"hello")
    dl(d)
    f = tmp_path / "a" / "f.txt"
    assert f.read_bytes() == b"hello" and d.report == (201, "Downloaded")
    assert oct(f.stat().st_mode & 0o777) == "0o600"
    assert f.stat().st_mtime == message.parse_time("20240102030405.5")
    assert placed == [d] and d.post_notice is d.notice
    assert os.listdir(tmp_path / "a") == ["f.txt"]


def test_checksum_mismatch_is_never_placed(tmp_path):
    dl, _t, placed = downloader(tmp_path, {"/f.txt": b"tampered"})
    d = post("f.txt", b"original", parts="1,8,1,0,0")
    with pytest.raises(ChecksumMismatch):
        dl(d)
    assert os.listdir(tmp_path) == [] and placed == []


def test_size_differing_from_the_announcement_is_not_placed(tmp_path):
    dl, _t, _p = downloader(tmp_path, {"/f.txt": b"abc"})
    d = post("f.txt", b"abc", sum="n,x", parts="1,10,1,0,0")
    with pytest.raises(TransferError, match="3 bytes, 10 announced"):
        dl(d)
    assert os.listdir(tmp_path) == []


def test_existing_file_is_replaced_only_once_verified(tmp_path):
    (tmp_path / "f.txt").write_bytes(b"old")
    dl, _t, _p = downloader(tmp_path, {"/f.txt": b"bad"})
    with pytest.raises(ChecksumMismatch):
        dl(post("f.txt", b"new"))
    assert (tmp_path / "f.txt").read_bytes() == b"old"


def test_leftover_inflight_file_is_reused(tmp_path):
    (tmp_path / "f.txt.tmp").write_bytes(b"partial garbage from a killed run" * 10)
    dl, _t, _p = downloader(tmp_path, {"/f.txt": b"whole"})
    dl(post("f.txt", b"whole"))
    assert os.listdir(tmp_path) == ["f.txt"]
    assert (tmp_path / "f.txt").read_bytes() == b"whole"


def test_overwrite_false_skips_an_identical_local_copy_with_304(tmp_path):
    (tmp_path / "f.txt").write_bytes(b"same")
    dl, transfer, placed = downloader(tmp_path, {"/f.txt": b"same"}, overwrite=False)
    d = post("f.txt", b"same")
    dl(d)
    assert d.report[0] == 304 and transfer.fetched == [] and placed == []


def test_overwrite_false_still_fetches_a_different_local_copy(tmp_path):
    (tmp_path / "f.txt").write_bytes(b"older")
    dl, transfer, _p = downloader(tmp_path, {"/f.txt": b"newer"}, overwrite=False)
    dl(post("f.txt", b"newer"))
    assert transfer.fetched == ["/f.txt"] and (tmp_path / "f.txt").read_bytes() == b"newer"


def removal(rel, **headers):
    name = rel.rsplit("/", 1)[-1]
    h = {"sum": "R," + hashlib.sha512(name.encode()).hexdigest(), **headers}
    return Delivery(message.new_post(BASE, rel, h))


def test_removal_deletes_the_local_file(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    dl, transfer, _p = downloader(tmp_path, {})
    d = removal("f.txt")
    dl(d)
    assert not (tmp_path / "f.txt").exists() and d.report == (201, "removed")
    assert transfer.fetched == []


def test_removal_of_a_missing_file_is_fine(tmp_path):
    dl, _t, _p = downloader(tmp_path, {})
    d = removal("nothing.txt")
    dl(d)
    assert d.outcome == "ok"


def test_removal_is_ignored_when_events_exclude_delete(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    dl, _t, _p = downloader(tmp_path, {}, events=("create",))
    d = removal("f.txt")
    dl(d)
    assert d.outcome == "rejected" and (tmp_path / "f.txt").exists()


def test_rename_pair_moves_the_local_file_without_fetching(tmp_path):
    (tmp_path / "before.txt").write_bytes(b"content")
    dl, transfer, _p = downloader(tmp_path, {}, events=("create",))
    first = removal("before.txt", newname="after.txt")
    dl(first)  # even with events excluding delete (spec 8.4)
    second = post("after.txt", b"content", oldname="before.txt")
    dl(second)
    assert os.listdir(tmp_path) == ["after.txt"]
    assert (first.report, second.report[0]) == ((201, "removed"), 304)
    assert transfer.fetched == []


def test_post_with_oldname_reuses_the_old_file_when_the_R_half_was_missed(tmp_path):
    (tmp_path / "before.txt").write_bytes(b"content")
    dl, transfer, placed = downloader(tmp_path, {})
    d = post("after.txt", b"content", oldname="before.txt")
    dl(d)
    assert os.listdir(tmp_path) == ["after.txt"] and d.report == (201, "moved")
    assert transfer.fetched == [] and placed == [d]


def test_post_with_oldname_downloads_when_the_old_file_differs(tmp_path):
    (tmp_path / "before.txt").write_bytes(b"stale")
    dl, transfer, _p = downloader(tmp_path, {"/after.txt": b"content"})
    dl(post("after.txt", b"content", oldname="before.txt"))
    assert transfer.fetched == ["/after.txt"]
    assert (tmp_path / "before.txt").exists()  # not ours to remove: the R post does that


def test_moved_directory_removal_takes_its_emptied_subdirectories(tmp_path):
    (tmp_path / "old" / "sub" / "deeper").mkdir(parents=True)
    dl, _t, _p = downloader(tmp_path, {})
    d = removal("old", newname="new")
    (tmp_path / "new").mkdir()  # the files were already moved one by one
    dl(d)
    assert d.outcome == "ok" and not (tmp_path / "old").exists()


def test_removal_of_a_directory_with_files_fails_and_keeps_them(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep").write_text("x")
    dl, _t, _p = downloader(tmp_path, {})
    d = removal("d")
    dl(d)
    assert d.outcome == "failed" and (tmp_path / "d" / "keep").exists()


def test_rename_of_a_symlink_moves_the_link_not_its_target(tmp_path):
    (tmp_path / "target").write_text("t")
    os.symlink("target", tmp_path / "old")
    dl, _t, _p = downloader(tmp_path, {})
    dl(removal("old", newname="new"))
    assert os.readlink(tmp_path / "new") == "target" and not os.path.lexists(tmp_path / "old")


def link_post(rel, target):
    h = {"sum": "L," + hashlib.sha512(target.encode()).hexdigest(), "link": target}
    return Delivery(message.new_post(BASE, rel, h))


def test_link_post_makes_a_symlink_replacing_what_was_there(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "l").write_text("file in the way")
    dl, _t, _p = downloader(tmp_path, {})
    d = link_post("a/l", "../somewhere/else")
    dl(d)
    assert os.readlink(tmp_path / "a/l") == "../somewhere/else" and d.report == (201, "linked")


def test_link_post_without_link_header_is_malformed(tmp_path):
    from sarra.core.errors import MessageError

    dl, _t, _p = downloader(tmp_path, {})
    d = Delivery(message.new_post(BASE, "l", {"sum": "L,abc"}))
    with pytest.raises(MessageError):
        dl(d)


def test_link_is_ignored_when_events_exclude_link(tmp_path):
    dl, _t, _p = downloader(tmp_path, {}, events=("create", "delete"))
    d = link_post("l", "x")
    dl(d)
    assert d.outcome == "rejected" and not os.path.lexists(tmp_path / "l")


def test_missing_remote_file_is_a_permanent_failure_and_leaves_nothing(tmp_path):
    dl, _t, _p = downloader(tmp_path, {})
    with pytest.raises(TransferError) as e:
        dl(post("x.txt", b"x"))
    assert e.value.permanent and os.listdir(tmp_path) == []


def test_inflight_subdirectory_is_used_then_the_file_moved_out(tmp_path):
    dl, _t, _p = downloader(tmp_path, {"/f": b"data"}, inflight="tmp/")
    dl(post("f", b"data"))
    assert (tmp_path / "f").read_bytes() == b"data"
    assert list(Path(tmp_path / "tmp").iterdir()) == []


def test_progress_is_told_the_file_its_announced_size_its_bytes_and_the_end(tmp_path):
    dl, _t, _p = downloader(tmp_path, {"/a/f.txt": b"hello", "/g.txt": b"bye"})
    dl.progress = seen = Recorder()
    dl(post("a/f.txt", b"hello"))
    no_size = {"sum": "d," + hashlib.md5(b"bye").hexdigest()}  # no parts header
    dl(Delivery(message.new_post(BASE, "g.txt", no_size)))
    assert seen.events == [
        ("start", "f.txt", 5), ("add", 5), ("done",),
        ("start", "g.txt", None), ("add", 3), ("done",),
    ]  # fmt: skip


def test_progress_line_ends_when_the_fetch_fails(tmp_path):
    dl, _t, _p = downloader(tmp_path, {})
    dl.progress = seen = Recorder()
    with pytest.raises(TransferError):
        dl(post("gone.txt", b"x"))
    assert seen.events == [("start", "gone.txt", 1), ("done",)]
