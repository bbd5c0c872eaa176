"""sr3 flow callbacks run unchanged: classes written as an sr3 user writes them
(``from sarracenia.flowcb import FlowCB``, ``self.o.add_option``, worklists of message
dicts), sr3's built-in names (``callback log``), and the worklist rule: a message moved
to ``rejected`` is rejected, to ``failed`` retried, and never lost."""

from __future__ import annotations

import base64
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sarra.core.delivery import FAILED, OK, REJECTED
from sarra.core.errors import ConfigError, HookError
from sarra.core.message import Notice
from sarra.hooks.sr3msg import FIELDS, build, notice_after
from sarra.hooks.v2msg import V2Message
from tests.fixtures.plugins import delivery, hooks, notice, write_plugin

RENAMER = """
import logging
import sarracenia
from sarracenia.flowcb import FlowCB

logger = logging.getLogger(__name__)


class Renamer(FlowCB):
    def __init__(self, options):
        super().__init__(options, logger)
        self.o.add_option('renameSuffix', 'str', '.none')
        self.o.add_option('keepFor', 'duration', '1h')
        self.o.add_option('tags', 'set', ['a'])
        self.seen = 0

    def after_accept(self, worklist):
        new_incoming = []
        for m in worklist.incoming:
            if m['relPath'].endswith('.bad'):
                m.setReport(403, 'bad name')
                worklist.rejected.append(m)
            elif m['relPath'].endswith('.later'):
                worklist.failed.append(m)
            else:
                m['new_file'] = m['new_file'] + self.o.renameSuffix
                m['checked_by'] = self.o.component
                m['lag'] = round(sarracenia.nowflt() - sarracenia.timestr2flt(m['pubTime']))
                new_incoming.append(m)
        worklist.incoming = new_incoming

    def after_work(self, worklist):
        for m in worklist.ok:
            self.seen += 1
            logger.info(f"renamer: {m['new_dir']}/{m['new_file']} keep={self.o.keepFor} "
                        f"tags={sorted(self.o.tags)}")

    def on_housekeeping(self):
        logger.info(f"renamer: {self.seen} files")
"""


def renamer(tmp_path, extra=""):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "myrename.py", RENAMER)
    conf = f"directory {tmp_path}/in\nrenameSuffix .grib2\n{extra}flowcb myrename.Renamer\n"
    return hooks(tmp_path, conf, dirs=[plugins])


def test_an_sr3_callback_renames_sets_headers_rejects_and_defers(tmp_path):
    _, hs = renamer(tmp_path, "keepFor 2d\ntags +b,c\n")
    d = delivery("x/f.txt")
    assert hs.accepts(d) is True
    assert d.local_path == tmp_path / "in" / "f.txt.grib2"
    assert d.notice.headers["checked_by"] == "subscribe" and d.notice.headers["lag"] == "0"
    bad, later = delivery("x/f.bad"), delivery("x/f.later")
    assert hs.accepts(bad) is False and bad.outcome == REJECTED and bad.report == (403, "bad name")
    assert hs.accepts(later) is False and later.outcome == FAILED and later.report is None


def test_after_work_sees_the_file_and_options_convert_by_kind(tmp_path, caplog):
    _, hs = renamer(tmp_path, "keepFor 2d\ntags +b,c\n")
    d = delivery("x/f.txt")
    hs.accepts(d)
    with caplog.at_level(logging.INFO):
        hs.emit("on_file", d)
        hs.safe_emit("on_housekeeping")
    assert f"renamer: {tmp_path}/in/f.txt.grib2 keep=172800.0 tags=['a', 'b', 'c']" in caplog.text
    assert "renamer: 1 files" in caplog.text


def test_a_callback_option_with_a_bad_value_is_a_config_error_at_its_line(tmp_path):
    with pytest.raises(ConfigError, match="keepFor") as info:
        renamer(tmp_path, "keepFor soon\n")
    assert info.value.where.endswith("subscribe.conf:4")


def test_callback_log_is_the_built_in_and_logs_what_logEvents_name(tmp_path, caplog):
    _, hs = hooks(tmp_path, f"directory {tmp_path}\ncallback log\n")
    d = delivery("x/f.txt")
    with caplog.at_level(logging.INFO):
        assert hs.accepts(d)
        d.local_path = tmp_path / "f.txt"
        hs.emit("on_file", d)
        hs.safe_emit("on_housekeeping")
    assert "accepted: (lag: " in caplog.text and "http://src.example/data/x/f.txt" in caplog.text
    assert f"downloaded ok: {tmp_path}/f.txt" in caplog.text
    assert "housekeeping: 1 accepted, 1 downloaded" in caplog.text
    _, quiet = hooks(tmp_path, "logEvents on_housekeeping\nflowcb sarracenia.flowcb.log.Log\n")
    assert not quiet.has("on_message") and quiet.has("on_housekeeping")


def test_a_message_a_callback_drops_from_every_list_is_rejected_not_lost(tmp_path):
    plugins = tmp_path / "plugins"
    code = (
        "class Dropper:\n"
        "    def __init__(self, o): pass\n"
        "    def after_accept(self, worklist): worklist.incoming = []\n"
    )
    write_plugin(plugins, "dropper.py", code)
    _, hs = hooks(tmp_path, "callback dropper\n", dirs=[plugins])
    d = delivery()
    assert hs.accepts(d) is False and d.outcome == REJECTED


def test_a_callback_moving_to_ok_skips_the_work_and_posts(tmp_path):
    plugins = tmp_path / "plugins"
    code = (
        "class Done:\n"
        "    def __init__(self, o): pass\n"
        "    def after_accept(self, wl):\n"
        "        wl.ok, wl.incoming = wl.incoming, []\n"
    )
    write_plugin(plugins, "done.py", code)
    _, hs = hooks(tmp_path, "callback done.Done\n", dirs=[plugins])
    d = delivery()
    assert hs.accepts(d) is False and d.outcome == OK and d.post_notice == d.notice


def test_a_raising_callback_is_named(tmp_path):
    plugins = tmp_path / "plugins"
    code = "class Boom:\n    def __init__(self, o): pass\n    def after_accept(self, wl): 1 / 0\n"
    write_plugin(plugins, "boom.py", code)
    _, hs = hooks(tmp_path, "callback boom\n", dirs=[plugins])
    with pytest.raises(HookError, match="plugin callback boom .*ZeroDivisionError"):
        hs.accepts(delivery())


def test_callback_prepend_runs_first_and_after_post_runs_before_the_post(tmp_path, caplog):
    plugins = tmp_path / "plugins"
    for name in ("one", "two", "three"):
        code = (
            f"import logging\nclass {name.capitalize()}:\n"
            "    def __init__(self, o): pass\n"
            f"    def after_accept(self, wl): logging.getLogger('t').info('{name}')\n"
            "    def after_post(self, wl):\n"
            f"        for m in wl.ok: m['posted_by'] = '{name}'\n"
        )
        write_plugin(plugins, f"{name}.py", code)
    conf = "callback one\ncallback_prepend two\nflowcb_prepend three\n"
    _, hs = hooks(tmp_path, conf, program="shovel", dirs=[plugins], locate=False)
    d = delivery()
    with caplog.at_level(logging.INFO, logger="t"):
        hs.accepts(d)
    assert [r.getMessage() for r in caplog.records if r.name == "t"] == ["three", "two", "one"]
    d.post_notice = d.notice
    hs.emit("on_post", d)
    assert d.post_notice.headers["posted_by"] == "one"


@pytest.mark.parametrize(
    "code, why",
    [
        (
            "class G:\n    def __init__(self, o): pass\n    def download(self, m): return True\n",
            "download",
        ),
        (
            "class G:\n    def __init__(self, o): raise ValueError('no')\n"
            "    def after_work(s, w): pass\n",
            "ValueError",
        ),
        ("import nowhere_module\nclass G:\n    pass\n", "ModuleNotFoundError"),
    ],
)
def test_a_callback_that_cannot_run_here_is_a_config_error(tmp_path, code, why):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "g.py", code)
    with pytest.raises(ConfigError, match=why) as info:
        hooks(tmp_path, "flowcb g.G\n", dirs=[plugins])
    assert info.value.where.endswith("subscribe.conf:2")


def test_unknown_callback_and_undeclared_option_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no module named 'nowhere'") as info:
        hooks(tmp_path, "callback nowhere.Thing\n")
    assert info.value.where.endswith(":2")
    with pytest.raises(ConfigError, match="unknown option 'logevnts'") as info:
        hooks(tmp_path, "callback log\nlogevnts after_accept\n")
    assert info.value.where.endswith(":3")


# ---------------------------------------------------------------- the message dict
def test_the_sr3_message_has_the_v03_fields_of_the_notice():
    n = notice("a/b/f.txt", mtime="20250101120000.5", parts="1,14,1,0,0", source="alice")
    m = build(n, "/in/a/b", "f.txt", exchange="xpublic")
    md5 = base64.b64encode(bytes.fromhex("746308829575e17c3331bbcb00c0898b")).decode()
    assert m["identity"] == {"method": "md5", "value": md5}
    assert m["size"] == 14 and m["subtopic"] == ["a", "b"] and m["source"] == "alice"
    assert m["pubTime"][8] == "T" and m["mtime"] == "20250101T120000.5"
    assert (m["new_dir"], m["new_file"], m["exchange"]) == ("/in/a/b", "f.txt", "xpublic")
    assert m.getIDStr() == "http://src.example/data/a/b/f.txt"
    assert notice_after(m, n) == n  # nothing changed, nothing written back


@pytest.mark.parametrize(
    "sum_, expected",
    [
        ("R,x", {"fileOp": {"remove": ""}}),
        ("s,zz-not-hex", {"identity": {"method": "sha512", "value": "zz-not-hex"}}),
        ("z,d", {"identity": {"method": "cod", "value": "md5"}}),
    ],
)
def test_hostile_or_odd_sums_map_without_error(sum_, expected):
    m = build(notice(sum=sum_, parts="garbage"))
    assert all(m[k] == v for k, v in expected.items()) and "size" not in m


def test_header_keys_changed_by_a_callback_go_back_and_v03_fields_do_not():
    n = notice(source="alice", mtime="20250101120000.5")
    m = build(n)
    m["size"] = 999  # read-only here
    m["identity"] = {"method": "md5", "value": "x"}
    m["new_header"] = "v"
    m["flag"] = True  # not text: not a header
    del m["source"]
    after = notice_after(m, n)
    assert after.headers["new_header"] == "v" and "source" not in after.headers
    assert after.headers["sum"] == n.headers["sum"] and after.headers["parts"] == n.headers["parts"]
    assert after.headers["mtime"] == "20250101120000.5" and "flag" not in after.headers


# ---------------------------------------------------------------- any notice at all
_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
_keys = st.one_of(
    _text.filter(bool),
    st.sampled_from(["sum", "parts", "mtime", "atime", "link", "oldname", "rename", "source"]),
    st.sampled_from(sorted(FIELDS) + ["_deleteOnPost", "_isRetry"]),
)
_values = st.one_of(
    _text,
    st.sampled_from(["d,zz", "R,", "L,x", "z,q", "1,14", "i,a,b,c,d", "20250101", "x" * 300]),
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    headers=st.dictionaries(_keys, _values, max_size=6),
    rel=_text,
    base=st.one_of(_text, st.sampled_from(["http://[::1/", "sftp://u@h:99999/", ""])),
)
def test_any_notice_goes_through_both_plugin_views_and_comes_back_unchanged(headers, rel, base):
    n = Notice("post", "20250101000000.000", base, rel, headers, "v02.post.x")
    v2 = V2Message(n, "/d", "f", exchange="xpublic")
    assert isinstance(v2.hdrstr, str) and v2.get_elapse() > 0
    assert v2.notice_after() == n and v2.moved() is None
    m = build(n, "/d", "f", exchange="xpublic", report=(201, "ok"))
    assert isinstance(m.dumps(), str) and isinstance(m.getIDStr(), str)
    assert notice_after(m, n) == n
