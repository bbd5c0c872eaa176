"""Fixtures of the fault suite: a user's HOME, the servers, a vhost, the flow.

Vhosts are named ``t_faults_<random>`` (or ``$SARRA_TEST_VHOST_PREFIX_faults_...``) on
the main node; the flakey-broker test makes its own node instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.fixtures import rabbit as rmq
from tests.fixtures.flowkit import LARGE, Kit, Rabbit, sample_tree
from tests.fixtures.servers import http_server, sftp_server  # noqa: F401 (fixtures)
from tests.flow.faults.scenario import Flow

PREFIX = os.environ.get("SARRA_TEST_VHOST_PREFIX", "t") + "_faults"
TREE_FILES = 600 if LARGE else 150
MB_FILES = 6 if LARGE else 3

pytestmark = pytest.mark.flow


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[Kit]:
    k = Kit(tmp_path)
    try:
        yield k
    finally:
        k.close()


@pytest.fixture
def main_rabbit() -> Rabbit:
    rmq.require_rabbit()
    return Rabbit()


@pytest.fixture
def make_flow(kit: Kit, http_server, sftp_server) -> Iterator[Callable[..., Flow]]:  # noqa: F811
    """``make_flow(rabbit, files=TREE_FILES)``: vhost, tree, credentials; no stage yet."""
    made = []

    def make(rabbit: Rabbit, files: int = TREE_FILES, mb_files: int = MB_FILES) -> Flow:
        vhost = rabbit.add_vhost(PREFIX)
        tree = Path(http_server.root)
        expected = sample_tree(tree, files, mb_files)
        kit.write_credentials(
            [
                f"sftp://root@127.0.0.1:{sftp_server.port}/ "
                f"ssh_keyfile={sftp_server.client_key},known_hosts={sftp_server.known_hosts}"
            ]
        )
        urls = {
            "http": http_server.url,
            "sftp": f"sftp://root@127.0.0.1:{sftp_server.port}/{tree}/",
            "file": f"file://{tree}/",
        }
        flow = Flow(kit, rabbit, vhost, tree, urls, expected=expected, http=http_server)
        made.append(flow)
        return flow

    try:
        yield make
    finally:
        kit.close()
        for f in made:
            if f.tap is not None:
                f.tap.close()
            f.rabbit.delete_vhost(f.vhost)
