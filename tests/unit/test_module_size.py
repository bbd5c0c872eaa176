"""The size budget of STYLE section 2: no module of sarra over 500 lines, no function over 60.

A module that grows past the budget is split in the same change, along a seam that
names a concern (as broker/connection.py -> topology.py, config/options.py ->
converters.py); this test is what makes "in the same change" true.
"""

from __future__ import annotations

import ast
from pathlib import Path

SARRA = Path(__file__).resolve().parents[2] / "sarra"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def modules() -> list[Path]:
    return sorted(SARRA.rglob("*.py"))


def test_no_module_is_over_500_lines():
    over = {
        p.relative_to(SARRA).as_posix(): n
        for p in modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not over, f"split these modules (lines): {over}"


def test_no_function_is_over_60_lines():
    over = {}
    for p in modules():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    over[f"{p.relative_to(SARRA).as_posix()}:{node.lineno} {node.name}"] = n
    assert not over, f"split these functions (lines): {over}"
