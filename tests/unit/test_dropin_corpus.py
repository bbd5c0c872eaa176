"""Every option line of the v2 and sr3 example configs and man pages loads, each for the
role it belongs to (tests/fixtures/config/dropin/{v2,sr3}.txt; their heads say where the
lines come from and which were left out).  The [refused] lines are refused at load,
each with its reason: they ask for what sarra does not do (a v2 plugin replacing its
transfers, an MQTT broker) or are broken in the example itself (a bad regex)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import List, Tuple

import pytest

from sarra.config.loader import load
from sarra.config.paths import Paths
from sarra.core.errors import ConfigError

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "config" / "dropin"
#: every config has a broker (and the posting ones a post broker) before such lines
PREAMBLE = "broker amqp://tester@localhost/\npost_broker amqp://feeder@localhost/\n"
#: the user's environment the example configs name
ENV = {
    "HOME": "/home/tester",
    "FLOWBROKER": "localhost",
    "HYDRO_DATA": "/srv/hydro",
    "BUPL": "bupl",
    "COLLABDIR": "/srv/collab",
    "COLLABUSER": "collab",
    "EMAIL_INGEST": "/srv/email",
    "PITCHERBROKER": "amqp://pitcher@localhost",
    "PITCHERURL": "sftp://pitcher@localhost/",
    "PITCHERUSERHOME": "/home/pitcher",
    "SCIUSER": "sci",
}
Entry = Tuple[str, str, Tuple[str, ...], str]  # role, line, lines before it, expected error


def entries(name: str) -> List[Entry]:
    out: List[Entry] = []
    section = ""
    for raw in (CORPUS / name).read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        if raw.startswith("["):
            section = raw.strip("[]")
            continue
        role, _, rest = raw.partition(": ")
        rest, _, why = rest.partition("  =>  ")
        *context, line = rest.split(" ;; ")
        assert (section == "refused") == bool(why), raw
        out.append((role, line, tuple(context), why))
    return out


CASES = [pytest.param(*e, id=f"{n}:{e[0]}:{e[1][:50]}") for n in ("v2.txt", "sr3.txt")
         for e in entries(n)]  # fmt: skip


def load_line(tmp_path: Path, role: str, line: str, context: Tuple[str, ...]):
    paths = Paths.under(tmp_path)
    conf = paths.config_file(role, "corpus")
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(PREAMBLE + "".join(c + "\n" for c in context) + line + "\n")
    return load(role, "corpus", paths=paths, environ=ENV)


@pytest.mark.parametrize("role, line, context, why", CASES)
def test_each_line_loads_for_its_role_or_is_refused_with_why(
    tmp_path, caplog, role, line, context, why
):
    caplog.set_level(logging.WARNING, "sarra.config.loader")
    if why:
        with pytest.raises(ConfigError, match=re.escape(why)) as info:
            load_line(tmp_path, role, line, context)
        assert re.search(r"corpus\.conf:\d+: ", str(info.value))  # file:line, never a traceback
        return
    load_line(tmp_path, role, line, context)
    # an option that has no effect here says so, in one line
    assert len([r for r in caplog.records if "has no effect here" in r.getMessage()]) <= 1


def test_the_corpus_holds_both_generations_examples_and_man_pages():
    for name in ("v2.txt", "sr3.txt"):
        text = (CORPUS / name).read_text()
        assert "[examples]" in text and "[man pages]" in text and "[refused]" in text
        ok = [e for e in entries(name) if not e[3]]
        assert len(ok) > 250, name
