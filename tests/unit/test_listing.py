"""Directory listings as servers send them: index pages, MLSD facts, LIST lines; every
one hostile input."""

from __future__ import annotations

import calendar

import pytest

from sarra.transfer.listing import MAX_LINE, IndexParser, index_entries, list_entry, mlsd_entry

NGINX = """<html>
<head><title>Index of /pub/</title></head>
<body>
<h1>Index of /pub/</h1><hr><pre><a href="../">../</a>
<a href="sub/">sub/</a>                                               08-Dec-2026 00:20                   -
<a href="a%20b.txt">a b.txt</a>                                            08-Dec-2026 00:20                   3
<a href="big.bin">big.bin</a>                                            07-Nov-2025 13:05                3000
</pre><hr></body>
</html>
"""  # noqa: E501 (nginx pads its columns)

APACHE = """<table>
<tr><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th></tr>
<tr><td><a href="/pub/">Parent Directory</a></td><td>&nbsp;</td><td align="right">  - </td></tr>
<tr><td><a href="data.grib2">data.grib2</a></td><td align="right">2025-11-07 13:05  </td><td align="right">1.2K</td></tr>
<tr><td><a href="obs/">obs/</a></td><td align="right">2025-11-07 12:00  </td><td align="right">  - </td></tr>
</table>"""  # noqa: E501


def parse(page: str, directory: str = "/pub/", piece: int = 0) -> list:
    pieces = [page[i : i + piece] for i in range(0, len(page), piece)] if piece else [page]
    return list(index_entries(IndexParser(directory), iter(pieces)))


def at(y: int, mo: int, d: int, h: int, mi: int) -> float:
    return float(calendar.timegm((y, mo, d, h, mi, 0, 0, 0, 0)))


def test_nginx_autoindex_gives_names_sizes_and_times():
    got = {e.name: e for e in parse(NGINX)}
    assert sorted(got) == ["a b.txt", "big.bin", "sub"]
    assert got["sub"].is_dir and got["sub"].size is None
    assert (got["big.bin"].size, got["big.bin"].mtime) == (3000, at(2025, 11, 7, 13, 5))
    assert got["a b.txt"].line == "08-Dec-2026 00:20 3"


def test_apache_fancy_index_gives_times_and_a_line_that_changes_with_the_file():
    got = {e.name: e for e in parse(APACHE)}
    assert sorted(got) == ["data.grib2", "obs"]
    assert got["obs"].is_dir
    assert got["data.grib2"].mtime == at(2025, 11, 7, 13, 5)
    assert got["data.grib2"].size is None  # 1.2K is no size
    assert "1.2K" in got["data.grib2"].line


@pytest.mark.parametrize("piece", [1, 7, 64])
def test_an_index_fed_in_pieces_parses_as_a_whole(piece):
    assert parse(NGINX, piece=piece) == parse(NGINX)
    assert parse(APACHE, piece=piece) == parse(APACHE)


@pytest.mark.parametrize(
    "href",
    ["../", "..", "%2e%2e/", "/other/x", "http://evil/x", "//evil/x", "a/b", "?C=N", "./",
     "x?y=1", "mailto:a@b", "/pub/a/b", ""],
)  # fmt: skip
def test_links_that_do_not_name_something_in_the_directory_are_dropped(href):
    assert parse(f'<a href="{href}">x</a> 1', "/pub/") == []


def test_absolute_links_below_the_directory_and_dot_slash_names_are_kept():
    got = parse('<a href="/pub/x.txt">x</a> 5 <a href="./y.txt">y</a>', "/pub")
    assert [(e.name, e.size) for e in got] == [("x.txt", 5), ("y.txt", None)]


def test_the_text_kept_per_link_is_bounded():
    got = parse('<a href="x">x</a>' + "9" * 100_000 + " <b>" + "z" * 100_000)
    assert len(got[0].line) <= MAX_LINE


def test_a_plain_page_of_links_gives_names_only():
    got = parse('<ul><li><a href="f1.nc">f1.nc</a></li><li><a href="f2.nc">f2.nc</a></li></ul>')
    assert [(e.name, e.size, e.mtime, e.line) for e in got] == [
        ("f1.nc", None, None, ""),
        ("f2.nc", None, None, ""),
    ]


def test_mlsd_lines():
    e = mlsd_entry("type=file;size=1234;modify=20250102030405;perm=r; a file.txt")
    assert (e.name, e.is_dir, e.size, e.mtime) == ("a file.txt", False, 1234, 1735787045.0)
    assert mlsd_entry("type=dir;modify=20250102030405; sub").is_dir
    for line in ("type=cdir; .", "type=pdir; ..", "type=OS.unix=slink:/etc; l", "garbage",
                 "type=file;size=1; a/b", "type=file;modify=99999999999999; x"):  # fmt: skip
        e = mlsd_entry(line)
        assert e is None or e.mtime is None


def test_list_lines():
    now = at(2025, 6, 1, 0, 0)
    e = list_entry("-rw-r--r--   1 u g      1234 Jan  2 03:04 with space.txt", now)
    assert (e.name, e.size, e.mtime) == ("with space.txt", 1234, at(2025, 1, 2, 3, 4))
    e = list_entry("-rw-r--r--   1 u g      1 Dec 31 23:59 late", now)
    assert e.mtime == at(2024, 12, 31, 23, 59)  # in the future this year: last year's
    assert list_entry("drwxr-xr-x   2 u g      4096 Mar  3  2020 d", now).is_dir
    for line in ("lrwxrwxrwx 1 u g 4 Jan 2 03:04 l -> x", "total 12", "-rw 1 x", "x" * 5000):
        assert list_entry(line, now) is None
