"""Hostile notices against the local tree (issue 13, classes 1, 2, 3, 5, 6).

A tree below ``tmp/tree`` and victim files beside it, outside: whatever a notice plants
(links at the inflight name, at the final name, at a parent, chains of links, FIFOs,
hard links) or names (``${SOURCE}`` values, long names, link targets, ``file:`` URLs),
the victims keep their bytes and their mode, and errors come out typed.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from types import SimpleNamespace

import pytest

from sarra.config.loader import table_defaults
from sarra.core import message, partition
from sarra.core.delivery import Delivery
from sarra.core.errors import PathError, TransferError
from sarra.core.message import Notice
from sarra.flow.assembly import Assembler
from sarra.flow.consumer import Locator
from sarra.flow.download import Downloader
from sarra.fs.placement import split_directory
from sarra.fs.safefs import typed_error

BASE = "http://server/"
EVIL = b"attacker bytes"


class FakeTransfer:
    """Serves every path with ``EVIL``; records what was fetched."""

    def __init__(self, files=None):
        self.files = files or {}
        self.fetched = []

    def get(
        self, path, dest, *, offset=0, length=None, limit=None, sums=(), progress=None, throttle=0
    ):
        self.fetched.append(path)
        data = self.files.get(path, EVIL)
        data = data[offset : offset + length] if length is not None else data[offset:]
        dest.write(data)
        for s in sums:
            s.update(data)
        return len(data)


class Pool:
    def __init__(self, transfer):
        self.transfer = transfer

    def get(self, baseurl):
        return self.transfer


@pytest.fixture
def world(tmp_path):
    """``tree`` (the target directory), ``victim`` (a file outside, mode 600) and
    ``outside`` (an empty directory outside)."""
    tree = tmp_path / "tree"
    tree.mkdir()
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    victim.chmod(0o600)
    outside = tmp_path / "outside"
    outside.mkdir()
    return SimpleNamespace(tree=tree, victim=victim, outside=outside, tmp=tmp_path)


def untouched(w) -> None:
    assert w.victim.read_bytes() == b"precious"
    assert stat.S_IMODE(w.victim.stat().st_mode) == 0o600
    assert os.listdir(w.outside) == []


def options(tree, **kw):
    return table_defaults("subscribe").replace(**{"directory": str(tree), "mirror": True, **kw})


def downloader(tree, transfer=None, **kw):
    o = options(tree, **kw)
    return Downloader(o, locate=Locator(o), transfers=Pool(transfer or FakeTransfer()))


def file_post(rel, data=EVIL, base=BASE, **headers):
    h = {"sum": "d," + hashlib.md5(data).hexdigest(), "parts": f"1,{len(data)},1,0,0",
         "mode": "777"}  # fmt: skip
    h.update(headers)
    return Delivery(message.new_post(base, rel, h))


def link_post(rel, target):
    return Delivery(message.new_post(BASE, rel, {"sum": "L,x", "link": target}))


# ------------------------------------------------------------------ class 1: planted links


@pytest.mark.parametrize("inflight", [".tmp", ".", "tmp/", "NONE"])
@pytest.mark.parametrize("where", ["inflight", "final"])
def test_a_link_planted_at_the_inflight_or_final_name_is_replaced_never_written_through(
    world, inflight, where
):
    (world.tree / "dir").mkdir()
    (world.tree / "dir" / "tmp").mkdir()
    names = {".tmp": "name.tmp", ".": ".name", "tmp/": "tmp/name", "NONE": "name"}
    planted = world.tree / "dir" / (names[inflight] if where == "inflight" else "name")
    planted.symlink_to(world.victim)
    dl = downloader(world.tree, inflight=inflight)
    d = file_post("dir/name")
    dl(d)
    assert d.report == (201, "Downloaded")
    untouched(world)
    final = world.tree / "dir" / "name"
    assert not final.is_symlink() and final.read_bytes() == EVIL
    assert stat.S_IMODE(final.stat().st_mode) == 0o777


def test_a_link_notice_then_a_post_of_the_same_name_leaves_the_victim_alone(world):
    """The attack as found: L ``dir/name.tmp`` -> victim (now refused), then a post."""
    dl = downloader(world.tree)
    with pytest.raises(PathError):
        dl(link_post("dir/name.tmp", str(world.victim)))
    dl(file_post("dir/name"))
    untouched(world)


@pytest.mark.parametrize("kind", ["fifo", "hardlink", "dir-link"])
def test_odd_things_at_the_inflight_name_are_removed_not_opened(world, kind):
    d_ = world.tree / "d"
    d_.mkdir()
    tmp = d_ / "f.tmp"
    if kind == "fifo":
        os.mkfifo(tmp)
    elif kind == "hardlink":
        os.link(world.victim, tmp)
    else:
        tmp.symlink_to(world.outside)
    downloader(world.tree)(file_post("d/f"))
    untouched(world)
    assert (d_ / "f").read_bytes() == EVIL and not tmp.exists()


@pytest.mark.parametrize(
    "plant",
    [
        lambda w: (w.tree / "dir").symlink_to(w.outside),  # a parent links out
        lambda w: (w.tree / "dir").symlink_to("../outside"),  # relative, climbing out
        lambda w: ((w.tree / "b").symlink_to(w.outside), (w.tree / "dir").symlink_to("b")),
        lambda w: (
            (w.tree / "x").mkdir(),
            (w.tree / "x" / "up").symlink_to("../.."),
            (w.tree / "dir").symlink_to("x/up/outside"),
        ),  # a chain, each link relative, resolving outside
    ],
    ids=["absolute", "climbing", "chain", "chain-up"],
)
def test_a_post_through_a_directory_link_leading_out_is_refused(world, plant):
    plant(world)
    dl = downloader(world.tree)
    for rel in ("dir/f", "dir/sub/f"):
        with pytest.raises(PathError):
            dl(file_post(rel))
    untouched(world)


@pytest.mark.parametrize("absolute", [False, True])
def test_a_post_through_a_directory_link_staying_inside_is_placed(world, absolute):
    (world.tree / "real").mkdir()
    (world.tree / "alias").symlink_to(world.tree / "real" if absolute else "real")
    downloader(world.tree)(file_post("alias/f"))
    assert (world.tree / "real" / "f").read_bytes() == EVIL


def test_an_oldname_move_never_moves_a_link_in_or_reads_through_one(world):
    (world.tree / "old").symlink_to(world.victim)
    dl = downloader(world.tree, FakeTransfer({"/new": b"precious"}))
    d = file_post("new", data=b"precious", oldname="old")
    dl(d)
    untouched(world)
    assert (world.tree / "old").is_symlink()  # not moved: fetched instead
    assert not (world.tree / "new").is_symlink()


def test_a_removal_through_a_directory_link_leading_out_removes_nothing_outside(world):
    (world.outside / "keep").write_text("k")
    (world.tree / "dir").symlink_to(world.outside)
    d = Delivery(message.new_post(BASE, "dir/keep", {"sum": "R,x"}))
    with pytest.raises(PathError):
        downloader(world.tree)(d)
    assert (world.outside / "keep").read_text() == "k"


# ------------------------------------------------------------------ class 2: link targets


@pytest.mark.parametrize(
    "rel, target",
    [
        ("l", "/etc/passwd"),
        ("l", "/"),
        ("l", ".."),
        ("l", "../../.."),
        ("a/l", "../../x"),
        ("a/l", "b/../../../x"),
        ("a/l", "./../.."),
        ("l", "a/../../x"),
        ("l", "x\0y"),
        ("l", "x" * 5000),
    ],
)
def test_link_targets_leaving_the_tree_are_refused(world, rel, target):
    dl = downloader(world.tree)
    with pytest.raises(PathError):
        dl(link_post(rel, target))
    assert not os.path.lexists(world.tree / rel)


def test_a_link_through_an_existing_link_that_leads_out_is_refused(world):
    (world.tree / "up").symlink_to("..")  # planted out of band: resolves outside
    (world.tree / "d").mkdir()
    (world.tree / "d" / "u2").symlink_to("../..")
    dl = downloader(world.tree)
    for target in ("up/victim", "up", "d/u2/victim"):
        with pytest.raises(PathError):
            dl(link_post("l", target))
    assert not os.path.lexists(world.tree / "l")


def test_a_link_whose_directory_is_shallower_than_its_name_says_is_checked_there(world):
    """``d1/up`` -> ``..`` is the root itself: ``d1/up/d3`` is one level deep, so
    ``../../x`` from there leaves the tree although the name is three deep."""
    (world.tree / "d1").mkdir()
    (world.tree / "d1" / "up").symlink_to("..")
    with pytest.raises(PathError):
        downloader(world.tree)(link_post("d1/up/d3/l", "../../victim"))
    assert not os.path.lexists(world.tree / "d3" / "l")


def test_moving_a_directory_where_its_links_would_climb_out_is_undone(world):
    (world.tree / "a" / "b" / "d").mkdir(parents=True)
    (world.tree / "a" / "b" / "d" / "l").symlink_to("../../../x")
    (world.tree / "a" / "s").symlink_to("..")  # a/s/d is one level deep, not three
    d = Delivery(message.new_post(BASE, "a/b/d", {"sum": "R,x", "newname": "a/s/d"}))
    with pytest.raises(PathError):
        downloader(world.tree)(d)
    assert os.readlink(world.tree / "a" / "b" / "d" / "l") == "../../../x"
    assert not os.path.lexists(world.tree / "d")


@pytest.mark.parametrize(
    "rel, target",
    [("l", "x"), ("a/l", "../x"), ("a/b/l", "../../x/y"), ("l", "a/b"), ("a/l", "..")],
)
def test_link_targets_inside_the_tree_are_made(world, rel, target):
    dl = downloader(world.tree)
    d = link_post(rel, target)
    dl(d)
    assert os.readlink(world.tree / rel) == target and d.report == (201, "linked")


def test_absolute_link_targets_only_with_link_absolute_targets(world):
    dl = downloader(world.tree, link_absolute_targets=True)
    dl(link_post("l", "/etc/passwd"))
    assert os.readlink(world.tree / "l") == "/etc/passwd"


@pytest.mark.parametrize("new", ["p2", "a/p2"])
def test_moving_a_climbing_link_up_is_refused(world, new):
    (world.tree / "a" / "b").mkdir(parents=True)
    (world.tree / "a" / "b" / "p").symlink_to("../../../x")  # fine 3 deep, not 1
    (world.tree / "a" / "b" / "c").mkdir()
    (world.tree / "a" / "b" / "c" / "p").symlink_to("../../../x")
    dl = downloader(world.tree)
    d = Delivery(message.new_post(BASE, "a/b/c/p", {"sum": "R,x", "newname": new}))
    with pytest.raises(PathError):
        dl(d)
    assert not os.path.lexists(world.tree / new)


@pytest.mark.parametrize(
    "target",
    ["../../../x", "y/../../../../x", "./../../../x", "../y/../../../x", "y/z/../../../../.."],
    ids=["leading", "after-a-name", "after-dot", "mixed", "to-a-dir"],
)
def test_moving_a_directory_holding_climbing_links_up_is_refused(world, target):
    """A link inside the tree from a/b/d climbs out from d: whatever its first component
    (``..`` anywhere in a relative target climbs)."""
    (world.tree / "a" / "b" / "d" / "y" / "z").mkdir(parents=True)
    (world.tree / "a" / "b" / "d" / "l").symlink_to(target)
    d = Delivery(message.new_post(BASE, "a/b/d", {"sum": "R,x", "newname": "d"}))
    with pytest.raises(PathError):
        downloader(world.tree)(d)
    assert not os.path.lexists(world.tree / "d")


# ------------------------------------------------------------------ class 6: ${SOURCE}


@pytest.mark.parametrize("source", ["../x", "a/b", "..", ".", "", "\x00", "a\nb", "x" * 300])
def test_hostile_source_values_are_refused_before_the_disk(world, source):
    o = options(world.tree, directory=f"{world.tree}/${{SOURCE}}/in")
    d = Delivery(message.new_post(BASE, "f", {"sum": "n,x", "source": source}))
    with pytest.raises(PathError):
        Locator(o)(d)
    with pytest.raises(PathError):
        Downloader(o, locate=Locator(o), transfers=Pool(FakeTransfer()))(d)
    assert os.listdir(world.tree) == [] and os.listdir(world.tmp / "outside") == []


def test_a_good_source_goes_below_the_configured_root(world):
    o = options(world.tree, directory=f"{world.tree}/${{SOURCE}}/${{YYYYMMDD}}")
    d = Delivery(message.new_post(BASE, "a/f", {"sum": "n,x", "source": "alice"}))
    Locator(o)(d)
    assert d.place.root == str(world.tree) and d.place.dir.startswith("alice/2")
    assert split_directory("/d/${SOURCE}/x", {"SOURCE": "bob"}) == ("/d", "bob/x")
    assert split_directory("${PBD}/${SOURCE}", {"SOURCE": "b", "PBD": "/p"}) == ("/p", "b")


# ------------------------------------------------------------------ class 3: path errors


@pytest.mark.parametrize(
    "rel",
    ["x" * 256, "a/" + "y" * 300, "z" * 4000, "/".join(["d" * 200] * 21)],
    ids=["256", "300", "4000", "total-4221"],
)
def test_names_too_long_are_refused_before_the_disk(world, rel):
    with pytest.raises(PathError, match="longer than"):
        downloader(world.tree)(file_post(rel))
    assert os.listdir(world.tree) == []


def test_a_255_byte_name_is_placed_with_no_inflight_suffix(world):
    downloader(world.tree, inflight=".")(file_post("n" * 254))  # "." + 254 = 255
    assert (world.tree / ("n" * 254)).read_bytes() == EVIL


def test_a_file_where_a_directory_should_be_is_a_path_error(world):
    (world.tree / "f").write_text("file")
    with pytest.raises(PathError):
        downloader(world.tree)(file_post("f/x"))
    assert (world.tree / "f").read_text() == "file"


@pytest.mark.parametrize(
    "code, kind, permanent",
    [
        (errno.ENAMETOOLONG, PathError, True),
        (errno.ENOTDIR, PathError, True),
        (errno.EACCES, TransferError, True),
        (errno.EROFS, TransferError, True),
        (errno.ENOSPC, TransferError, False),
        (errno.EIO, TransferError, False),
    ],
)
def test_local_errors_become_typed_one_line_errors(code, kind, permanent):
    e = typed_error(OSError(code, os.strerror(code)), "a/b")
    assert type(e) is kind and "\n" not in str(e)
    assert getattr(e, "permanent", True) is permanent


def test_a_local_write_error_comes_out_typed(world, monkeypatch):
    real = os.replace

    def full(*a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(TransferError, match="No space"):
        downloader(world.tree)(file_post("f"))
    monkeypatch.setattr(os, "replace", real)


# ------------------------------------------------------------------ class 5: file: URLs


@pytest.mark.parametrize(
    "base, rel",
    [
        ("file:/", "{victim}"),
        ("file:", "{victim}"),
        ("file:///", "{victim}"),
        ("file://localhost/", "{victim}"),
        ("FILE:/", "{victim}"),
        ("file:{allowed}/", "../victim"),
    ],
)
def test_file_urls_outside_file_sources_are_refused(world, base, rel):
    allowed = world.tmp / "allowed"
    allowed.mkdir()
    transfer = FakeTransfer()
    dl = downloader(world.tree, transfer, file_sources=(str(allowed),))
    victim = str(world.victim).lstrip("/")
    d = file_post(rel.format(victim=victim), base=base.format(allowed=allowed), sum="n,x")
    with pytest.raises(PathError, match="file_sources|escapes"):
        dl(d)
    assert transfer.fetched == [] and os.listdir(world.tree) == []


def test_file_urls_are_refused_by_default_and_read_below_file_sources(world):
    src = world.tmp / "allowed"
    src.mkdir()
    (src / "ok").write_bytes(EVIL)
    (src / "esc").symlink_to(world.victim)
    with pytest.raises(PathError):
        downloader(world.tree)(file_post("ok", base=f"file:{src}/"))
    dl = downloader(world.tree, file_sources=(str(src),))
    dl(file_post("ok", base=f"file:{src}/"))
    assert (world.tree / "ok").read_bytes() == EVIL
    with pytest.raises(PathError):  # a link inside a file source leading out
        dl(file_post("esc", base=f"file:{src}/"))


# ------------------------------------------------------------------ assembly


def blocks(rel, data, bsz):
    out = []
    for p in partition.plan(len(data), bsz):
        block = data[p.offset : p.offset + p.length]
        h = {"parts": p.header(), "sum": "d," + hashlib.md5(block).hexdigest(), "mode": "777"}
        out.append(Notice("post", "20260101000000.000", BASE, rel, h))
    return out


def assemble(tree, data, rel="d/f.bin", **kw):
    o = options(tree, **kw)
    transfer = FakeTransfer({"/" + rel: data})
    asm = Assembler(o, transfers=Pool(transfer))
    dl = Downloader(o, locate=Locator(o), transfers=Pool(transfer), assembler=asm)
    ds = [Delivery(n) for n in blocks(rel, data, 100)]
    for d in ds:
        dl(d)
    return ds


@pytest.mark.parametrize("name", ["f.bin.tmp", ".f.bin.parts", "f.bin"])
def test_assembly_never_writes_through_a_planted_link(world, name):
    (world.tree / "d").mkdir()
    (world.tree / "d" / name).symlink_to(world.victim)
    data = os.urandom(250)
    assemble(world.tree, data)
    untouched(world)
    assert (world.tree / "d" / "f.bin").read_bytes() == data


@pytest.mark.parametrize("suffix", ["", ".tmp"])
def test_part_files_never_written_through_a_planted_link(world, suffix):
    (world.tree / "d").mkdir()
    part = "f.bin" + partition.part_suffix(partition.plan(250, 100)[0], "d")
    (world.tree / "d" / (part + suffix)).symlink_to(world.victim)
    assemble(world.tree, os.urandom(250), inplace=False)
    untouched(world)
    assert not (world.tree / "d" / part).is_symlink()


def test_assembly_through_a_parent_link_leading_out_is_refused(world):
    (world.tree / "d").symlink_to(world.outside)
    with pytest.raises(PathError):
        assemble(world.tree, os.urandom(250))
    untouched(world)


def test_a_fifo_at_the_state_file_does_not_hang_the_assembly(world):
    (world.tree / "d").mkdir()
    os.mkfifo(world.tree / "d" / ".f.bin.parts")
    data = os.urandom(250)
    assemble(world.tree, data)
    assert (world.tree / "d" / "f.bin").read_bytes() == data


# ------------------------------------------------------------------ property: any sequence

_PART = ["a", "b", "..", ".", "c.tmp", "x" * 3]


def _rel(draw_parts) -> str:
    return "/".join(draw_parts) or "a"


def test_no_sequence_of_links_moves_and_posts_writes_or_exposes_outside(tmp_path_factory):
    import hypothesis
    import hypothesis.strategies as st

    rels = st.lists(st.sampled_from(_PART), min_size=1, max_size=4).map(_rel)
    targets = st.one_of(
        rels, rels.map(lambda r: "../" + r), rels.map(lambda r: "../../" + r),
        st.sampled_from(["/", "..", "../..", "/etc/passwd", "VICTIM", "OUTSIDE"]),
    )  # fmt: skip
    op = st.one_of(
        st.tuples(st.just("L"), rels, targets),
        st.tuples(st.just("F"), rels, st.just("")),
        st.tuples(st.just("R"), rels, rels),
    )

    @hypothesis.settings(max_examples=150, deadline=None, derandomize=True)
    @hypothesis.given(st.lists(op, min_size=1, max_size=8))
    def run(ops):
        w = _fresh_world(tmp_path_factory.mktemp("prop"))
        dl = downloader(w.tree)
        for kind, rel, arg in ops:
            arg = arg.replace("VICTIM", str(w.victim)).replace("OUTSIDE", str(w.outside))
            if kind == "L":
                d = link_post(rel, arg)
            elif kind == "F":
                d = file_post(rel)
            else:
                d = Delivery(message.new_post(BASE, rel, {"sum": "R,x", "newname": arg}))
            try:
                dl(d)
            except (PathError, TransferError):
                pass
        untouched(w)
        real_tree = os.path.realpath(w.tree)
        for dirpath, dirs, files in os.walk(w.tree):
            for name in dirs + files:
                p = os.path.join(dirpath, name)
                if os.path.islink(p):
                    real = os.path.realpath(p)
                    assert real == real_tree or real.startswith(real_tree + "/"), (p, real)

    run()


def _fresh_world(base):
    tree = base / "tree"
    tree.mkdir()
    victim = base / "victim"
    victim.write_bytes(b"precious")
    victim.chmod(0o600)
    outside = base / "outside"
    outside.mkdir()
    return SimpleNamespace(tree=tree, victim=victim, outside=outside, tmp=base)
