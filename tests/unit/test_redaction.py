"""Log text from hostile input: linear-time password redaction, escaped controls, cut lines.

The adversarial inputs are 1 MB: a redaction with a quadratic worst case would take
hours on them, so a hang guard (faulthandler, which fires even inside a C regex loop
that ignores Python signals) stops the run instead of any timing assertion.
"""

from __future__ import annotations

import faulthandler
import logging
import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sarra.config import values as config
from sarra.core.redaction import MAX_LINE, escape_controls, redact, safe_block, safe_line
from sarra.logs import setup as logsetup
from sarra.logs.setup import RedactingFilter, SafeTextFilter, setup_logging

# the rule as a regex: the reference on small inputs (it backtracks on big ones)
_REFERENCE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)[^\s/]*@")
MB = 1 << 20


def reference(text: str) -> str:
    return _REFERENCE.sub(r"\1***@", text)


@pytest.fixture
def hang_guard():
    """Kill the run with a traceback if one call hangs (a backtracking regex would)."""
    faulthandler.dump_traceback_later(300, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="aZ9+.-:/@ \t\u00e9x", max_size=40))
def test_redact_is_the_regex_rule(text):
    assert redact(text) == reference(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("amqp://bob:secret@broker/", "amqp://bob:***@broker/"),
        ("amqps://bob:p@ss@broker:5671/vh", "amqps://bob:***@broker:5671/vh"),
        ("x1://u:a:b@c@h/p", "x1://u:***@h/p"),
        ("1a://u:p@h", "1a://u:***@h"),
        ("+.://u:p@h", "+.://u:p@h"),
        ("http://u:p@h/ ftp://v:q@k http://w:r@", "http://u:***@h/ ftp://v:***@k http://w:***@"),
        ("http://host:8080/path@x", "http://host:8080/path@x"),
    ],
)
def test_redact_examples(text, expected):
    assert redact(text) == expected == reference(text)


ADVERSARIAL = {
    "scheme letters": "a" * MB,
    "a://": "a://" * (MB // 4),
    "a://b:": "a://b:" * (MB // 6),
    "colons": ":" * MB,
    "ats": "@" * MB,
    "a://b:@@@": "a://b:" + "@" * MB,
    "a://:::": "a://" + ":" * MB,
    "mix": "a:a@a://:@/" * (MB // 11),
    "no slash after colon": "a://b:" + "x@" * (MB // 2) + " tail",
    "a.b-c+": "a.b-c+" * (MB // 6) + "://u:p@h",
    "spaces": ("a://b: " * (MB // 7)),
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
@pytest.mark.parametrize("fn", [redact, logsetup.redact, config._redact], ids=repr)
def test_redact_of_a_megabyte_ends(name, fn, hang_guard):
    text = ADVERSARIAL[name]
    out = fn(text)
    assert "@" not in text or "***@" in out or out == text
    # the same text cut small gives the regex's answer: the scan is the same rule
    small = text[:4000]
    assert fn(small) == reference(small)


def test_redact_of_a_megabyte_hides_every_password(hang_guard):
    text = "x://u:secret@h/ " * (MB // 16)
    out = redact(text)
    assert "secret" not in out and out.count("x://u:***@h/") == MB // 16


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("a\x00b", "a\\x00b"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("file\n2026-12-07 [INFO] forged", "file\\n2026-12-07 [INFO] forged"),
        ("cr\rover", "cr\\rover"),
        ("tab\tx", "tab\\tx"),
        ("del\x7fc1\x85\x9b", "del\\x7fc1\\x85\\x9b"),
        ("bidi\u202egnp.exe", "bidi\\u202egnp.exe"),
        ("iso\u2066x\u2069", "iso\\u2066x\\u2069"),
        ("sep\u2028line", "sep\\u2028line"),
        ("caf\u00e9 \u65e5\u672c", "caf\u00e9 \u65e5\u672c"),
    ],
)
def test_controls_are_escaped(raw, shown):
    assert escape_controls(raw) == shown == safe_line(raw)


@pytest.mark.parametrize("size", [MAX_LINE + 1, 100_000, MB])
def test_long_lines_are_cut_and_say_so(size, hang_guard):
    out = safe_line("r" * size)
    assert out.startswith("r" * MAX_LINE)
    assert out.endswith(f"... [{size - MAX_LINE} more characters]")


@pytest.mark.parametrize("at", [MAX_LINE - 30, MAX_LINE - 5, MAX_LINE + 10])
def test_a_cut_never_shows_part_of_a_password(at):
    text = "p" * at + "http://user:topsecretpassword@host/x"
    assert "topsecret" not in safe_line(text)


def test_a_block_keeps_newlines_cuts_lines_and_bounds_their_number():
    block = "Traceback\n  line \x1b[2J\n" + "x" * 10_000 + "\n" + "l\n" * 1000 + "End"
    out = safe_block(block)
    assert out.startswith("Traceback\n  line \\x1b[2J\n")
    assert out.endswith("l\nEnd") and "more lines]" in out
    assert max(len(line) for line in out.split("\n")) < MAX_LINE + 40


def record(msg, *args):
    return logging.LogRecord("sarra.x", logging.WARNING, __file__, 1, msg, args, None)


def test_filter_escapes_message_arguments_and_traceback():
    rec = record("bad name %s", "a\x1b]0;title\x07\nb")
    try:
        raise ValueError("name \x1b[31m\x00")
    except ValueError:
        rec.exc_info = sys.exc_info()
    assert SafeTextFilter().filter(rec)
    text = logging.Formatter().format(rec)
    assert "\x1b" not in text and "\x00" not in text and "\x07" not in text
    assert "bad name a\\x1b]0;title\\x07\\nb" in text
    assert "Traceback (most recent call last):\n" in text
    assert "ValueError: name \\x1b[31m\\x00" in text


@pytest.fixture
def clean_root():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for h in root.handlers:
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)


@pytest.mark.parametrize(
    "relpath",
    [
        "dir/\x00name",
        "x\n2026-12-07 10:00:00,000 [INFO] sarra: forged line",
        "\x1b[1;1H\x1b[2Jwiped",
        "\u202eevil",
        "long/" + "n" * 200_000,
    ],
)
def test_every_installed_handler_writes_one_safe_line(clean_root, tmp_path, relpath, hang_guard):
    handler = setup_logging(
        level="info",
        log_file=tmp_path / "x.log",
        backups=1,
        rotate_s=86400,
        program="dd_sara",
        instance=1,
        redirect_fds=False,
    )
    assert any(isinstance(f, RedactingFilter) for f in handler.filters)
    logging.getLogger("sarra.flow.engine").warning("refused %s from http://u:pw@h/", relpath)
    handler.flush()
    text = (tmp_path / "x.log").read_text(encoding="utf-8")
    assert text.count("\n") == 1
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text[:-1])
    assert "\u202e" not in text and ":pw@" not in text
    assert len(text) < MAX_LINE + 200


# ------------------------------------------------------------------ bounded notice fields


@pytest.mark.parametrize(
    "field, size",
    [("relpath", 4097), ("relpath", 100_000), ("relpath", MB), ("baseurl", 5000)],
)
def test_decode_refuses_fields_longer_than_a_path_can_be(field, size, hang_guard):
    from sarra.core import message
    from sarra.core.errors import MessageError

    rel = "a" * size if field == "relpath" else "d/f.txt"
    base = "http://h/" + "b" * size if field == "baseurl" else "http://h/"
    body = f"20261207000000.000 {base} {rel}".encode()
    with pytest.raises(MessageError, match=f"{field} of .* bytes, over 4096"):
        message.decode("v02.post.d", {"sum": "d,x"}, body)


@pytest.mark.parametrize("rel", ["a" * 4096, "\u65e5" * 1365, "d/" + "x" * 4000])
def test_decode_keeps_fields_up_to_the_bound(rel):
    from sarra.core import message

    body = f"20261207000000.000 http://h/ {rel}".encode()
    assert message.decode("v02.post.d", {}, body).relpath == rel
