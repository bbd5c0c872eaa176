"""Man pages: every option documented once (generated from the table), every command has
a page, and every page renders without a docutils warning."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
from pathlib import Path

import pytest

from sarra.config import options as optdefs
from sarra.service.programs import ROLES
from tests.fixtures.require import require_module

ROOT = Path(__file__).resolve().parents[2]
MAN = ROOT / "man"
COMMANDS = (*ROLES, "dd")  # every program the launchers and setup.py install
FORMATS = ("dd_post.7", "dd_log.7")


def _build_man():
    loader = importlib.machinery.SourceFileLoader("build_man", str(ROOT / "tools" / "build-man"))
    spec = importlib.util.spec_from_loader("build_man", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build_man():
    return _build_man()


@pytest.fixture(scope="module")
def page(build_man) -> str:
    return build_man.options_page()


def hand_pages() -> list:
    return sorted(p for p in MAN.glob("*.rst") if p.name != "sarra-options.5.rst")


@pytest.mark.parametrize("name", sorted(optdefs.OPTIONS))
def test_every_option_has_help_and_exactly_one_entry_in_the_options_page(name, page):
    assert optdefs.OPTIONS[name].help.strip(), f"option {name} has no help text"
    entries = re.findall(rf"^\*\*{re.escape(name)}\*\* \*", page, flags=re.MULTILINE)
    assert len(entries) == 1, f"option {name} has {len(entries)} entries in sarra-options(5)"


def test_every_synonym_is_listed_with_its_option(page):
    for word, target in optdefs.SYNONYMS.items():
        assert f"| ``{word}`` = **{target}**" in page


def test_every_value_type_is_explained_once(page, build_man):
    types = {build_man._type_name(o) for o in optdefs.OPTIONS.values()}
    section = page.split("VALUE TYPES", 1)[1].split("SYNONYMS", 1)[0]
    for name in types:
        assert section.count(f"\n*{name}*\n") == 1, name


def test_no_hand_written_page_defines_an_option_entry():
    """Options are described in the table only: pages name them, never define them."""
    defined = re.compile(r"^\*\*(\w+)\*\* \*\w+\*$", re.MULTILINE)
    for p in hand_pages():
        clashes = [w for w in defined.findall(p.read_text()) if w in optdefs.OPTIONS]
        assert not clashes, f"{p.name} re-describes {clashes}; see sarra-options(5)"


@pytest.mark.parametrize("command", COMMANDS + ("dd_admin",))
def test_every_command_has_a_page_pointing_to_the_option_reference(command):
    pages = list(MAN.glob(f"{command}.[18].rst"))
    assert len(pages) == 1, f"no man page for {command}"
    text = pages[0].read_text()
    assert "SEE ALSO" in text and "sarra-options**\\(5)" in text


@pytest.mark.parametrize("name", FORMATS)
def test_wire_format_pages_exist(name):
    assert (MAN / f"{name}.rst").is_file()


def test_every_bin_launcher_has_a_man_page():
    for launcher in (ROOT / "bin").iterdir():
        assert list(MAN.glob(f"{launcher.name}.[18].rst")), f"bin/{launcher.name} has no page"


def test_every_page_renders_without_docutils_warnings(tmp_path, build_man, page):
    require_module("docutils")  # in the test extra: CI has it
    src = tmp_path / "sarra-options.5.rst"
    src.write_text(page)
    for p in hand_pages() + [src]:
        out = tmp_path / p.name[: -len(".rst")]
        problems = build_man.render(p, out)
        assert problems == [], f"{p.name}: {problems}"
        assert out.read_text().startswith('.\\" Man page generated from reStructuredText')
