"""dd_watch's source and role against a scripted watcher and the in-memory fake broker:
which notices each file event gives, in which order, and that nothing unconfirmed is lost."""

from __future__ import annotations

import logging
import os
from typing import Iterable, List

import pytest

from sarra import cli
from sarra.config.loader import load
from sarra.config.paths import Paths
from sarra.core.errors import ConfigError, ConnectionLost
from sarra.flow.engine import Flow
from sarra.flow.sinks import NoticePublisher
from sarra.post.notices import NoticeMaker
from sarra.roles import watch as role
from sarra.watch.source import WatchSource, mask_selector
from sarra.watch.watcher import FileEvent, WatchLimitError
from tests.fixtures.fakebroker import FakeBroker


class ScriptedWatcher:
    """Hands out the event lists given to ``feed``, one list per ``get_events`` call."""

    def __init__(self, existing: Iterable[FileEvent] = ()) -> None:
        self.batches: List[List[FileEvent]] = []
        self.existing = existing
        self.stopped = False

    def feed(self, *events: FileEvent) -> None:
        self.batches.append(list(events))

    def get_events(self, timeout: float, max_count: int = 1000) -> List[FileEvent]:
        if not self.batches:
            return []
        batch = self.batches[0]
        out, rest = batch[:max_count], batch[max_count:]
        if rest:
            self.batches[0] = rest
        else:
            self.batches.pop(0)
        return out

    def scan(self):
        return iter(self.existing)

    def stop(self) -> None:
        self.stopped = True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def options(tmp_path, *lines: str):
    """Watch options as a config file would give them (post_base_dir = tmp_path)."""
    conf = tmp_path / "w.conf"
    conf.write_text(
        "\n".join(
            [
                "post_broker amqp://alice@localhost/",
                "post_base_url http://localhost:8090/",
                f"post_base_dir {tmp_path}",
                f"path {tmp_path}/w",
                *lines,
            ]
        )
        + "\n"
    )
    return load("dd_watch", str(conf), paths=Paths.under(tmp_path / "sarra"))


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "w").mkdir()
    return tmp_path / "w"


def setup(tmp_path, *lines, existing=(), retry_delay=10.0):
    o = options(tmp_path, *lines)
    watcher = ScriptedWatcher(existing)
    clock = Clock()
    source = WatchSource(
        watcher,
        NoticeMaker(o, broker_user="alice", broker_host="localhost"),
        events=o.events,
        accepted=mask_selector(o),
        post_on_start=bool(o.post_on_start),
        retry_delay=retry_delay,
        clock=clock,
    )
    broker = FakeBroker()
    flow = Flow(source=source, publisher=NoticePublisher(broker, "xs_alice"), batch=o.batch)
    return watcher, source, broker, flow, clock


def posted(broker) -> List[tuple]:
    """(relpath, sum flag, oldname/newname) of each published notice, in order."""
    out = []
    for m in broker.published:
        relpath = m.body.decode().split()[2]
        extra = m.headers.get("newname") or m.headers.get("oldname") or ""
        out.append((relpath, m.headers["sum"][0], extra))
    return out


def write(path, data=b"hello\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def test_complete_file_is_posted_once_with_its_checksum_to_the_post_exchange(tmp_path, tree):
    watcher, source, broker, flow, _ = setup(tmp_path)
    watcher.feed(FileEvent("file", write(tree / "a.txt")))
    assert flow.run_once() == 1
    assert posted(broker) == [("w/a.txt", "d", "")]
    out = broker.published[0]
    assert out.exchange == "xs_alice" and out.routing_key == "v02.post.w"
    assert out.headers["parts"] == "1,6,1,0,0" and out.headers["source"] == "alice"
    assert source.posted == 1


def test_file_with_blocksize_is_posted_as_one_notice_per_block(tmp_path, tree):
    watcher, _, broker, flow, _ = setup(tmp_path, "blocksize 1000")
    watcher.feed(FileEvent("file", write(tree / "big.bin", b"x" * 2500)))
    flow.run_once()
    assert [m.headers["parts"] for m in broker.published] == [
        "i,1000,3,500,0",
        "i,1000,3,500,1",
        "i,1000,3,500,2",
    ]


def test_removal_and_symlink_give_r_and_l_posts(tmp_path, tree):
    watcher, _, broker, flow, _ = setup(tmp_path)
    os.symlink("a.txt", tree / "l")
    watcher.feed(FileEvent("remove", str(tree / "gone.txt")), FileEvent("link", str(tree / "l")))
    flow.run_once()
    assert posted(broker) == [("w/gone.txt", "R", ""), ("w/l", "L", "")]
    assert broker.published[1].headers["link"] == "a.txt"


def test_rename_is_the_spec_pair_removal_with_newname_then_post_with_oldname(tmp_path, tree):
    watcher, _, broker, flow, _ = setup(tmp_path)
    new = write(tree / "after.txt")
    watcher.feed(FileEvent("rename", new, old_path=str(tree / "before.txt")))
    flow.run_once()
    assert posted(broker) == [
        ("w/before.txt", "R", "w/after.txt"),
        ("w/after.txt", "d", "w/before.txt"),
    ]


def test_directory_rename_posts_its_files_then_one_removal_for_the_old_directory(tmp_path, tree):
    watcher, _, broker, flow, _ = setup(tmp_path)
    f1 = write(tree / "d2" / "f1")
    f2 = write(tree / "d2" / "sub" / "f2")
    watcher.feed(
        FileEvent("rename", str(tree / "d2"), old_path=str(tree / "d"), is_dir=True),
        FileEvent(
            "rename", str(tree / "d2" / "sub"), old_path=str(tree / "d" / "sub"), is_dir=True
        ),
    )
    watcher.feed(
        FileEvent("rename", f1, old_path=str(tree / "d" / "f1")),
        FileEvent("rename", f2, old_path=str(tree / "d" / "sub" / "f2")),
    )
    flow.run_once()
    assert posted(broker) == [
        ("w/d/f1", "R", "w/d2/f1"),
        ("w/d2/f1", "d", "w/d/f1"),
        ("w/d/sub/f2", "R", "w/d2/sub/f2"),
        ("w/d2/sub/f2", "d", "w/d/sub/f2"),
        ("w/d", "R", "w/d2"),
    ]


def test_unconfirmed_post_is_kept_and_posted_after_retry_delay(tmp_path, tree, caplog):
    watcher, source, broker, flow, clock = setup(tmp_path, retry_delay=10.0)
    broker.fail_publish = lambda o: True
    watcher.feed(FileEvent("file", write(tree / "a.txt")))
    with caplog.at_level(logging.WARNING):
        flow.run_once()
    assert broker.published == [] and source.backlog == 1
    assert "w/a.txt not posted (attempt 1)" in caplog.text
    broker.fail_publish = lambda o: False
    assert flow.run_once() == 0  # not due yet
    clock.now += 10
    assert flow.run_once() == 1
    assert posted(broker) == [("w/a.txt", "d", "")] and source.backlog == 0


def test_kept_posts_go_out_before_newer_events(tmp_path, tree):
    watcher, source, broker, flow, clock = setup(tmp_path, retry_delay=0.0)
    broker.fail_publish = lambda o: True
    watcher.feed(FileEvent("file", write(tree / "first")))
    flow.run_once()
    broker.fail_publish = lambda o: False
    watcher.feed(FileEvent("file", write(tree / "second")))
    flow.run_once()
    assert [p[0] for p in posted(broker)] == ["w/first", "w/second"]


def test_kept_file_post_is_dropped_when_the_file_is_gone_by_then(tmp_path, tree):
    watcher, source, broker, flow, clock = setup(tmp_path, retry_delay=0.0)
    broker.fail_publish = lambda o: True
    path = write(tree / "a.txt")
    watcher.feed(FileEvent("file", path))
    flow.run_once()
    os.unlink(path)
    broker.fail_publish = lambda o: False
    watcher.feed(FileEvent("remove", path))
    flow.run_once()
    assert posted(broker) == [("w/a.txt", "R", "")]


def test_batch_lost_with_the_connection_is_offered_again(tmp_path, tree):
    watcher, source, broker, flow, _ = setup(tmp_path)
    watcher.feed(FileEvent("file", write(tree / "a")), FileEvent("file", write(tree / "b")))
    broker.lose_connection_on = "publish"
    with pytest.raises(ConnectionLost):
        flow.run_once()
    assert flow.run_once() == 2
    assert [p[0] for p in posted(broker)] == ["w/a", "w/b"]


def test_rejected_paths_are_not_posted_and_a_rename_from_a_rejected_name_is_a_plain_post(
    tmp_path, tree
):
    watcher, _, broker, flow, _ = setup(tmp_path, "reject .*\\.junk$", "accept .*")
    new = write(tree / "good.txt")
    watcher.feed(
        FileEvent("file", write(tree / "x.junk")),
        FileEvent("rename", new, old_path=str(tree / "was.junk")),
    )
    flow.run_once()
    assert posted(broker) == [("w/good.txt", "d", "")]


def test_events_without_delete_post_no_removals(tmp_path, tree):
    watcher, _, broker, flow, _ = setup(tmp_path, "events create,modify,link")
    new = write(tree / "b")
    watcher.feed(
        FileEvent("remove", str(tree / "gone")), FileEvent("rename", new, old_path=str(tree / "a"))
    )
    flow.run_once()
    assert posted(broker) == [("w/b", "d", "w/a")]


def test_post_on_start_posts_existing_files_before_new_events(tmp_path, tree):
    old = write(tree / "old")
    watcher, _, broker, flow, _ = setup(
        tmp_path, "post_on_start", existing=[FileEvent("file", old)]
    )
    watcher.feed(FileEvent("file", write(tree / "new")))
    flow.run_once()
    flow.run_once()
    assert [p[0] for p in posted(broker)] == ["w/old", "w/new"]


def test_vanished_file_is_skipped_without_failing_the_batch(tmp_path, tree):
    watcher, source, broker, flow, _ = setup(tmp_path)
    watcher.feed(FileEvent("file", str(tree / "never")), FileEvent("file", write(tree / "b")))
    flow.run_once()
    assert posted(broker) == [("w/b", "d", "")] and source.backlog == 0


def test_close_logs_every_change_not_posted_and_stops_the_watcher(tmp_path, tree, caplog):
    watcher, source, broker, flow, _ = setup(tmp_path)
    broker.fail_publish = lambda o: True
    watcher.feed(FileEvent("file", write(tree / "kept")))
    flow.run_once()
    watcher.feed(FileEvent("file", write(tree / "pending")))
    with caplog.at_level(logging.ERROR):
        source.close()
    assert watcher.stopped
    assert "2 change(s) not posted" in caplog.text
    assert "w/kept" in caplog.text and "pending" in caplog.text


def test_inflight_seconds_become_a_minimum_age_and_suffixes_stay_names(tmp_path, tree):
    w = role.make_watcher(options(tmp_path, "inflight 5"))
    assert w.min_age == 5.0
    w = role.make_watcher(options(tmp_path, "inflight .part", "force_polling", "sleep 0.5"))
    assert w.min_age == 0.0 and w.force_polling and w.poll_interval == 0.5


def test_no_path_is_a_config_error(tmp_path):
    o = options(tmp_path, "path None")
    with pytest.raises(ConfigError, match="nothing to watch"):
        role.make_watcher(o)


def test_missing_directory_exits_non_zero_with_one_line(tmp_path, monkeypatch, capsys):
    conf = tmp_path / "config" / "watch" / "m.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text(
        f"post_broker amqp://guest@localhost/\npost_base_url http://x/\npath {tmp_path}/missing\n"
    )
    monkeypatch.setattr(cli.Paths, "from_env", classmethod(lambda cls: Paths.under(tmp_path)))
    assert cli.main("dd_watch", ["foreground", "m"]) == cli.EXIT_FAILURE
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"dd_watch: error: watched directory {tmp_path}/missing does not exist"


def test_inotify_limit_exits_non_zero_with_the_sysctl_to_raise(tmp_path, monkeypatch, capsys):
    (tmp_path / "w").mkdir()
    conf = tmp_path / "config" / "watch" / "m.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text(
        f"post_broker amqp://guest@localhost/\npost_base_url http://x/\npath {tmp_path}/w\n"
    )
    text = "inotify watch limit reached: raise fs.inotify.max_user_watches"

    def refuse(self):
        raise WatchLimitError(text)

    monkeypatch.setattr(role.Watcher, "start", refuse)
    monkeypatch.setattr(cli.Paths, "from_env", classmethod(lambda cls: Paths.under(tmp_path)))
    assert cli.main("dd_watch", ["foreground", "m"]) == cli.EXIT_FAILURE
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"dd_watch: error: {text}"


def test_post_on_start_takes_existing_files_from_the_scan_one_batch_at_a_time(tmp_path, tree):
    """The start-up scan is streamed: never read ahead of what one batch posts (a big
    tree must not be listed, or turned into notices, all at once)."""
    paths = [write(tree / f"f{i:03d}") for i in range(25)]
    pulled = []

    def scan():
        for p in paths:
            pulled.append(p)
            yield FileEvent("file", p)

    watcher, _, broker, flow, _ = setup(tmp_path, "post_on_start", "batch 10", existing=scan())
    assert flow.run_once() == 10
    assert len(pulled) == 10 and len(broker.published) == 10
    assert flow.run_once() == 10
    assert len(pulled) == 20
    while flow.run_once():
        pass
    assert len(pulled) == 25
    assert [p[0] for p in posted(broker)] == [f"w/f{i:03d}" for i in range(25)]
