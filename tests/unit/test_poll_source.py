"""dd_poll's source with a fake server: each file posted once, again when it changes,
nothing twice after a restart, hostile listings contained."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from sarra.config.loader import Mask
from sarra.core.delivery import Delivery
from sarra.core.errors import TransferError
from sarra.core.message import new_post
from sarra.poll.source import Polled, PollSource
from sarra.poll.state import PollState
from sarra.poll.walker import MAX_DEPTH, Found
from sarra.transfer import Entry

NOW = 1_750_000_000.0


class FakeServer:
    """``tree``: directory path -> entries; a directory listed in ``broken`` fails after
    its first entry."""

    def __init__(self, tree: Dict[str, List[Entry]]) -> None:
        self.tree = tree
        self.broken: set = set()
        self.listed: List[str] = []
        self.closed = 0

    def listing(self, path: str) -> Iterator[Entry]:
        self.listed.append(path)
        if path not in self.tree:
            raise TransferError(f"no such directory {path}", permanent=True)
        for i, e in enumerate(self.tree[path]):
            if i == 1 and path in self.broken:
                raise TransferError("connection reset")
            yield e

    def close(self) -> None:
        self.closed += 1


def f(name: str, size: int = 1, mtime: float = NOW - 60) -> Entry:
    return Entry(name, False, size, mtime, f"{size} {mtime}")


def d(name: str) -> Entry:
    return Entry(name, is_dir=True)


def mask(pattern: str, accept: bool = True) -> Mask:
    return Mask(re.compile(pattern), accept, ".", False, 0, "/", "test")


def make_notice(found: Found) -> Any:
    return new_post("sftp://u@h/", found.path.lstrip("/"), {"sum": "z,d"})


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def source(tmp_path: Path, server: FakeServer, masks=None, **kw: Any) -> PollSource:
    clock = Clock()
    return PollSource(
        server,  # type: ignore[arg-type]
        [Polled("/data", masks or [mask(".*")])],
        PollState(tmp_path / "seen.sqlite", horizon=kw.pop("horizon", 86400.0)),
        make_notice,
        interval=10.0,
        clock=clock,
        sleep=clock.sleep,
        file_time_limit=kw.pop("file_time_limit", 0.0),
        **kw,
    )


def one_pass(src: PollSource, fail: bool = False) -> List[str]:
    """Run a whole pass as the flow would: every delivery settled OK (or FAILED)."""
    got: List[Delivery] = []
    while not got or src._found is not None:
        batch = src.gather(2, 1.0)
        for dv in batch:
            if fail:
                dv.fail("broker said no")
            else:
                dv.ok(201, "Published")
            src.settle(dv)
        src.flush()
        got.extend(batch)
        if not batch and src._found is None:
            break
    src.sleep(src.interval)
    return sorted(dv.notice.relpath for dv in got)


@pytest.fixture
def server() -> FakeServer:
    return FakeServer({"/data": [f("a"), f("b"), d("sub")], "/data/sub": [f("c")]})


def test_each_file_is_posted_once_then_again_when_its_line_changes(tmp_path, server):
    src = source(tmp_path, server)
    assert one_pass(src) == ["data/a", "data/b", "data/sub/c"]
    assert one_pass(src) == []
    server.tree["/data"][0] = f("a", size=2)
    server.tree["/data/sub"].append(f("new"))
    assert one_pass(src) == ["data/a", "data/sub/new"]
    assert server.closed == 3  # the connection is not kept between passes


def test_a_restart_posts_nothing_twice_and_misses_nothing(tmp_path, server):
    src = source(tmp_path, server)
    one_pass(src)
    src.close()
    server.tree["/data"].append(f("while stopped"))
    assert one_pass(source(tmp_path, server)) == ["data/while stopped"]


def test_a_post_that_failed_is_posted_again_at_the_next_pass(tmp_path, server):
    src = source(tmp_path, server)
    assert len(one_pass(src, fail=True)) == 3
    assert len(one_pass(src)) == 3
    assert one_pass(src) == []


def test_masks_apply_to_names_and_inflight_names_wait_for_their_rename(tmp_path, server):
    server.tree["/data"] += [f("x.tmp"), f(".part"), f("skip.me")]
    src = source(tmp_path, server, [mask("skip", accept=False), mask(".*")])
    assert one_pass(src) == ["data/.part", "data/a", "data/b", "data/sub/c"]


def test_files_older_than_file_time_limit_are_not_posted(tmp_path, server):
    server.tree["/data"].append(f("old", mtime=NOW - 7200))
    src = source(tmp_path, server, file_time_limit=3600)
    assert "data/old" not in one_pass(src)


def test_a_listing_failing_midway_gives_nothing_more_of_that_directory(tmp_path, server, caplog):
    server.broken.add("/data")
    src = source(tmp_path, server)
    assert one_pass(src) == ["data/a"]  # b and everything below sub: next pass
    assert "listing /data failed after 1 entries" in caplog.text
    server.broken.clear()
    assert one_pass(src) == ["data/b", "data/sub/c"]


@pytest.mark.parametrize(
    "name", ["..", ".", "a/b", "a\nb", "a\x00b", "x" * 256, "\udcff", "tab\tname", ""]
)
def test_hostile_names_in_a_listing_are_refused(tmp_path, name):
    server = FakeServer({"/data": [f(name), f("ok")]})
    assert one_pass(source(tmp_path, server)) == ["data/ok"]


def test_a_server_inventing_directories_is_not_followed_for_ever(tmp_path):
    class Endless(FakeServer):
        def listing(self, path: str) -> Iterator[Entry]:
            self.listed.append(path)
            yield d("deeper")
            yield f("f")

    server = Endless({})
    posted = one_pass(source(tmp_path, server))
    assert len(server.listed) == MAX_DEPTH + 1
    assert len(posted) == MAX_DEPTH + 1


def test_entries_of_files_gone_are_forgotten_after_the_horizon(tmp_path, server):
    src = source(tmp_path, server, horizon=100.0)
    one_pass(src)
    assert len(src.state) == 3
    server.tree["/data"] = [f("a")]
    for _ in range(12):  # 10 s per pass: files b and c unseen for more than 100 s
        one_pass(src)
    assert len(src.state) == 1
    assert one_pass(src) == []  # a, still listed, was kept (seen refreshed)


@pytest.mark.parametrize(
    "lines",
    [
        ["accept .*"],  # no destination
        ["destination sftp://u@h/", "reject .*"],  # nothing accepted
        ["destination sftp://u@h/", "instances 2", "accept .*"],
    ],
)
def test_poll_configuration_errors_are_found_before_anything_runs(tmp_path, lines):
    from sarra.config.loader import load
    from sarra.config.paths import Paths
    from sarra.core.errors import ConfigError
    from sarra.roles.poll import DEFAULTS, polled

    conf = tmp_path / "p.conf"
    conf.write_text("\n".join(lines) + "\n")
    o = load("poll", str(conf), paths=Paths.under(tmp_path), defaults=DEFAULTS)
    with pytest.raises(ConfigError):
        polled(o)


def test_accept_lines_group_under_the_directory_written_before_them(tmp_path):
    from sarra.config.loader import load
    from sarra.config.paths import Paths
    from sarra.roles.poll import DEFAULTS, polled, server_directory

    conf = tmp_path / "p.conf"
    conf.write_text(
        "destination sftp://u@h/base/\ndirectory /a\nget x.*\nreject y\n"
        "directory b/${YYYYMMDD}\naccept z.*\n"
    )
    o = load("poll", str(conf), paths=Paths.under(tmp_path), defaults=DEFAULTS)
    groups = polled(o)
    assert [(g.directory, len(g.masks)) for g in groups] == [("/a", 2), ("b/${YYYYMMDD}", 1)]
    at = server_directory("/base/")
    assert at("/a") == "/base/a"
    assert re.fullmatch(r"/base/b/\d{8}", at(groups[1].directory))
