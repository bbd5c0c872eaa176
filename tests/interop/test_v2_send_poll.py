"""dd_sender and dd_poll next to MetPX-Sarracenia v2's sr_sender and sr_poll (issue 16).

The real programs on a private vhost: dd_sender sends what v2's sr_post posts, v2's
sr_sender sends what dd_post posts, and one sr_poll configuration runs under sr_poll and
under dd_poll and both post the same files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote

import pytest

from tests.fixtures.servers import SftpServer, sftp_server  # noqa: F401  (fixture)
from tests.fixtures.waiting import wait_for
from tests.interop.conftest import EXCHANGE, Lab, md5_of

pytestmark = [pytest.mark.interop, pytest.mark.integration]


def tree(root: Path) -> dict:
    files = {
        "a/hello.txt": b"hello\n",
        "a/b/with space.bin": bytes(range(256)) * 40,
        "c/empty": b"",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def same(src: Path, dst: Path, rels: dict) -> bool:
    return all((dst / r).is_file() and md5_of(dst / r) == md5_of(src / r) for r in rels)


@pytest.fixture
def remote(sftp_server: SftpServer) -> Iterator[Path]:  # noqa: F811
    d = sftp_server.root / f"v2_{os.getpid()}"
    d.mkdir()
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def v2_sftp_credentials(lab: Lab, sftp_server: SftpServer) -> str:  # noqa: F811
    url = f"sftp://root@127.0.0.1:{sftp_server.port}/"
    creds = lab.home("v2") / ".config" / "sarra" / "credentials.conf"
    creds.parent.mkdir(parents=True, exist_ok=True)
    with open(creds, "a") as f:
        f.write(f"{url} ssh_keyfile={sftp_server.client_key}\n")
    return url


def test_dd_sender_sends_what_v2_sr_post_posts(lab: Lab) -> None:
    src, out = lab.data / "v2send", lab.root / "out"
    lab.dd_conf(
        "sender", "s",
        f"broker {lab.dd_url}\nexchange {EXCHANGE}\ndestination file://{out}/\n"
        f"base_dir {lab.data}\naccept .*\n",
    )  # fmt: skip
    lab.run("dd", "dd_sender", "declare", "s")
    log = lab.start("dd", "dd_sender", "foreground", "s")
    lab.v2_poster("lab")
    files = tree(src)
    for rel in files:
        lab.run("v2", "sr_post", "-c", "lab", "-p", str(src / rel))
    done = wait_for(lambda: same(src, out / "v2send", files), 40, fail=False)
    assert done, log.read_text()[-3000:]
    assert [p for p in out.rglob("*.tmp")] == []


def test_v2_sr_sender_sends_what_dd_post_posts(lab: Lab, sftp_server, remote) -> None:  # noqa: F811
    url = v2_sftp_credentials(lab, sftp_server)
    lab.v2_conf(
        "sender", "s",
        f"broker {lab.v2_url}\nexchange {EXCHANGE}\ntopic_prefix v02.post\nsubtopic #\n"
        f"base_dir {lab.data}\ndestination {url}\ndirectory {remote}\nmirror False\n"
        "accept .*\n",
    )  # fmt: skip
    log = lab.start("v2", "sr_sender", "foreground", "s")
    lab.wait_bound("q_guest.sr_sender")
    src = lab.data / "ddsend"
    files = tree(src)
    lab.dd_post(src)
    flat = {rel: rel.rsplit("/", 1)[-1] for rel in files}  # mirror False: names only
    done = wait_for(
        lambda: all(
            (remote / n).is_file() and md5_of(remote / n) == md5_of(src / r)
            for r, n in flat.items()
        ),
        60,
        fail=False,
    )
    assert done, log.read_text()[-3000:]


def test_one_sr_poll_configuration_posts_the_same_files_under_sr_poll_and_dd_poll(
    lab: Lab,
    sftp_server,  # noqa: F811
    remote,
) -> None:
    """The configuration body is the same for both (only the broker URL is spelled for
    each, v2 and pika name vhosts differently); each posts every file once."""
    url = v2_sftp_credentials(lab, sftp_server)
    (lab.home("dd") / ".config" / "sarra").mkdir(parents=True, exist_ok=True)
    (lab.home("dd") / ".config" / "sarra" / "credentials.conf").write_text(
        f"{url} ssh_keyfile={sftp_server.client_key},known_hosts={sftp_server.known_hosts}\n"
    )
    os.chmod(lab.home("dd") / ".config" / "sarra" / "credentials.conf", 0o600)
    files = tree(remote)
    body = (
        f"post_exchange {EXCHANGE}\nsource polled\nsleep 2\n"
        f"destination {url}\ndirectory {remote}\nreject .*\\.tmp$\nget .*\n"
    )
    lab.v2_conf("poll", "p", f"post_broker {lab.v2_url}\n{body}")
    lab.dd_conf("poll", "p", f"post_broker {lab.dd_url}\n{body}")

    def polled(n: int, log: Path) -> set:
        got = wait_for(lambda: len(lab.capture.posts()) >= n, 60, every=0.2, fail=False)
        assert got, log.read_text()[-3000:]
        return {unquote(p.fields[2]).lstrip("/") for p in lab.capture.posts()}

    v2log = lab.start("v2", "sr_poll", "foreground", "p")
    v2 = polled(len(files), v2log)
    lab.stop_all()
    ddlog = lab.start("dd", "dd_poll", "foreground", "p")
    both = polled(2 * len(files), ddlog)
    wait_for(lambda: "poll pass 2:" in ddlog.read_text(), 30, "a second dd_poll pass")
    assert len(lab.capture.posts()) == 2 * len(files), v2log.read_text()[-2000:]
    assert both == v2 == {f"{str(remote).lstrip('/')}/{r}" for r in files}
    dd_posts = lab.capture.posts()[len(files) :]
    assert {p.headers.get("source") for p in dd_posts} == {"polled"}
