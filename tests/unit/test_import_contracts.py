"""The import arrows of pyproject.toml (``lint-imports``, run by tools/test) hold on the
tree, and each contract breaks on a deliberately wrong import in a copy of it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import importlinter  # noqa: F401 - a test extra (setup.py), as hypothesis: never skipped
import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command;"
        " sys.exit(lint_imports_command())"]  # fmt: skip


def lint(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*LINT, "--no-cache"], cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("arrows")
    shutil.copytree(ROOT / "sarra", tree / "sarra", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_the_tree_keeps_every_contract(copy):
    got = lint(copy)
    assert got.returncode == 0, got.stdout[-3000:] + got.stderr[-3000:]
    assert "0 broken" in got.stdout


@pytest.mark.parametrize(
    "module, line, contract",
    [
        ("core/message.py", "import pika", "the pure core imports no I/O library"),
        ("core/routing.py", "import requests", "the pure core imports no I/O library"),
        ("core/checksum.py", "from sarra.flow import context", "the layers"),
        ("config/options.py", "from sarra.broker import urls", "the layers"),
        ("transfer/file.py", "from sarra.flow import engine", "the layers"),
        ("broker/confirms.py", "from sarra.roles import sara", "the layers"),
        ("service/supervisor.py", "from sarra import cli", "the layers"),
        ("watch/scan.py", "from sarra.report import view", "the layers"),
        ("flow/download.py", "import pika", "pika is imported by the broker adapter only"),
        ("fs/safefs.py", "import paramiko", "network clients only in"),
        ("post/notices.py", "import watchdog", "watchdog is imported by sarra.watch only"),
        ("roles/log.py", "from sarra.roles import subscribe", "roles do not import each other"),
        ("flow/stats.py", "from sarra.flow import engine", "no import cycle"),
    ],
)
def test_a_wrong_import_breaks_its_contract(copy, module, line, contract):
    path = copy / "sarra" / module
    kept = path.read_text()
    try:
        path.write_text(kept + f"\n{line}  # deliberately wrong\n")
        got = lint(copy)
    finally:
        path.write_text(kept)
    assert got.returncode != 0, got.stdout[-3000:]
    broken = [ln for ln in got.stdout.splitlines() if ln.endswith("BROKEN")]
    assert any(ln.startswith(contract) for ln in broken), got.stdout[-3000:]
