"""The killed-workers variant must catch an ack that comes before the rename.

A copy of ``sarra/`` is made in a temp dir and its ``sarra/flow/engine.py`` patched so that
every message of a batch is acknowledged as soon as it is gathered (before the work),
and never again in ``_settle``.  The killed-workers variant is run against that copy;
it must FAIL (files lost with their messages).  ``prove_ack_order.py`` runs this test
with ``--runxfail`` to show the failure itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fixtures.flowkit import REPO
from tests.flow.faults.test_killed_workers import (
    check_every_message_handled,
    check_nothing_lost,
    run_killed_workers,
)

pytestmark = [pytest.mark.flow, pytest.mark.integration]

GATHERED = "        if not batch:\n            return 0\n"
SETTLED = "        self.source.settle(d)\n\n    def _keep_for_retry"


def ack_first_copy(dest: Path) -> Path:
    """A copy of the package whose Flow acks each message before its work is done."""
    shutil.copytree(REPO / "sarra", dest / "sarra", ignore=shutil.ignore_patterns("__pycache__"))
    flow_py = dest / "sarra" / "flow" / "engine.py"
    text = flow_py.read_text()
    assert text.count(GATHERED) == 1 and text.count(SETTLED) == 1, "flow/engine.py changed shape"
    text = text.replace(
        GATHERED,
        GATHERED + "        for d in batch:  # BROKEN ON PURPOSE: ack before work\n"
        "            self.source.settle(d)\n"
        "        getattr(self.source, 'flush', lambda: None)()  # acks sent now\n",
    )
    text = text.replace(SETTLED, "        pass  # BROKEN ON PURPOSE: acked already\n\n"
                        "    def _keep_for_retry")  # fmt: skip
    flow_py.write_text(text)
    return dest


@pytest.mark.xfail(strict=True, reason="acking before the rename must lose files under kill -9")
def test_killed_workers_variant_fails_when_ack_comes_before_rename(
    make_flow, main_rabbit, kit, tmp_path
):
    kit.use_repo(ack_first_copy(tmp_path / "broken"))
    flow = make_flow(main_rabbit)
    run_killed_workers(flow, dedup=False)
    check_nothing_lost(flow)
    check_every_message_handled(flow)
