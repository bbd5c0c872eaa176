"""User names cannot overlap: no valid user's broker rights reach another's exchanges."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sarra.admin import config as admin_conf
from sarra.admin import users as adm
from sarra.config import converters
from sarra.core.errors import ConfigError
from tests.unit.test_admin import FakeAPI, write_conf

VALID = ["u", "ux", "u-x", "a-b-c", "Alice2", "9", "x" * 64]
INVALID = ["u_x", "u.x", "a_b_c", "-u", "", "x" * 65, "u x", "u/x", "\u00fcser", "u*", "u\n"]
ROLES = ("source", "subscriber")


def his(user: str) -> list[str]:
    """Names of exchanges and queues that belong to ``user`` (the switch's conventions)."""
    return [f"xs_{user}", f"xr_{user}", f"xs_{user}_public", f"xl_{user}", f"q_{user}.x.1"]


def reaches(p: adm.Permissions, name: str) -> bool:
    return any(re.search(rx, name) for rx in (p.configure, p.write, p.read))


@pytest.mark.parametrize("name", VALID)
def test_valid_names(name):
    assert converters.user_name(name) == name


@pytest.mark.parametrize("name", INVALID)
def test_names_with_separators_or_odd_characters_are_refused(name):
    with pytest.raises(ValueError, match="bad user name"):
        converters.user_name(name)


@pytest.mark.parametrize("name", ["u_x", "u.x", "a_b_c"])
@pytest.mark.parametrize("kind", ROLES)
def test_declare_refuses_them(kind, name):
    with pytest.raises(ValueError, match="no '_' or '.'"):
        converters.declare(f"{kind} {name}")
    assert converters.declare("exchange xs_u_public") == ("exchange", "xs_u_public")


@pytest.fixture
def switch(tmp_path):
    cfg = admin_conf.load_admin_config(write_conf(tmp_path))
    return adm.Admin(cfg, FakeAPI(), tmp_path / "credentials.conf")  # type: ignore[arg-type]


@pytest.mark.parametrize("first, second", [("u", "u_x"), ("u", "u.x"), ("a", "a_b_c")])
def test_dd_admin_refuses_the_overlapping_name_and_creates_nothing(switch, first, second):
    switch.add_user(first, "source")
    with pytest.raises(ConfigError, match="bad user name"):
        switch.add_user(second, "source")
    assert second not in switch.api.passwords
    assert f"xs_{second}" not in switch.api.xs
    assert f"declare source {second}" not in switch.cfg.path.read_text()


@pytest.mark.parametrize("first, second", [("u", "ux"), ("u", "u-x"), ("a", "a-b-c")])
def test_dd_admin_accepts_neighbours_that_cannot_overlap(switch, first, second):
    switch.add_user(first, "source")
    switch.add_user(second, "subscriber")
    for a, b in ((first, second), (second, first)):
        role = switch.cfg.users[a]
        p = adm.permissions_for(role, a)
        assert not [n for n in his(b) if reaches(p, n) and not n.endswith("public")]


_NAMES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,12}", fullmatch=True)


@settings(max_examples=500, deadline=None)
@given(_NAMES, _NAMES, st.sampled_from(ROLES))
def test_no_valid_user_reaches_anothers_exchanges_or_queues(a, b, role):
    if a == b:
        return
    p = adm.permissions_for(role, a)
    for name in his(b):
        assert not re.search(p.configure, name) and not re.search(p.write, name)
        # what anybody may read: exchanges named ...public
        assert not re.search(p.read, name) or name.endswith("public")
