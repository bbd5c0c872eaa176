"""Listings and remote attributes through each backend, against real servers on loopback:
names with sizes and times, links left out, mode and time set on files sent."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

from sarra.core.errors import TransferError
from sarra.transfer import for_url
from tests.fixtures.servers import ftp_server, ftps_server, http_server, sftp_server, web_server

pytestmark = pytest.mark.integration

__all__ = ["ftp_server", "ftps_server", "http_server", "sftp_server", "web_server"]

WHEN = 1_700_000_000


def fill(d: Path, count: int = 3) -> None:
    (d / "sub dir").mkdir(parents=True)
    for i in range(count):
        (d / f"f {i}.txt").write_bytes(b"x" * (i + 1))
        os.utime(d / f"f {i}.txt", (WHEN, WHEN))
    os.symlink("f 0.txt", d / "a link")


def files(entries: Any) -> dict:
    return {e.name: (e.size, e.mtime) for e in entries if not e.is_dir}


@pytest.fixture
def sftp_dir(sftp_server) -> Iterator[tuple]:
    d = sftp_server.root / f"ls{os.getpid()}"
    fill(d)
    t = for_url(sftp_server.url, credentials=sftp_server.credentials)
    try:
        yield t, d
    finally:
        t.close()
        shutil.rmtree(d, ignore_errors=True)


def test_sftp_listing_streams_names_sizes_times_and_leaves_links_out(sftp_dir):
    t, d = sftp_dir
    got = list(t.listing(str(d)))
    assert files(got) == {f"f {i}.txt": (i + 1, WHEN) for i in range(3)}
    assert [e.name for e in got if e.is_dir] == ["sub dir"]


def test_sftp_listing_of_many_names_is_complete(sftp_dir):
    t, d = sftp_dir
    for i in range(3000):
        (d / "sub dir" / f"n{i:05d}").write_bytes(b"")
    assert sorted(e.name for e in t.listing(str(d / "sub dir"))) == [
        f"n{i:05d}" for i in range(3000)
    ]


def test_sftp_chmod_and_utime(sftp_dir):
    t, d = sftp_dir
    t.put(io.BytesIO(b"data"), str(d / "sent"))
    t.chmod(str(d / "sent"), 0o640)
    t.utime(str(d / "sent"), WHEN)
    st = (d / "sent").stat()
    assert (st.st_mode & 0o777, st.st_mtime) == (0o640, WHEN)


def test_sftp_listing_of_a_missing_directory_is_a_permanent_error(sftp_dir):
    t, d = sftp_dir
    with pytest.raises(TransferError) as e:
        list(t.listing(str(d / "nowhere")))
    assert e.value.permanent


@pytest.mark.parametrize("fixture", ["ftp_server", "ftps_server"])
def test_ftp_listing_with_mlsd_then_chmod_and_time(request, fixture):
    server = request.getfixturevalue(fixture)
    fill(server.root / "pub")
    t = for_url(server.url, credentials=server.credentials)
    try:
        got = list(t.listing("/pub"))
        want = {f"f {i}.txt": (i + 1, WHEN) for i in range(3)}
        assert files(got) == want | {"a link": (1, WHEN)}  # pyftpdlib lists what it points to
        assert [e.name for e in got if e.is_dir] == ["sub dir"]
        t.put(io.BytesIO(b"data"), "/pub/sent")
        t.chmod("/pub/sent", 0o600)
        t.utime("/pub/sent", WHEN)
        assert t.ls("/pub")  # the control connection is still in step
    finally:
        t.close()
    st = (server.root / "pub" / "sent").stat()
    assert (st.st_mode & 0o777, st.st_mtime) == (0o600, WHEN)


def test_ftp_listing_falls_back_to_list_without_mlsd(ftp_server, monkeypatch):
    from pyftpdlib.handlers import FTPHandler

    monkeypatch.setattr(FTPHandler, "ftp_MLSD", None)
    monkeypatch.delitem(FTPHandler.proto_cmds, "MLSD")
    fill(ftp_server.root / "pub")
    t = for_url(ftp_server.url, credentials=ftp_server.credentials)
    try:
        got = list(t.listing("/pub"))
    finally:
        t.close()
    assert {n: s for n, (s, _) in files(got).items()} == {f"f {i}.txt": i + 1 for i in range(3)}


def test_http_listing_of_an_nginx_index(web_server):
    fill(web_server.root / "pub")
    t = for_url(web_server.url)
    try:
        got = list(t.listing("/pub"))
    finally:
        t.close()
    assert files(got) == {f"f {i}.txt": (i + 1, WHEN - WHEN % 60) for i in range(3)} | {
        "a link": (1, WHEN - WHEN % 60)  # nginx lists what a link points to
    }
    assert [e.name for e in got if e.is_dir] == ["sub dir"]


def test_http_listing_of_a_page_of_links_gives_names(http_server):
    fill(http_server.root / "pub")
    t = for_url(http_server.url)
    try:
        got = list(t.listing("/pub"))
    finally:
        t.close()
    assert sorted(e.name for e in got) == ["a link", "f 0.txt", "f 1.txt", "f 2.txt", "sub dir"]


def test_file_listing_and_attributes(tmp_path):
    fill(tmp_path / "pub")
    t = for_url("file:")
    got = list(t.listing(str(tmp_path / "pub")))
    assert files(got) == {f"f {i}.txt": (i + 1, WHEN) for i in range(3)}
    t.chmod(str(tmp_path / "pub" / "f 0.txt"), 0o600)
    t.utime(str(tmp_path / "pub" / "f 0.txt"), WHEN + 5)
    st = (tmp_path / "pub" / "f 0.txt").stat()
    assert (st.st_mode & 0o777, st.st_mtime) == (0o600, WHEN + 5)
