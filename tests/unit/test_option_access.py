"""No code in sarra/ reads an option by name with a default of its own.

Every option is always present on a loaded ``Options`` with its table default, and
typed (``sarra/config/typed.py``): ``o.timeout`` is the one way to read it.  A
``getattr(o, "timeout", 30)`` would copy the table's default (four copies of
``preserve_time``'s once drifted apart) and hide the option from mypy; this scan keeps
them from coming back.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import List

import pytest

from sarra.config.options import OPTIONS

SARRA = Path(__file__).resolve().parents[2] / "sarra"
#: expressions that name an options object
OPTIONS_NAMES = {"o", "opts", "options", "self.o", "self.options", "ctx.options", "self.opts"}
#: where ``self.options`` is a transfer's dict of credential options, not ``Options``
DICT_OPTIONS = ("transfer/", "config/credentials.py")


def offences(source: str, where: str = "") -> List[str]:
    """``file:line: code`` of each option read by name in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func, first = node.func, node.args[0]
        receiver = ast.unparse(first)
        literal = [a.value for a in node.args[1:2] if isinstance(a, ast.Constant)]
        if isinstance(func, ast.Name) and func.id in ("getattr", "hasattr") and literal:
            if receiver in OPTIONS_NAMES or literal[0] in OPTIONS:
                found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(func, ast.Attribute) and func.attr == "get":
            name = first.value if isinstance(first, ast.Constant) else None
            owner = ast.unparse(func.value)
            if name in OPTIONS and owner in OPTIONS_NAMES and not where.startswith(DICT_OPTIONS):
                found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_option_is_read_by_name_anywhere_in_sarra():
    found = []
    for path in sorted(SARRA.rglob("*.py")):
        found += offences(path.read_text(encoding="utf-8"), str(path.relative_to(SARRA)))
    assert not found, "read the typed attribute (o.name) instead:\n" + "\n".join(found)


def test_the_scan_covers_the_whole_package():
    assert len(list(SARRA.rglob("*.py"))) > 50  # a moved tree must not make this pass empty


@pytest.mark.parametrize(
    "code",
    [
        'getattr(o, "preserve_time", True)',
        'getattr(self.o, "inflight", ".tmp")',
        'getattr(options, "masks", ())',
        'getattr(src, "mirror", False)',  # any receiver, when the name is an option
        'hasattr(self.options, "reset")',
        'getattr(ctx.options, "config", None)',
        'o.get("journal")',
        'self.options.get("threads") or 1',
        'ctx.options.get("broker_ca")',
    ],
)
def test_each_spelling_of_a_read_by_name_is_caught(code):
    assert offences(f"x = {code}\n", "roles/x.py")


@pytest.mark.parametrize(
    "code",
    [
        "o.preserve_time",
        'getattr(e, "strerror", None)',
        'notice.headers.get("sum", "")',
        "getattr(options, name)",  # a name held in a variable: plugins, the generic loop
        'getattr(self.source, "keepalive", None)',
    ],
)
def test_what_is_not_an_option_read_is_left_alone(code):
    assert not offences(f"x = {code}\n", "flow/x.py")


def test_a_transfers_dict_of_credential_options_may_be_read_with_get():
    code = 'x = self.options.get("redirect_hosts") or ()\n'
    assert not offences(code, "transfer/http.py") and offences(code, "flow/x.py")
