"""Checksum vectors from spec 6.2, 6.4 and 11.14, and the registry."""

from __future__ import annotations

import random

import pytest

from sarra.core import checksum
from sarra.core.checksum import UnknownChecksumMethod, new


def pattern(size: int, mul: int, add: int) -> bytes:
    return bytes((mul * k + add) % 256 for k in range(size))


def digest(method: str, data: bytes, pieces: int = 1) -> str:
    c = new(method)
    step = max(1, len(data) // pieces)
    for i in range(0, len(data), step):
        c.update(data[i : i + step])
    return c.header()


def test_md5_of_data_matches_spec_vector():
    assert digest("d", b"Hello, world!\n") == "d,746308829575e17c3331bbcb00c0898b"


def test_sha512_of_data_matches_spec_vector():
    assert digest("s", b"v02 sha512 example\n") == (
        "s,727e1eb3e64326585922e5d81407c11329770c9b13974c9ee70a054ed4e6105e"
        "9198748d2cc598998e31eb4407d5af79cc15d304240ca43d3af3a33d81f7b5ff"
    )


def test_update_in_pieces_gives_the_same_value_as_one_update():
    data = pattern(2500, 7, 3)
    assert digest("d", data, pieces=7) == digest("d", data)
    assert digest("s", data, pieces=13) == digest("s", data)


def test_name_md5_is_md5_of_basename_and_ignores_data():
    c = new("n", name="hello.txt")
    c.update(b"whatever")
    assert c.header() == "n,2e54144ba487ae25d03a3caba233da71"
    assert not c.verifiable


def test_link_sum_is_sha512_of_link_target():
    c = new("L", link="../small/hello.txt")
    assert c.header() == (
        "L,8ea0a3a49b37035b2e13b844f76b7d0b47d4b7d43ff210c210d02752e467c1c5"
        "fc574edaffe7fdbfeffbd3bea59cd6bb36e205ee65c7461f37e772e05ea0f0fd"
    )


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "gone.txt",
            "cc92c711575659a52db734d76405af63ee046d1a1e3a0a5b965f307c508eeb73"
            "da11b57476745a58b1760d8f8149af44e24bf2fb0a6f058e9b59fada3025713c",
        ),
        (
            "before.txt",
            "6edce9a503b4da1a94c486bd6bccf14471282d95aebd6ce82a0c10bdc273a4ed"
            "c060c44f490fcb29bbc8eb0d295639ee3a09b831929638808036719d900d7054",
        ),
    ],
)
def test_removal_sum_is_sha512_of_basename(name, expected):
    assert new("R", name=name).header() == f"R,{expected}"


@pytest.mark.parametrize(
    "block, md5, sha_prefix",
    [
        (0, "10046f077f2082ac19676b8079f1cb1a", "00e36fccf193e59697a92b5ab24666ce"),
        (1, "ec7b6e58df88bc0c0fdddfed9267d71f", "6d2f7b12ab063e4e54fc90907c67a413"),
        (2, "9b7dd0c7d1e817888a14bf5b4887dc36", "751541f52361142f5e2aace79852ecd5"),
    ],
)
def test_block_sums_of_partitioned_file_match_spec_table(block, md5, sha_prefix):
    data = pattern(2500, 7, 3)[block * 1000 : (block + 1) * 1000]
    assert digest("d", data) == f"d,{md5}"
    assert digest("s", data).startswith(f"s,{sha_prefix}")


def test_whole_file_md5_of_partitioned_example():
    assert digest("d", pattern(2500, 7, 3)) == "d,1974f999ecd3884a25480a1b54c24120"


@pytest.mark.parametrize(
    "block, md5",
    [
        (0, "5768521d9b2cf47a0fda2ced91ce650d"),
        (1, "61433ca57728806d0b3496afbe8110b1"),
        (2, "a12191c91b2bccc62a6da917b5bd81ba"),
    ],
)
def test_exact_multiple_file_block_sums_match_spec(block, md5):
    data = pattern(3000, 13, 1)[block * 1000 : (block + 1) * 1000]
    assert digest("d", data) == f"d,{md5}"


def test_no_checksum_is_four_zero_padded_digits_fixed_at_creation():
    c = new("0", rng=random.Random(4))
    first = c.value()
    c.update(b"data")
    assert c.value() == first
    assert len(first) == 4 and first.isdigit()
    assert c.header() == f"0,{first}"
    assert not c.verifiable


def test_no_checksum_values_vary():
    values = {new("0").value() for _ in range(50)}
    assert len(values) > 1
    assert all(len(v) == 4 and v.isdigit() for v in values)


@pytest.mark.parametrize("flag, inner_header", [("z,d", "d,746308829575e17c3331bbcb00c0898b")])
def test_checksum_on_download_computes_inner_algorithm(flag, inner_header):
    c = new(flag)
    c.update(b"Hello, world!\n")
    assert c.method == "z"
    assert c.flag == flag
    assert c.header() == inner_header
    assert c.inner.verifiable
    assert not c.verifiable


def test_checksum_on_download_sha512():
    c = new("z", inner="s")
    c.update(b"v02 sha512 example\n")
    assert c.flag == "z,s"
    assert c.header().startswith("s,727e1eb3e643")


def test_data_methods_are_verifiable():
    assert new("d").verifiable and new("s").verifiable
    assert new("d").flag == "d"


def test_unknown_method_raises_typed_error():
    with pytest.raises(UnknownChecksumMethod):
        new("q")
    with pytest.raises(UnknownChecksumMethod):
        new("z,n")
    assert not checksum.known("q")
    assert checksum.known("z,d")


def test_name_method_without_name_raises_type_error():
    with pytest.raises(TypeError):
        new("n")


def test_registered_method_can_be_built_from_a_private_registry():
    class Sha256(checksum._HashOfData):
        method = "x"
        algorithm = "sha256"

    table = dict(checksum.METHODS)
    table["x"] = Sha256
    c = new("x", registry=table)
    c.update(b"abc")
    assert c.header().startswith("x,ba7816bf")
    assert not checksum.known("x")


def test_register_adds_a_method_and_refuses_bad_names(monkeypatch):
    monkeypatch.setattr(checksum, "METHODS", dict(checksum.METHODS))
    checksum.register("y", checksum.Md5)
    assert checksum.known("y")
    with pytest.raises(ValueError):
        checksum.register("a,b", checksum.Md5)
