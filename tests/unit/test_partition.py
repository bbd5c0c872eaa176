from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sarra.core import partition
from sarra.core.errors import MessageError
from sarra.core.partition import Parts


def test_whole_file_header_round_trips():
    p = partition.parse("1,14,1,0,0")
    assert p == Parts("1", 14, 1, 0, 0)
    assert (p.offset, p.length, p.size) == (0, 14, 14)
    assert p.header() == "1,14,1,0,0"


def test_legacy_short_form_is_filled_in():
    assert partition.parse("1,457") == Parts("1", 457, 1, 0, 0)
    assert partition.parse("i,1000,3") == Parts("i", 1000, 3, 0, 0)


@pytest.mark.parametrize("n,offset,length", [(0, 0, 1000), (1, 1000, 1000), (2, 2000, 500)])
def test_block_offsets_and_lengths_of_2500_byte_file(n, offset, length):
    p = partition.parse(f"i,1000,3,500,{n}")
    assert (p.offset, p.length, p.size) == (offset, length, 2500)


@pytest.mark.parametrize("rem", [0, 1000])
def test_exact_multiple_last_block_is_full_whatever_rem_says(rem):
    p = partition.parse(f"i,1000,3,{rem},2")
    assert p.length == 1000
    assert p.size == 3000


@pytest.mark.parametrize(
    "bad",
    [
        "x,1,1,0,0",
        "i,10,3,500,0",
        "i,1000,3,500,3",
        "1",
        "i,a,3,0,0",
        "i,0,3,0,0",
        "1,2,3,4,5,6",
        "i,-5,3,0,0",
    ],
)
def test_malformed_parts_are_refused(bad):
    with pytest.raises(MessageError):
        partition.parse(bad)


def test_plan_empty_file_is_one_whole_post():
    assert partition.plan(0, 1000) == [Parts("1", 0, 1, 0, 0)]


def test_plan_whole_file_when_blocksize_one_or_not_smaller():
    assert partition.plan(5000, 1) == [Parts("1", 5000, 1, 0, 0)]
    assert partition.plan(1000, 1000) == [Parts("1", 1000, 1, 0, 0)]


def test_plan_exact_multiple_sends_rem_equal_to_bsz():
    blocks = partition.plan(3000, 1000)
    assert [b.header() for b in blocks] == ["i,1000,3,1000,0", "i,1000,3,1000,1", "i,1000,3,1000,2"]
    assert sum(b.length for b in blocks) == 3000


def test_plan_with_short_last_block():
    assert [b.header() for b in partition.plan(2500, 1000)] == [
        "i,1000,3,500,0",
        "i,1000,3,500,1",
        "i,1000,3,500,2",
    ]


@pytest.mark.parametrize(
    "size,expected",
    [
        (10, 10),
        (partition.AUTO_T, partition.AUTO_T),
        (partition.AUTO_T + 1, (partition.AUTO_T + 3) // 3),
        (10 * partition.AUTO_T + 1, (10 * partition.AUTO_T + 10) // 10),
        (100 * partition.AUTO_T + 1, 10 * partition.AUTO_T),
    ],
)
def test_auto_blocksize_rule(size, expected):
    assert partition.auto_blocksize(size) == expected


@given(bsz=st.integers(2, 10**6), nblocks=st.integers(0, 300), extra=st.integers(0, 10**6))
def test_plan_blocks_tile_the_file_exactly(bsz, nblocks, extra):
    size = bsz * nblocks + extra % bsz
    blocks = partition.plan(size, bsz)
    pos = 0
    for b in blocks:
        assert b.offset == pos
        assert b.length > 0 or size == 0
        assert partition.parse(b.header()) == b
        pos += b.length
    assert pos == size
    assert all(b.size == size for b in blocks)


def test_part_suffix_round_trip():
    p = Parts("i", 1000, 3, 500, 1)
    name = "three_parts.bin" + partition.part_suffix(p, "d")
    assert name == "three_parts.bin.1000.3.500.1.d.Part"
    base, parsed, flag = partition.parse_part_name(name)
    assert (base, parsed, flag) == ("three_parts.bin", Parts("p", 1000, 3, 500, 1), "d")


def test_part_suffix_with_z_flag_and_bad_names():
    assert partition.parse_part_name("f.1000.3.500.0.z,d.Part")[2] == "z,d"
    assert partition.parse_part_name("f.1000.3.500.3.d.Part") is None
    assert partition.parse_part_name("plain.txt") is None
