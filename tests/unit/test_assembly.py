"""Assembler: blocks of partitioned files placed in any order, completed exactly once."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

from sarra.config.loader import table_defaults
from sarra.core import partition
from sarra.core.delivery import Delivery
from sarra.core.errors import ChecksumMismatch
from sarra.core.message import Notice
from sarra.core.partition import Parts
from sarra.flow.assembly import Assembler, BlockBusy, PartsState, Shape, state_path
from sarra.flow.download import Downloader
from sarra.logs.progress import Progress
from sarra.transfer import Transfer

BASE = "http://server.example/"
PUBTIME = "20260101000000.000"


class FakeTransfer(Transfer):
    """Serves ``files`` (server path -> bytes); ``corrupt`` offsets are flipped once."""

    scheme = "http"
    chunk_size = 100

    def __init__(self, files: Dict[str, bytes]) -> None:
        super().__init__(BASE)
        self.files = files
        self.reads: List[tuple] = []
        self.corrupt: set = set()
        self.gate: Optional[Callable[[int], None]] = None
        self.lock = threading.Lock()

    def iter_read(self, path: str, offset: int, length: Optional[int]) -> Iterator[bytes]:
        with self.lock:
            self.reads.append((path, offset, length))
            bad = offset in self.corrupt
            self.corrupt.discard(offset)
        if self.gate is not None:
            self.gate(offset)
        data = self.files[path][offset : offset + length if length is not None else None]
        if bad:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        for i in range(0, len(data), self.chunk_size):
            yield data[i : i + self.chunk_size]


class Pool:
    def __init__(self, transfer: FakeTransfer) -> None:
        self.transfer = transfer

    def get(self, baseurl: str) -> FakeTransfer:
        return self.transfer


def options(**kw: Any) -> Any:
    base = dict(inplace=True, inflight=".tmp", preserve_time=True, preserve_mode=True, chmod=0o644)
    base.update(kw)
    return table_defaults("subscribe").replace(**base)


def content(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def block_notices(
    data: bytes, bsz: int, relpath: str = "data/f.bin", zero_rem: bool = False, **hdr: str
) -> List[Notice]:
    """The posts of ``data`` split in ``bsz`` blocks (dd form, or v2 ``rem=0`` form)."""
    out = []
    for p in partition.plan(len(data), bsz):
        if zero_rem and p.rem == p.bsz:
            p = Parts(p.method, p.bsz, p.count, 0, p.n)
        block = data[p.offset : p.offset + p.length]
        headers = {
            "parts": p.header(),
            "sum": "d," + hashlib.md5(block).hexdigest(),
            "mtime": "20240102030405.5",
            "mode": "640",
            **hdr,
        }
        out.append(Notice("post", PUBTIME, BASE, relpath, headers))
    return out


class Rig:
    """An Assembler writing under ``root`` with counted hooks."""

    def __init__(self, root: Path, files: Dict[str, bytes], **opts: Any) -> None:
        self.root = root
        self.transfer = FakeTransfer(files)
        self.parts: List[Delivery] = []
        self.files: List[Delivery] = []
        self.asm = Assembler(
            options(**opts),
            transfers=Pool(self.transfer),
            after_part=self.parts.append,
            after_file=self.files.append,
        )

    def deliver(self, notice: Notice, asm: Optional[Assembler] = None) -> Delivery:
        d = Delivery(notice, local_path=self.root / notice.relpath.lstrip("/"))
        (asm or self.asm).block(d, partition.parse(notice.headers["parts"]))
        return d

    def leftovers(self) -> List[str]:
        return sorted(p.name for p in self.root.rglob("*") if p.is_file() and p.name != "f.bin")


@pytest.fixture
def data() -> bytes:
    return content(2500)


def test_blocks_in_random_order_assemble_the_file_and_fire_on_file_once(tmp_path, data):
    rig = Rig(tmp_path, {"/data/f.bin": data})
    notices = block_notices(data, 256)
    random.Random(7).shuffle(notices)
    reports = [rig.deliver(n).report for n in notices]
    target = tmp_path / "data/f.bin"
    assert target.read_bytes() == data
    assert reports == [(201, "Downloaded")] * len(notices)
    assert len(rig.files) == 1 and len(rig.parts) == len(notices)
    assert rig.leftovers() == []
    assert oct(target.stat().st_mode & 0o777) == "0o640"
    assert int(target.stat().st_mtime) == 1704164645


def test_blocks_are_fetched_with_their_offset_and_length(tmp_path, data):
    rig = Rig(tmp_path, {"/data/f.bin": data})
    for n in block_notices(data, 1000):
        rig.deliver(n)
    assert rig.transfer.reads == [
        ("/data/f.bin", 0, 1000),
        ("/data/f.bin", 1000, 1000),
        ("/data/f.bin", 2000, 500),
    ]


def test_duplicate_block_deliveries_report_304_and_never_trigger_twice(tmp_path, data):
    rig = Rig(tmp_path, {"/data/f.bin": data})
    notices = block_notices(data, 1000)
    assert rig.deliver(notices[1]).report[0] == 201
    assert rig.deliver(notices[1]).report == (304, "Not modified: block already present")
    for n in notices + notices:
        rig.deliver(n)
    assert (tmp_path / "data/f.bin").read_bytes() == data
    assert len(rig.files) == 1
    assert len(rig.transfer.reads) == 3
    assert rig.leftovers() == []


@pytest.mark.parametrize("zero_rem", [False, True], ids=["rem=bsz", "rem=0 (v2)"])
@pytest.mark.parametrize("size", [1001, 1999, 2000, 3000])
def test_sizes_around_the_block_size_complete(tmp_path, size, zero_rem):
    data = content(size, seed=size)
    rig = Rig(tmp_path, {"/data/f.bin": data})
    notices = block_notices(data, 1000, zero_rem=zero_rem)
    for n in reversed(notices):
        rig.deliver(n)
    assert (tmp_path / "data/f.bin").read_bytes() == data
    assert len(rig.files) == 1 and rig.leftovers() == []


@pytest.mark.parametrize("size", [0, 1, 999, 1000, 1001, 3000])
def test_downloader_completes_every_size_whole_or_in_blocks(tmp_path, size):
    data = content(size, seed=size)
    rig = Rig(tmp_path, {"/data/f.bin": data})
    done: List[Delivery] = []
    downloader = Downloader(
        options(overwrite=True),
        locate=lambda d: setattr(d, "local_path", tmp_path / d.notice.relpath),
        transfers=Pool(rig.transfer),
        after_file=done.append,
        assembler=Assembler(options(), transfers=Pool(rig.transfer), after_file=done.append),
    )
    for n in block_notices(data, 1000):
        downloader(Delivery(n))
    assert (tmp_path / "data/f.bin").read_bytes() == data
    assert len(done) == 1


def test_v2_posts_with_leading_slash_and_zero_remainder_are_assembled(tmp_path):
    """Spec 11.6: three_parts.bin, byte k = (7k+3) mod 256, posted by v2 sr_post."""
    data = bytes((7 * k + 3) % 256 for k in range(2500))
    sums = [
        "d,10046f077f2082ac19676b8079f1cb1a",
        "d,ec7b6e58df88bc0c0fdddfed9267d71f",
        "d,9b7dd0c7d1e817888a14bf5b4887dc36",
    ]
    rig = Rig(tmp_path, {"/data/big/three_parts.bin": data})
    for n in (2, 0, 1):
        headers = {"parts": f"i,1000,3,500,{n}", "sum": sums[n], "mode": "644"}
        rig.deliver(Notice("post", PUBTIME, BASE, "/data/big/three_parts.bin", headers))
    assert (tmp_path / "data/big/three_parts.bin").read_bytes() == data
    assert len(rig.files) == 1


def test_v2_exact_multiple_with_zero_remainder_gets_a_full_last_block(tmp_path):
    data = content(3000)
    rig = Rig(tmp_path, {"/data/f.bin": data})
    notices = block_notices(data, 1000, zero_rem=True, relpath="/data/f.bin")
    assert notices[2].headers["parts"] == "i,1000,3,0,2"
    for n in notices:
        rig.deliver(n)
    assert rig.transfer.reads[-1] == ("/data/f.bin", 2000, 1000)
    assert (tmp_path / "data/f.bin").read_bytes() == data


def test_corrupt_block_is_never_counted_and_is_fetched_again(tmp_path, data):
    rig = Rig(tmp_path, {"/data/f.bin": data})
    notices = block_notices(data, 1000)
    rig.transfer.corrupt.add(1000)
    rig.deliver(notices[0])
    with pytest.raises(ChecksumMismatch):
        rig.deliver(notices[1])
    with PartsState(state_path(tmp_path / "data/f.bin")) as st:
        assert sorted(st.blocks) == [0]
    rig.deliver(notices[2])
    assert not (tmp_path / "data/f.bin").exists()
    rig.deliver(notices[1])
    assert (tmp_path / "data/f.bin").read_bytes() == data
    assert len(rig.files) == 1


def test_block_written_but_not_recorded_before_a_kill_is_fetched_again(tmp_path, data):
    rig = Rig(tmp_path, {"/data/f.bin": data})
    notices = block_notices(data, 1000)
    rig.deliver(notices[0])
    target = tmp_path / "data/f.bin"
    # What a kill -9 between the write and the record leaves: bytes, no line.
    with open(target.with_name("f.bin.tmp"), "r+b") as f:
        f.seek(1000)
        f.write(data[1000:1400])
    with open(state_path(target), "a") as f:
        f.write("1 d,torn-line-without-newl")
    rig.deliver(notices[2])
    assert not target.exists()
    rig.deliver(notices[1])
    assert ("/data/f.bin", 1000, 1000) in rig.transfer.reads
    assert target.read_bytes() == data
    assert len(rig.files) == 1 and rig.leftovers() == []


def test_crash_between_rename_and_state_removal_completes_on_next_delivery(tmp_path, data):
    rig = Rig(tmp_path, {"/data/f.bin": data})
    notices = block_notices(data, 1000)
    target = tmp_path / "data/f.bin"
    target.parent.mkdir(parents=True)
    target.write_bytes(data)
    with PartsState(state_path(target)) as st:
        st.reset(Shape(2500, 1000, 3, PUBTIME), (0, 1, 2))
    d = rig.deliver(notices[1])
    assert d.report == (201, "Downloaded")
    assert len(rig.files) == 1 and rig.leftovers() == []


def _gate_for(offsets: set, barrier: threading.Barrier) -> Callable[[int], None]:
    def gate(offset: int) -> None:
        if offset in offsets:
            barrier.wait(10)

    return gate


@pytest.mark.parametrize("round_", range(10))
def test_two_threads_landing_the_last_two_blocks_complete_exactly_once(tmp_path, round_):
    data = content(3000, seed=round_)
    rig = Rig(tmp_path, {"/data/f.bin": data})
    notices = block_notices(data, 1000)
    rig.deliver(notices[0])
    rig.transfer.gate = _gate_for({1000, 2000}, threading.Barrier(2))
    second = Assembler(options(), transfers=Pool(rig.transfer), after_file=rig.files.append)
    errors: List[BaseException] = []

    def run(notice: Notice, asm: Assembler) -> None:
        try:
            rig.deliver(notice, asm)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [
        threading.Thread(target=run, args=(notices[1], rig.asm)),
        threading.Thread(target=run, args=(notices[2], second)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert errors == []
    assert len(rig.files) == 1
    assert (tmp_path / "data/f.bin").read_bytes() == data
    assert rig.leftovers() == []


def _process_block(root: str, data: bytes, index: int, log: str, barrier: Any) -> None:
    notices = block_notices(data, 1000)
    transfer = FakeTransfer({"/data/f.bin": data})
    transfer.gate = lambda offset: barrier.wait(10)

    def fired(d: Delivery) -> None:
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")

    asm = Assembler(options(), transfers=Pool(transfer), after_file=fired)
    d = Delivery(notices[index], local_path=Path(root) / "data/f.bin")
    asm.block(d, partition.parse(notices[index].headers["parts"]))


def test_two_processes_landing_the_last_two_blocks_complete_exactly_once(tmp_path):
    data = content(3000)
    rig = Rig(tmp_path, {"/data/f.bin": data})
    rig.deliver(block_notices(data, 1000)[0])
    log = tmp_path / "fired.log"
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_process_block, args=(str(tmp_path), data, i, str(log), barrier))
        for i in (1, 2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(log.read_text().splitlines()) == 1
    assert (tmp_path / "data/f.bin").read_bytes() == data


def test_same_block_being_written_elsewhere_is_busy_not_written_twice(tmp_path, data):
    rig = Rig(tmp_path, {"/data/f.bin": data})
    notices = block_notices(data, 1000)
    inside, release = threading.Event(), threading.Event()

    def gate(offset: int) -> None:
        inside.set()
        release.wait(10)

    rig.transfer.gate = gate
    t = threading.Thread(target=rig.deliver, args=(notices[1],))
    t.start()
    assert inside.wait(10)
    other = Assembler(options(), transfers=Pool(rig.transfer))
    with pytest.raises(BlockBusy):
        rig.deliver(notices[1], other)
    release.set()
    t.join(10)
    rig.transfer.gate = None
    assert rig.deliver(notices[1], other).report[0] == 304


def test_changed_block_of_a_complete_file_is_replaced_and_triggers_again(tmp_path, data):
    rig = Rig(tmp_path, {"/data/f.bin": data})
    for n in block_notices(data, 1000):
        rig.deliver(n)
    assert rig.deliver(block_notices(data, 1000)[1]).report[0] == 304
    changed = data[:1000] + content(1000, seed=99) + data[2000:]
    rig.transfer.files["/data/f.bin"] = changed
    d = rig.deliver(block_notices(changed, 1000)[1])
    assert d.report == (201, "Downloaded")
    assert (tmp_path / "data/f.bin").read_bytes() == changed
    assert len(rig.files) == 2 and rig.leftovers() == []
    assert rig.transfer.reads[-1] == ("/data/f.bin", 1000, 1000)


def test_new_size_restarts_the_assembly_and_older_posts_are_superseded(tmp_path, data):
    rig = Rig(tmp_path, {"/data/f.bin": data})
    rig.deliver(block_notices(data, 1000)[0])
    newer = content(3500, seed=5)
    rig.transfer.files["/data/f.bin"] = newer
    new_posts = [n.replace(pubtime="20260101000001.000") for n in block_notices(newer, 1000)]
    rig.deliver(new_posts[3])
    old = rig.deliver(block_notices(data, 1000)[1])
    assert old.outcome == "rejected"
    for n in new_posts[:3]:
        rig.deliver(n)
    assert (tmp_path / "data/f.bin").read_bytes() == newer
    assert len(rig.files) == 1


def test_p_posts_are_placed_into_the_file_named_without_the_suffix(tmp_path, data):
    files = {}
    notices = []
    for p, n in zip(partition.plan(2500, 1000), block_notices(data, 1000)):
        name = f"data/f.bin{partition.part_suffix(p, 'd')}"
        files["/" + name] = data[p.offset : p.offset + p.length]
        notices.append(n.replace(relpath=name).with_headers(parts=p.with_method("p").header()))
    rig = Rig(tmp_path, files)
    for n in reversed(notices):
        rig.deliver(n)
    assert (tmp_path / "data/f.bin").read_bytes() == data
    assert all(offset == 0 for _, offset, _ in rig.transfer.reads)
    assert len(rig.files) == 1 and rig.leftovers() == []


def test_inplace_off_stores_each_block_as_a_spec_named_part_file(tmp_path, data):
    rig = Rig(tmp_path, {"/data/f.bin": data}, inplace=False)
    notices = block_notices(data, 1000)
    posted = [rig.deliver(n).post_notice for n in notices]
    names = sorted(p.name for p in (tmp_path / "data").iterdir())
    assert names == [f"f.bin.1000.3.500.{n}.d.Part" for n in range(3)]
    assert (tmp_path / "data/f.bin.1000.3.500.2.d.Part").read_bytes() == data[2000:]
    assert not (tmp_path / "data/f.bin").exists()
    assert rig.files == [] and len(rig.parts) == 3
    assert posted[1].relpath == "data/f.bin.1000.3.500.1.d.Part"
    assert posted[1].headers["parts"] == "p,1000,3,500,1"
    assert rig.deliver(notices[0]).report[0] == 304


class Recorder(Progress):
    def __init__(self) -> None:
        super().__init__()
        self.events: List[tuple] = []

    def start(self, name: str, size: Optional[int]) -> None:
        self.events.append(("start", name, size))

    def add(self, n: int) -> None:
        if self.events[-1][0] == "add":
            self.events[-1] = ("add", self.events[-1][1] + n)
        else:
            self.events.append(("add", n))

    def done(self) -> None:
        self.events.append(("done",))


def test_progress_is_told_each_block_its_size_and_its_bytes(tmp_path, data):
    rig = Rig(tmp_path, {"/data/f.bin": data})
    rig.asm.progress = seen = Recorder()
    for n in block_notices(data, 1000)[1:]:
        rig.deliver(n)
    assert seen.events == [
        ("start", "f.bin [2/3]", 1000), ("add", 1000), ("done",),
        ("start", "f.bin [3/3]", 500), ("add", 500), ("done",),
    ]  # fmt: skip
