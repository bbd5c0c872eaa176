"""dd_watch end to end: the real command against the local RabbitMQ and a temp tree.

``python -m sarra.cli dd_watch foreground w`` runs in a subprocess; a plain pika consumer
bound to ``xs_guest`` counts notices by (relpath, sum flag).  Every scenario runs with
inotify and in polling mode (``force_polling``, ``sleep 0.5``).  Each test waits for the
expected notices, then for a quiet spell, and asserts exactly those arrived: each once,
none for temporary names.  Figures (burst time, close->notice latency) are printed
(``-s``), never asserted.
"""

from __future__ import annotations

import collections
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pika
import pytest

from tests.fixtures import rabbit as rmq
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.flow, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
EXCHANGE = "xs_guest"
MODES = {"inotify": [], "polling": ["force_polling on", "sleep 0.5"]}
QUIET = {"inotify": 1.0, "polling": 2.0}


class Consumer(threading.Thread):
    """Counts every notice on the exchange by (relpath, sum flag); keeps arrival times."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.counts: collections.Counter = collections.Counter()
        self.arrived: Dict[str, float] = {}
        self.headers: Dict[str, dict] = {}
        self.ready = threading.Event()
        self.halt = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        conn = pika.BlockingConnection(pika.URLParameters(self.url))
        ch = conn.channel()
        ch.exchange_declare(EXCHANGE, "topic", durable=True)
        # Not exclusive: rebind() works on it from another connection (the vhost is removed
        # after the test, with the queue).
        queue = ch.queue_declare("q_guest.watch_test").method.queue
        ch.queue_bind(queue, EXCHANGE, "#")
        self.queue = queue
        self.ready.set()
        for method, props, body in ch.consume(queue, auto_ack=True, inactivity_timeout=0.05):
            if self.halt.is_set():
                break
            if method is None:
                continue
            now = time.monotonic()
            relpath = body.decode().split()[2]
            with self.lock:
                self.counts[(relpath, props.headers["sum"][0])] += 1
                self.arrived.setdefault(relpath, now)
                self.headers[relpath] = dict(props.headers)
        conn.close()

    def rebind(self) -> None:
        """Re-create the exchange and the binding (after a test deleted the exchange)."""
        with pika.BlockingConnection(pika.URLParameters(self.url)) as conn:
            ch = conn.channel()
            ch.exchange_declare(EXCHANGE, "topic", durable=True)
            ch.queue_bind(self.queue, EXCHANGE, "#")

    def snapshot(self) -> collections.Counter:
        with self.lock:
            return collections.Counter(self.counts)

    def expect(self, expected: Dict[Tuple[str, str], int], quiet: float, timeout: float = 60):
        """Wait until ``expected`` arrived, then ``quiet`` s more; return all counts."""
        wait_for(
            lambda: all(self.snapshot()[k] >= n for k, n in expected.items()),
            timeout,
            every=0.05,
            fail=False,  # the caller compares the counts, and shows them
        )
        time.sleep(quiet)  # the point: a duplicate notice would come now (nothing to wait on)
        return self.snapshot()


class Watch:
    """A running ``dd_watch foreground w`` with its tree, consumer and log."""

    def __init__(self, tmp: Path, url: str, mode: str, extra: List[str]) -> None:
        self.mode = mode
        self.quiet = QUIET[mode]
        self.data = tmp / "data"
        self.tree = self.data / "w"
        self.tree.mkdir(parents=True)
        home = tmp / "home"
        conf = home / ".config" / "sarra" / "watch" / "w.conf"
        conf.parent.mkdir(parents=True)
        lines = [
            f"post_broker {url}",
            "post_base_url http://localhost:8090/",
            f"post_base_dir {self.data}",
            f"path {self.tree}",
            "retry_delay 1",
            *MODES[mode],
            *extra,
        ]
        conf.write_text("\n".join(lines) + "\n")
        self.env = dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_CACHE_HOME=str(home / ".cache"),
        )
        self.log = tmp / "dd_watch.log"
        self.consumer = Consumer(url)
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> None:
        self.consumer.start()
        assert self.consumer.ready.wait(15)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sarra.cli", "dd_watch", "foreground", "w"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

        def posting() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            return "posting to exchange" in self.log.read_text()

        wait_for(posting, 20, "dd_watch to start posting", every=0.05)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(30)
        self.consumer.halt.set()
        self.consumer.join(10)
        return code

    def expect(self, expected, timeout=60):
        got = self.consumer.expect(expected, self.quiet, timeout)
        assert dict(got) == expected, self.log.read_text()[-3000:]


@pytest.fixture(params=sorted(MODES))
def mode(request) -> str:
    return request.param


@pytest.fixture
def make_watch(tmp_path, vhost, mode):
    made: List[Watch] = []

    def make(*extra: str, start: bool = True) -> Watch:
        w = Watch(tmp_path, rmq.amqp_url(vhost), mode, list(extra))
        made.append(w)
        if start:
            w.start()
        return w

    yield make
    for w in made:
        if w.proc is not None:
            assert w.stop() == 0, w.log.read_text()[-3000:]


@pytest.fixture
def watch(make_watch) -> Watch:
    return make_watch()


def write(path: Path, data: bytes = b"hello\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def test_written_file_is_posted_once(watch):
    write(watch.tree / "a.txt")
    watch.expect({("w/a.txt", "d"): 1})


def test_file_renamed_into_the_tree_is_posted_once(watch):
    write(watch.data / "outside" / "x")
    os.rename(watch.data / "outside" / "x", watch.tree / "x")
    watch.expect({("w/x", "d"): 1})


def test_deleted_file_is_posted_as_a_removal(watch):
    write(watch.tree / "gone")
    watch.expect({("w/gone", "d"): 1})
    os.unlink(watch.tree / "gone")
    watch.expect({("w/gone", "d"): 1, ("w/gone", "R"): 1})


def test_symlink_is_posted_as_a_link(watch):
    write(watch.tree / "a")
    watch.expect({("w/a", "d"): 1})
    os.symlink("a", watch.tree / "l")
    watch.expect({("w/a", "d"): 1, ("w/l", "L"): 1})
    assert watch.consumer.headers["w/l"]["link"] == "a"


def test_rename_within_the_tree_is_the_removal_and_post_pair(watch):
    write(watch.tree / "before")
    watch.expect({("w/before", "d"): 1})
    os.rename(watch.tree / "before", watch.tree / "after")
    watch.expect({("w/before", "d"): 1, ("w/before", "R"): 1, ("w/after", "d"): 1})
    assert watch.consumer.headers["w/after"]["oldname"] == "w/before"


def test_nested_mkdir_p_burst_posts_every_file_once(watch):
    expected = {}
    for r in range(5):
        deep = watch.tree / f"r{r}" / "a" / "b" / "c"
        deep.mkdir(parents=True)
        for level in (deep.parents[2], deep.parents[1], deep.parents[0], deep):
            for i in range(3):
                write(level / f"f{i}")
                expected[(str((level / f"f{i}").relative_to(watch.data)), "d")] = 1
    watch.expect(expected)


def test_tmp_file_renamed_to_its_name_is_posted_once_and_never_as_tmp(watch):
    write(watch.tree / "data.bin.tmp", b"z" * 100_000)
    time.sleep(0.3)  # the point: a watcher that wrongly posts .tmp files has time to do it
    os.rename(watch.tree / "data.bin.tmp", watch.tree / "data.bin")
    watch.expect({("w/data.bin", "d"): 1})


def test_file_written_slowly_is_posted_once_after_close(watch):
    path = watch.tree / "slow"
    with open(path, "wb") as f:
        for _ in range(10):
            f.write(b"s" * 1000)
            f.flush()
            time.sleep(0.2)  # the point: the file stays open for 2 s while written
    watch.expect({("w/slow", "d"): 1})
    assert watch.consumer.headers["w/slow"]["parts"] == "1,10000,1,0,0"


def test_unconfirmed_post_is_kept_and_posted_once_the_exchange_is_back(watch, vhost):
    if watch.mode == "polling":
        pytest.skip("the retry path does not depend on the watching mode")
    with pika.BlockingConnection(pika.URLParameters(rmq.amqp_url(vhost))) as conn:
        conn.channel().exchange_delete(EXCHANGE)
    write(watch.tree / "kept")
    wait_for(lambda: "kept to retry" in watch.log.read_text(), 20, "the post kept", every=0.05)
    watch.consumer.rebind()
    watch.expect({("w/kept", "d"): 1})


def test_burst_of_files_is_posted_completely_each_once(watch):
    n = 10_000
    burst = watch.tree / "burst"
    t0 = time.monotonic()
    burst.mkdir()
    for i in range(n):
        with open(burst / f"f{i:05d}", "wb") as f:
            f.write(b"%d\n" % i)
    written = time.monotonic() - t0
    expected = {(f"w/burst/f{i:05d}", "d"): 1 for i in range(n)}
    got = watch.consumer.expect(expected, 0.0, timeout=300)
    done = time.monotonic() - t0
    print(
        f"\n[{watch.mode}] {n} files: written in {written:.2f} s, "
        f"all notices at the consumer after {done:.2f} s"
    )
    time.sleep(watch.quiet)  # the point: a duplicate notice would come now
    assert dict(watch.consumer.snapshot()) == expected
    assert got == watch.consumer.snapshot()


def test_close_to_notice_latency_over_200_files(watch):
    closed: Dict[str, float] = {}
    for i in range(200):
        path = watch.tree / f"lat{i:03d}"
        with open(path, "wb") as f:
            f.write(b"y" * 1000)
        closed[f"w/lat{i:03d}"] = time.monotonic()
        time.sleep(0.02)  # files closed one by one, as a producer does: latency, not burst
    watch.expect({(rel, "d"): 1 for rel in closed})
    lat = sorted(watch.consumer.arrived[rel] - t for rel, t in closed.items())
    print(
        f"\n[{watch.mode}] close -> notice at consumer, 200 files 20 ms apart: median "
        f"{statistics.median(lat) * 1000:.1f} ms, p90 {lat[180] * 1000:.1f} ms, "
        f"max {lat[-1] * 1000:.1f} ms"
    )


def test_existing_files_are_posted_at_start_with_post_on_start(make_watch):
    w = make_watch("post_on_start on", start=False)
    write(w.tree / "old1")
    write(w.tree / "sub" / "old2")
    w.start()
    write(w.tree / "new")
    w.expect({("w/old1", "d"): 1, ("w/sub/old2", "d"): 1, ("w/new", "d"): 1})


def test_missing_directory_fails_with_one_line_and_a_non_zero_status(make_watch):
    w = make_watch(start=False)
    w.tree.rmdir()
    proc = subprocess.run(
        [sys.executable, "-m", "sarra.cli", "dd_watch", "foreground", "w"],
        env=w.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert errors == [f"dd_watch: error: watched directory {w.tree} does not exist"]
