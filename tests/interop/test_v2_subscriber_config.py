"""One v2 subscriber configuration, run unchanged by v2's sr_subscribe and by dd_subscribe.

The configuration is written as v2's guides write a subscriber that re-announces what it
downloads (``post_broker``, ``post_exchange``, ``post_base_url``, ``post_base_dir``,
``report_back False``): both download every file posted, and both announce their copies
the same way, with the URL of their own tree and the original's checksum.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from tests.fixtures.waiting import wait_for
from tests.interop.conftest import EXCHANGE, Lab, md5_of
from tests.interop.test_v2_interop import V2_WAIT, pattern, write

pytestmark = [pytest.mark.interop, pytest.mark.integration]

COPIES = "xs_guest_copies"
COPY_URL = "http://copies.example/"

CONFIG = """\
broker {url}
exchange {exchange}
topic_prefix v02.post
subtopic #
expire 10m
directory {tree}/in
mirror True
accept .*
report_back False
post_broker {url}
post_exchange {copies}
post_base_url {copy_url}
post_base_dir {tree}
"""


class Copies:
    """A queue on ``xs_guest_copies``: the copies each subscriber announces."""

    def __init__(self, lab: Lab) -> None:
        import pika

        self.conn = pika.BlockingConnection(pika.URLParameters(lab.dd_url))
        self.ch = self.conn.channel()
        self.ch.exchange_declare(COPIES, exchange_type="topic", durable=True)
        self.queue = self.ch.queue_declare("", exclusive=True).method.queue
        self.ch.queue_bind(self.queue, COPIES, routing_key="#")
        self.seen: List[Tuple[str, str, str]] = []  # (baseurl, relpath, sum)

    def drain(self) -> List[Tuple[str, str, str]]:
        while True:
            method, props, body = self.ch.basic_get(self.queue, auto_ack=True)
            if method is None:
                return self.seen
            _pubtime, base, rel = body.decode().split()[:3]
            self.seen.append((base, rel.lstrip("/"), dict(props.headers or {})["sum"]))

    def close(self) -> None:
        self.conn.close()


def test_a_v2_subscriber_config_runs_the_same_under_sr_subscribe_and_dd_subscribe(lab: Lab):
    files = {"obs/a.txt": pattern(300, 3, 7), "obs/deep/b.bin": pattern(70_000, 5, 1)}
    trees = {"v2": lab.root / "tree_v2", "dd": lab.root / "tree_dd"}
    for tree in trees.values():
        tree.mkdir()  # v2 wants post_base_dir to exist
    copies = Copies(lab)
    try:
        for who, url in (("v2", lab.v2_url), ("dd", lab.dd_url)):
            text = CONFIG.format(url=url, exchange=EXCHANGE, tree=trees[who], copies=COPIES,
                                 copy_url=COPY_URL)  # fmt: skip
            (lab.v2_conf if who == "v2" else lab.dd_conf)("subscribe", "relay", text)
        lab.start("v2", "sr_subscribe", "foreground", "relay")
        log = lab.start("dd", "dd_subscribe", "foreground", "relay")
        lab.wait_bound("q_guest.sr_subscribe")
        lab.wait_bound("q_guest.dd_subscribe")
        lab.dd_post(*(write(lab.data / rel, data) for rel, data in files.items()))

        wait_for(lambda: len(copies.drain()) >= 4, V2_WAIT, "both subscribers' 2 copies")
        for who, tree in trees.items():
            for rel in files:
                assert md5_of(tree / "in" / rel) == md5_of(lab.data / rel), (who, rel)
        posted = sorted(copies.seen)
        assert len(posted) == 4, posted
        by_file: Dict[str, List[Tuple[str, str]]] = {}
        for base, rel, sum_ in posted:
            by_file.setdefault(rel, []).append((base, sum_))
        assert set(by_file) == {f"in/{rel}" for rel in files}  # below post_base_dir, both
        for rel, seen in by_file.items():
            assert seen[0] == seen[1], (rel, seen)  # same base URL and checksum
            assert seen[0][0] == COPY_URL
        assert "not used by dd_subscribe" not in Path(log).read_text()
    finally:
        copies.close()
