"""A password written into the base URL (``-u``, ``post_base_url``) is never published."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sarra.config.loader import Options, table_defaults
from sarra.core import message
from sarra.core.redaction import public_url
from sarra.post.notices import NoticeMaker
from tests.unit.test_sara_flow import DATA, decoded, post, setup, shovel_setup

URLS = [
    ("http://user:secret@host/", "http://user@host/"),
    ("https://user:s3cr%40t@host:8443/data/", "https://user@host:8443/data/"),
    ("sftp://u:pa:ss@h/dir", "sftp://u@h/dir"),
    ("ftp://u:p@ss@h/x", "ftp://u@h/x"),
    ("ftps://u:@h/", "ftps://u@h/"),
    ("http://u:p@[::1/", "http://[::1/"),  # unparseable: all userinfo dropped
]
PLAIN = ["http://host/", "sftp://u@h/d", "file:/", "http://host:8080/a@b"]


@pytest.mark.parametrize("url, public", URLS)
def test_public_url_drops_the_password_and_keeps_the_user(url, public):
    assert public_url(url) == public


@pytest.mark.parametrize("url", PLAIN)
def test_public_url_keeps_urls_without_password(url, caplog):
    with caplog.at_level(logging.WARNING):
        assert public_url(url, "post_base_url") == url
    assert not caplog.records


def opts(tmp_path: Path, url: str) -> Options:
    return table_defaults("post").replace(post_base_url=url, post_base_dir=str(tmp_path))


@pytest.mark.parametrize("url, public", URLS[:5])
def test_dd_post_and_dd_watch_notices_carry_no_password(tmp_path, caplog, url, public):
    f = tmp_path / "f.txt"
    f.write_text("data")
    with caplog.at_level(logging.WARNING):
        maker = NoticeMaker(opts(tmp_path, url), broker_user="u", broker_host="h")
        notices = [*maker.for_path(str(f)), maker.removal(str(f))]
    for n in notices:
        assert n.baseurl == public
        wire = message.encode(n)
        assert b"secret" not in wire.body and b"pa:ss" not in wire.body
        assert "@" not in public or public.split("@")[0] in wire.body.decode()
    [warning] = [r.getMessage() for r in caplog.records]
    assert "not published" in warning and "secret" not in warning and "pa:ss" not in warning


def test_dd_sara_reposts_without_the_password_of_post_base_url(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        b, flow = setup(tmp_path, "post_base_url http://web:hunter2@a.example/\n")
    b.put(post(), exchange="xs_alice")
    flow.run_once()
    [pub] = [decoded(o) for o in b.published if o.exchange == "xpublic"]
    assert pub.baseurl == "http://web@a.example/"
    assert all(b"hunter2" not in o.body for o in b.published)
    assert sum("not published" in r.getMessage() for r in caplog.records) == 1


def test_dd_sara_still_knows_its_own_reposts_as_a_loop(tmp_path, caplog):
    b, flow = setup(
        tmp_path,
        "post_base_url http://web:hunter2@a.example/\nsource_from_exchange off\n",
        files={"x/g.txt": DATA},
    )
    headers = {**post().headers, "from_cluster": "Z", "to_clusters": "A", "source": "alice"}
    mine = message.new_post("http://web@a.example/", "x/f.txt", headers)
    other = mine.replace(baseurl="http://other.example/", relpath="x/g.txt")
    b.put(mine, exchange="xpublic")
    b.put(other, exchange="xpublic")
    with caplog.at_level(logging.INFO, logger="sarra"):
        flow.run_once()
    assert "own post came back" in caplog.text
    [pub] = [decoded(o) for o in b.published if o.exchange == "xpublic"]
    assert pub.relpath.endswith("x/g.txt")


@pytest.mark.parametrize("base", ["http://up:pw@h/", "sftp://u@h/", "http://h/"])
def test_a_shovel_relays_base_urls_unchanged(tmp_path, base):
    b, flow, _ = shovel_setup(tmp_path, "exchange xpublic\npost_exchange xcopy\n")
    n = message.new_post(base, "tree/f.txt", post(source="alice").headers)
    b.put(n)
    flow.run_once()
    [out] = b.published
    assert decoded(out).baseurl == base
