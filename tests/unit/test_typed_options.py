"""The typed view of the options (``sarra/config/typed.py``) matches the option table, every
default fits its declared type, and a loaded ``Options`` has every option."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import pytest

import sarra.roles
from sarra.config.loader import Options, load, table_defaults
from sarra.config.options import OPTIONS
from sarra.config.paths import PROGRAMS, Paths
from sarra.config.typed import OptionValues

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "gen-typed-options"
HINTS = get_type_hints(OptionValues)


def _generator() -> Any:
    loader = importlib.machinery.SourceFileLoader("gen_typed_options", str(TOOL))
    spec = importlib.util.spec_from_loader("gen_typed_options", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def fits(value: Any, hint: Any) -> bool:
    """True when ``value`` is of type ``hint`` (the few forms typed.py uses)."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is type(None):
        return value is None
    if origin is Union:
        return any(fits(value, a) for a in args)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(fits(v, args[0]) for v in value)
        return len(value) == len(args) and all(fits(v, a) for v, a in zip(value, args))
    if origin is re.Pattern:
        return isinstance(value, re.Pattern)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def role_defaults() -> list:
    """(role, DEFAULTS) of every role module that has them (new roles are found too)."""
    found = []
    for info in pkgutil.iter_modules(sarra.roles.__path__):
        module = importlib.import_module(f"sarra.roles.{info.name}")
        if isinstance(getattr(module, "DEFAULTS", None), dict):
            found.append((info.name, module.DEFAULTS))
    return found


def test_typed_py_is_generated_from_the_current_table():
    assert (ROOT / "sarra" / "config" / "typed.py").read_text() == _generator().render(), (
        "sarra/config/typed.py is stale: run tools/gen-typed-options"
    )


def test_the_generator_check_mode_agrees():
    done = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_option_is_declared_once_in_table_order():
    assert list(HINTS) == list(OPTIONS)


@pytest.mark.parametrize(
    "name, text",
    [
        ("preserve_time", "bool"),
        ("timeout", "float"),
        ("prefetch", "int"),
        ("broker", "Optional[str]"),
        ("subtopic", "Tuple[str, ...]"),
        ("accept", "Tuple[Pattern[str], ...]"),
        ("inflight", "Union[str, float, None]"),
        ("path_match", "Optional[Pattern[str]]"),
    ],
)
def test_an_options_type_comes_from_its_converter_repeatability_and_default(name, text):
    assert _generator().option_type(OPTIONS[name]) == text


def test_a_converter_without_a_return_type_is_refused():
    gen = _generator()

    def untyped(value):
        return value

    row = OPTIONS["timeout"]
    with pytest.raises(ValueError, match="no return type"):
        gen.option_type(type(row)(row.name, untyped, row.default, row.help))


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_each_table_default_fits_the_declared_type(name):
    assert fits(OPTIONS[name].default, HINTS[name]), (name, OPTIONS[name].default, HINTS[name])


@pytest.mark.parametrize("role, defaults", role_defaults())
def test_each_role_default_fits_the_declared_type(role, defaults):
    for name, value in defaults.items():
        assert fits(value, HINTS[name]), (role, name, value, HINTS[name])


def test_the_defaults_of_every_role_are_checked():
    assert {role for role, _ in role_defaults()} >= {"post", "watch", "subscribe", "sara", "log"}


def test_the_type_checker_of_these_tests_refuses_wrong_values():
    assert not fits(True, int) and not fits("1", int) and not fits(None, bool)
    assert not fits(("a", 1), HINTS["subtopic"]) and not fits(["a"], HINTS["subtopic"])
    assert fits(None, HINTS["broker"]) and fits(2, HINTS["timeout"])


@pytest.mark.parametrize("program", PROGRAMS)
def test_a_loaded_options_has_every_option_at_its_default(tmp_path, program):
    o = load(program, None, (), Paths.under(tmp_path))
    for name, row in OPTIONS.items():
        assert getattr(o, name) == row.default, name
        assert fits(getattr(o, name), HINTS[name]), name


def test_converted_values_fit_the_declared_types(tmp_path):
    lines = [
        ("accept", ".*x"),
        ("strip", "2"),
        ("inflight", "5"),
        ("declare", "source alice"),
        ("source_hosts", "* a.example"),
        ("header", "a=b"),
        ("to", "A,B"),
        ("chmod", "600"),
        ("blocksize", "10M"),
        ("suppress_duplicates", "on"),
    ]
    o = load("sara", None, lines, Paths.under(tmp_path))
    for name, _ in lines:
        assert fits(getattr(o, name), HINTS[name]), name


def test_no_option_hides_an_attribute_or_method_of_options():
    own = {n for n in vars(Options)} | {"masks", "program", "config", "config_path"}
    assert not own & set(OPTIONS)


def test_a_misspelt_option_is_an_attribute_error_not_a_default():
    o = table_defaults("subscribe")
    with pytest.raises(AttributeError, match="no option 'preserve_tim'"):
        o.preserve_tim  # noqa: B018
