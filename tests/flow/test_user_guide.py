"""doc/user-guide.rst, run: every ``.. code-block:: sh`` of each use case, as written.

The blocks are taken from the guide itself, so the guide cannot drift from what works.
They run in bash (``set -e``) against one run of ``tools/demo`` (module fixture: its own
vhost, user names and ports, see ``tests/flow/test_demo.py``), with ``/tmp/sarra-demo``
replaced by that run's directory, ``.venv/bin`` first on PATH (the guide's ``export
PATH``), and a fresh HOME per use case (the guide's "a different person").  A block
whose result takes a moment (a download, a report) is rerun until its output shows it,
for at most a minute: that is the reader looking again.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List

import pytest

from tests.fixtures.require import require
from tests.fixtures.waiting import wait_for
from tests.flow.test_demo import VENV_BIN, DemoSwitch

pytestmark = [pytest.mark.flow, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "doc" / "user-guide.rst"
WAIT = 60.0


def guide_blocks(text: str) -> Dict[str, List[str]]:
    """``{section title: [sh block, ...]}`` for the guide's ``=``-underlined sections."""
    lines = text.splitlines()
    sections: Dict[str, List[str]] = {}
    title, i = "", 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r"=+", nxt) and len(nxt) >= len(line.rstrip()):
            title = line.strip()
            sections.setdefault(title, [])
            i += 2
            continue
        if line.strip() == ".. code-block:: sh":
            body: List[str] = []
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("    ")):
                body.append(lines[i][4:])
                i += 1
            sections[title].append("\n".join(body).strip("\n") + "\n")
            continue
        i += 1
    return sections


def test_guide_blocks_are_found_for_every_use_case():
    blocks = guide_blocks(GUIDE.read_text(encoding="utf-8"))
    counts = {title.split(".")[0]: len(b) for title, b in blocks.items() if b}
    assert counts == {"1": 4, "2": 4, "3": 4, "4": 4, "5": 4, "6": 4}, counts


class Reader:
    """One person following one use case: a fresh HOME, the demo's names."""

    def __init__(self, demo: DemoSwitch, home: Path, blocks: List[str]) -> None:
        self.demo, self.home, self.blocks = demo, home, blocks
        home.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "SARRA_"))}
        env.update(HOME=str(home), PATH=f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}")
        self.env = env

    def run(self, n: int, timeout: float = 120) -> subprocess.CompletedProcess:
        script = self.blocks[n].replace("/tmp/sarra-demo", str(self.demo.root))
        r = subprocess.run(
            ["bash", "-ec", script], env=self.env, cwd=self.home, capture_output=True,
            text=True, timeout=timeout,
        )  # fmt: skip
        return r

    def ok(self, n: int) -> str:
        r = self.run(n)
        assert r.returncode == 0, f"block {n}:\n{self.blocks[n]}\n{r.stdout}\n{r.stderr}"
        return r.stdout

    def until(self, n: int, shows: Callable[[str], bool], seconds: float = WAIT) -> str:
        """Rerun block ``n`` until its output ``shows`` what the guide says (bounded)."""
        runs: List[subprocess.CompletedProcess] = []

        def shown() -> bool:
            runs.append(self.run(n))
            return runs[-1].returncode == 0 and shows(runs[-1].stdout)

        if not wait_for(shown, seconds, every=0.5, fail=False):
            r = runs[-1]
            raise AssertionError(
                f"block {n} never showed it in {seconds:.0f} s:\n{self.blocks[n]}\n"
                f"exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}\n" + self.logs()
            )
        return runs[-1].stdout

    def logs(self) -> str:
        out = []
        for d in (self.home / ".cache/sarra/log", self.demo.root / "cache/sarra/log"):
            for log in sorted(d.glob("*.log")):
                tail = log.read_text(errors="replace").splitlines()[-15:]
                out.append(f"--- {log}\n" + "\n".join(tail))
        return "\n".join(out)

    def close(self) -> None:
        subprocess.run(["dd", "stop"], env=self.env, cwd=self.home, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def switch(rabbit, tmp_path_factory) -> Iterator[DemoSwitch]:
    require((VENV_BIN / "dd").exists(), "no .venv/bin/dd: run tools/dev-setup first")
    demo = DemoSwitch(tmp_path_factory.mktemp("guide") / "demo")
    try:
        r = demo.run_demo()
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        yield demo
    finally:
        demo.close()


@pytest.fixture
def reader(switch: DemoSwitch, request: pytest.FixtureRequest, tmp_path: Path):
    blocks = guide_blocks(GUIDE.read_text(encoding="utf-8"))
    made: List[Reader] = []

    def make(section: str) -> Reader:
        title = next(t for t in blocks if t.startswith(f"{section}. "))
        r = Reader(switch, tmp_path / f"home{section}", blocks[title])
        made.append(r)
        return r

    try:
        yield make
    finally:
        for r in made:
            r.close()


def test_use_case_1_subscribing_to_the_public_switch_as_anonymous_gets_new_files(reader):
    r = reader("1")
    r.ok(0)
    assert "anonymous:anonymous@" in (r.home / ".config/sarra/credentials.conf").read_text()
    r.ok(1)
    assert r.until(2, lambda out: out == "the news of the day\n")
    r.ok(3)
    status = subprocess.run(
        ["dd_subscribe", "status", "public"], env=r.env, capture_output=True, text=True
    )
    assert status.returncode != 0, status.stdout


def test_use_case_2_a_watched_outbox_is_posted_and_dd_log_shows_who_took_it(reader, switch):
    r = reader("2")
    r.ok(0)
    r.ok(1)
    bob, feeder = switch.user("bob"), switch.user("feeder")

    def both_took_it(out: str) -> bool:
        taken = [ln for ln in out.splitlines() if ln.strip().startswith("received by:")]
        return any(f"{feeder}@" in ln and f"{bob}@" in ln for ln in taken)

    out = r.until(2, both_took_it)
    assert "outbox/result.csv (source" in out or "/outbox/result.csv (source" in out, out
    assert "switches: demo" in out
    assert f"result.csv {bob}@" in out  # the one-line-per-report view of the same run
    r.ok(3)


def test_use_case_3_a_file_in_parts_arrives_once_complete_and_triggers_once(reader):
    r = reader("3")
    try:
        r.ok(0)
        r.ok(1)
        out = r.until(2, lambda out: "identical" in out, seconds=40)
        time.sleep(2)  # a wrongly repeated trigger would show up by now
        lines = (r.home / "big.log").read_text().splitlines()
        assert lines == [f"complete: {r.home / 'big' / 'huge.bin'}"], out
        assert not list((r.home / "big").glob("*.tmp")) and not list(
            (r.home / "big").glob(".*.parts")
        )
    finally:
        r.run(3)


def test_use_case_4_on_file_script_runs_once_per_file_with_the_notice_fields(reader, switch):
    r = reader("4")
    r.ok(0)
    r.ok(1)
    out = r.until(2, lambda out: len(out.splitlines()) >= 2)
    time.sleep(1)  # a repeated trigger would show up by now
    lines = sorted((r.home / "ingest.log").read_text().splitlines())
    alice = switch.user("alice")
    assert len(lines) == 2, out
    for line, name in zip(lines, ("s1.csv", "s2.csv")):
        m = re.fullmatch(
            rf"{alice} sent (\S+/{alice}/station/{name}) \(d,[0-9a-f]{{32}}\), now (.*)", line
        )
        assert m, line
        assert m[2] == str(r.home / "obs" / name)
    r.ok(3)


def test_use_case_5_a_v2_plugin_and_an_sr3_callback_run_as_written(reader, switch):
    r = reader("5")
    r.ok(0)
    r.ok(1)
    out = r.until(2, lambda out: "file_log downloaded to:" in out and "skip_part:" in out)
    lines = out.splitlines()
    assert lines[0] == "today.txt.wx", out  # the only file, under its marked name
    alice = switch.user("alice")
    assert re.search(rf"skip_part: not taking \S+/{alice}/forecast/tomorrow.part$", out, re.M)
    assert re.search(rf"msg_log received: \S+ http://\S+/{alice}/forecast/today.txt$", out, re.M)
    assert f"file_log downloaded to: {r.home / 'wx' / 'today.txt.wx'}" in out
    r.ok(3)


def test_use_case_6_a_bandwidth_limit_is_one_budget_for_all_instances(reader):
    r = reader("6")
    try:
        r.ok(0)
        r.ok(1)
        out = r.until(2, lambda out: out.splitlines()[:1] == ["8"] and "takes" in out)
        assert out.splitlines()[1:] == ["bandwidth: this host takes 2/2 of 2097152 bytes/s"]
    finally:
        r.run(3)
