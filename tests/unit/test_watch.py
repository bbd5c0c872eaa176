"""sarra.watch.watcher against real temp directories, real inotify and real polling.

Every semantic test runs twice: with inotify and with watchdog's polling observer at a
short interval. Waits are generous upper bounds for events to arrive, never assertions
on how fast they came.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
import tracemalloc

import pytest

from sarra.core.errors import ConfigError, SarraError
from sarra.watch.scan import RecentFiles, compact_stat
from sarra.watch.watcher import (
    OPEN_AT_START,
    FileEvent,
    Watcher,
    WatchError,
    WatchLimitError,
    inflight_matcher,
)
from tests.fixtures.waiting import wait_for

POLL = 0.25


@pytest.fixture(params=["inotify", "polling"])
def mode(request):
    return request.param


@pytest.fixture
def watched(tmp_path, mode):
    """A started Watcher on tmp_path/w, in the mode under test; stopped afterwards."""
    root = tmp_path / "w"
    root.mkdir()
    w = Watcher([str(root)], force_polling=(mode == "polling"), poll_interval=POLL)
    w.start()
    yield w, str(root)
    w.stop()


def quiet_time(w: Watcher) -> float:
    """How long to keep listening to be sure no extra event follows."""
    return 4 * POLL + 0.6 if w.polling else 1.0


def collect(w: Watcher, want: int, limit: float = 15.0) -> list[FileEvent]:
    """Gather events until `want` arrived (or `limit` s passed), then listen a while more."""
    got: list[FileEvent] = []
    deadline = time.monotonic() + limit
    while len(got) < want and time.monotonic() < deadline:
        got += w.get_events(0.2)
    quiet_end = time.monotonic() + quiet_time(w)
    while time.monotonic() < quiet_end:
        got += w.get_events(0.1)
    return got


def write(path: str, data: bytes = b"hello\n") -> None:
    with open(path, "wb") as f:
        f.write(data)


def test_written_file_is_reported_once_as_file(watched):
    w, root = watched
    write(f"{root}/a.txt")
    assert collect(w, 1) == [FileEvent("file", f"{root}/a.txt")]


def test_file_renamed_in_from_outside_is_reported_as_file(watched, tmp_path):
    w, root = watched
    write(f"{tmp_path}/outside.txt")
    os.rename(f"{tmp_path}/outside.txt", f"{root}/inside.txt")
    assert collect(w, 1) == [FileEvent("file", f"{root}/inside.txt")]


def test_rename_within_tree_is_reported_as_rename_with_old_path(watched):
    w, root = watched
    write(f"{root}/a")
    assert collect(w, 1) == [FileEvent("file", f"{root}/a")]
    os.rename(f"{root}/a", f"{root}/b")
    assert collect(w, 1) == [FileEvent("rename", f"{root}/b", old_path=f"{root}/a")]


def test_deleted_file_is_reported_as_remove(watched):
    w, root = watched
    write(f"{root}/gone")
    assert collect(w, 1) == [FileEvent("file", f"{root}/gone")]
    os.unlink(f"{root}/gone")
    assert collect(w, 1) == [FileEvent("remove", f"{root}/gone")]


def test_symlink_creation_is_reported_as_link(watched):
    w, root = watched
    os.symlink("/etc/hostname", f"{root}/ln")
    assert collect(w, 1) == [FileEvent("link", f"{root}/ln")]


def test_removed_directory_is_reported_with_is_dir(watched):
    w, root = watched
    os.mkdir(f"{root}/d")
    assert w.get_events(quiet_time(w)) == []  # listens that long: no event for a mkdir
    os.rmdir(f"{root}/d")
    assert collect(w, 1) == [FileEvent("remove", f"{root}/d", is_dir=True)]


def test_mkdir_p_burst_reports_every_file_exactly_once(watched):
    w, root = watched
    expected = []
    for i in range(6):
        deep = f"{root}/r{i}/a/b/c"
        os.makedirs(deep)
        for d in (f"{root}/r{i}", f"{root}/r{i}/a", f"{root}/r{i}/a/b", deep):
            for n in range(3):
                write(f"{d}/f{n}")
                expected.append(f"{d}/f{n}")
    got = collect(w, len(expected))
    assert sorted(e.path for e in got) == sorted(expected)
    assert {e.kind for e in got} == {"file"}


def test_tmp_file_is_ignored_until_renamed_to_its_real_name(watched):
    w, root = watched
    write(f"{root}/data.tmp", b"x" * 10000)
    os.rename(f"{root}/data.tmp", f"{root}/data")
    assert collect(w, 1) == [FileEvent("file", f"{root}/data")]


def test_file_written_slowly_is_reported_once_after_close(watched):
    w, root = watched
    closing = threading.Event()

    def writer():
        with open(f"{root}/slow", "wb") as f:
            for _ in range(20):
                f.write(b"x" * 100)
                f.flush()
                time.sleep(0.1)  # the point: the file stays open for 2 s while written
            closing.set()  # set before close: any event seen before this came too early

    t = threading.Thread(target=writer)
    t.start()
    early, late = [], []
    while not closing.is_set():
        events = w.get_events(0.05)
        # An event returned before `closing` was set came while the file was still open.
        (late if closing.is_set() else early).extend(events)
    t.join()
    assert early == []
    assert late + collect(w, 1 - len(late)) == [FileEvent("file", f"{root}/slow")]
    assert os.path.getsize(f"{root}/slow") == 2000


def test_file_written_then_removed_before_delivery_gives_only_remove(tmp_path):
    with Watcher([str(tmp_path)]) as w:
        write(f"{tmp_path}/brief")
        os.unlink(f"{tmp_path}/brief")
        # No pause needed: an event for a file gone by delivery time is dropped, and
        # collect() waits for the remove, then listens for anything more.
        assert collect(w, 1) == [FileEvent("remove", f"{tmp_path}/brief")]


def test_min_age_holds_file_until_its_mtime_is_old_enough(tmp_path, mode):
    with Watcher(
        [str(tmp_path)], min_age=0.8, force_polling=mode == "polling", poll_interval=POLL
    ) as w:
        write(f"{tmp_path}/aged")
        got = wait_for(lambda: w.get_events(0.2), 10, "the aged file", every=0)
        assert got == [FileEvent("file", f"{tmp_path}/aged")]
        assert time.time() - os.stat(f"{tmp_path}/aged").st_mtime >= 0.8


def test_scan_yields_files_and_links_without_tmp_names_or_link_targets(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    write(f"{root}/sub/f")
    write(f"{root}/part.tmp")
    write(f"{outside}/g")
    os.symlink(str(outside), f"{root}/dirlink")
    w = Watcher([str(root)])
    assert sorted(w.scan(), key=lambda e: e.path) == [
        FileEvent("link", f"{root}/dirlink"),
        FileEvent("file", f"{root}/sub/f"),
    ]
    follow = Watcher([str(root)], follow_symlinks=True)
    assert sorted(follow.scan(), key=lambda e: e.path) == [
        FileEvent("file", f"{root}/dirlink/g"),
        FileEvent("file", f"{root}/sub/f"),
    ]


def test_scanned_file_is_not_reported_again_when_its_close_event_arrives(tmp_path):
    write(f"{tmp_path}/old")
    with Watcher([str(tmp_path)]) as w:
        assert list(w.scan()) == [FileEvent("file", f"{tmp_path}/old")]
        with open(f"{tmp_path}/old", "ab"):
            pass  # close-after-write without writing: same mtime and size
        assert collect(w, 0) == []


def test_startup_scan_of_a_big_tree_streams_and_keeps_nothing_per_old_file(tmp_path):
    """Regression (100,000-file tree: 136 MiB): the walk listed each directory into a
    list of DirEntry objects (each with its cached stat) and remembered every file."""
    root = tmp_path / "big"
    for d in ("", "sub/", "sub/deeper/"):
        (root / d).mkdir(parents=True, exist_ok=True)
        for i in range(2000):
            (root / f"{d}f{i:05d}").write_bytes(b"x")
    time.sleep(OPEN_AT_START + 0.1)  # files older than the watch: no close event can come
    with Watcher([str(root)]) as w:
        tracemalloc.start()
        try:
            count = sum(1 for _ in w.scan())
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert count == 6000
    assert peak < 512 * 1024, f"scanning 6,000 files took {peak} bytes"


def traced_size(make) -> int:
    """Bytes allocated by make() and still held by what it returns."""
    tracemalloc.start()
    try:
        kept = make()
        size = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return size


def test_compact_stat_keeps_what_the_polling_snapshot_reads(tmp_path):
    write(f"{tmp_path}/f", b"12345")
    os.symlink("f", f"{tmp_path}/l")
    compact = compact_stat(os.lstat)
    for name in ("f", "l", ""):
        st, c = os.lstat(f"{tmp_path}/{name}"), compact(f"{tmp_path}/{name}")
        assert (c.st_mode, c.st_ino, c.st_dev, c.st_size, c.st_mtime) == (
            st.st_mode,
            st.st_ino,
            st.st_dev,
            st.st_size,
            st.st_mtime,
        )
    assert compact(f"{tmp_path}/f").st_mode is compact(f"{tmp_path}/f").st_mode  # shared
    assert (
        traced_size(lambda: [compact(f"{tmp_path}/f") for _ in range(1000)])
        < traced_size(lambda: [os.lstat(f"{tmp_path}/f") for _ in range(1000)]) / 2
    )
    with pytest.raises(FileNotFoundError):
        compact(f"{tmp_path}/missing")


def test_recent_files_remembers_the_last_signature_for_one_window():
    r = RecentFiles(10.0)
    r.remember("/a", (1, 5), 100.0)
    assert r.seen("/a", (1, 5), 109.0) and not r.seen("/a", (2, 5), 109.0)
    assert not r.seen("/a", (1, 5), 110.5) and not r.seen("/b", (1, 5), 101.0)
    r.remember("/a", (2, 5), 101.0)
    assert r.seen("/a", (2, 5), 102.0) and not r.seen("/a", (1, 5), 102.0)
    r.forget("/a")
    assert not r.seen("/a", (2, 5), 102.0)


def test_recent_files_drops_old_generations_as_time_passes():
    r = RecentFiles(10.0)
    for i in range(100):
        r.remember(f"/old{i}", (i, 1), 100.0)
    r.remember("/mid", (0, 1), 111.0)
    assert len(r) == 101 and r.seen("/mid", (0, 1), 112.0)
    r.remember("/new", (0, 1), 122.0)
    assert len(r) == 2 and r.seen("/mid", (0, 1), 120.0) and r.seen("/new", (0, 1), 122.0)


def test_non_recursive_watcher_ignores_subdirectories(tmp_path):
    with Watcher([str(tmp_path)], recursive=False) as w:
        os.makedirs(f"{tmp_path}/d")
        write(f"{tmp_path}/d/inner")
        write(f"{tmp_path}/top")
        assert collect(w, 1) == [FileEvent("file", f"{tmp_path}/top")]


def test_get_events_returns_at_most_max_count_and_keeps_the_rest(tmp_path):
    with Watcher([str(tmp_path)]) as w:
        for i in range(5):
            write(f"{tmp_path}/f{i}")
        # All five must be in hand for max_count to have something to keep: wait for
        # watchdog to have queued their raw events (created and closed, for each file).
        wait_for(lambda: w._queue.qsize() >= 10, 10, "the five files' events", every=0.01)
        first = w.get_events(5, max_count=2)
        rest = collect(w, 3)
        assert len(first) == 2 and len(rest) == 3
        assert {e.path for e in first + rest} == {f"{tmp_path}/f{i}" for i in range(5)}


def test_missing_directory_is_a_clear_watch_error(tmp_path):
    w = Watcher([str(tmp_path / "nope")])
    with pytest.raises(WatchError, match=r"watched directory .*/nope does not exist"):
        w.start()


def test_file_given_as_directory_is_a_watch_error(tmp_path):
    write(f"{tmp_path}/plain")
    with pytest.raises(SarraError, match="is not a directory"):
        Watcher([f"{tmp_path}/plain"]).start()


@pytest.mark.parametrize(
    "err,sysctl",
    [(errno.ENOSPC, "fs.inotify.max_user_watches=524288"), (errno.EMFILE, "max_user_instances")],
)
def test_inotify_limits_raise_watch_limit_error_naming_the_sysctl(
    tmp_path, monkeypatch, err, sysctl
):
    import watchdog.observers.inotify as wi

    def refuse(*a, **k):
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(wi, "InotifyObserver", refuse)
    with pytest.raises(WatchLimitError, match=sysctl):
        Watcher([str(tmp_path)]).start()


def test_watch_limit_on_the_top_directory_is_reported(tmp_path, monkeypatch):
    import watchdog.observers.inotify_c as wic

    def refuse(self, path, mask):
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(wic.InotifyFD, "_get_or_create_watch", refuse)
    with pytest.raises(WatchLimitError, match="sysctl -w fs.inotify.max_user_watches=524288"):
        Watcher([str(tmp_path)]).start()


def test_falls_back_to_polling_with_a_warning_when_inotify_is_unusable(
    tmp_path, monkeypatch, caplog
):
    import watchdog.observers.inotify as wi

    def refuse(*a, **k):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(wi, "InotifyObserver", refuse)
    with caplog.at_level(logging.WARNING, logger="sarra.watch.watcher"):
        with Watcher([str(tmp_path)], poll_interval=POLL) as w:
            assert w.polling
            write(f"{tmp_path}/f")
            assert collect(w, 1) == [FileEvent("file", f"{tmp_path}/f")]
    assert any("polling" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "inflight,rel,expected",
    [
        (".tmp", "a/b.tmp", True),
        (".tmp", "a/b.tmpx", False),
        (".", "a/.hidden", True),
        (".", ".d/visible", False),
        ("tmp/", "tmp/f", True),
        ("tmp/", "x/tmp/f", True),
        ("tmp/", "tmp", False),
        ("NONE", "x.tmp", False),
    ],
)
def test_inflight_patterns(inflight, rel, expected):
    assert inflight_matcher(inflight)(rel) is expected


def test_unknown_inflight_value_is_a_config_error():
    with pytest.raises(ConfigError, match="inflight '30' not understood"):
        inflight_matcher("30")


def test_files_in_inflight_subdir_are_reported_when_moved_out(tmp_path, mode):
    os.mkdir(f"{tmp_path}/tmp")
    with Watcher(
        [str(tmp_path)], inflight="tmp/", force_polling=mode == "polling", poll_interval=POLL
    ) as w:
        write(f"{tmp_path}/tmp/x")
        assert w.get_events(quiet_time(w)) == []  # listens that long: nothing in tmp/
        os.rename(f"{tmp_path}/tmp/x", f"{tmp_path}/x")
        assert collect(w, 1) == [FileEvent("file", f"{tmp_path}/x")]
