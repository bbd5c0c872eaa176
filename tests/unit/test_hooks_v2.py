"""v2 plugins run unchanged: the files MetPX-Sarracenia v2 ships (msg_log, file_log,
msg_delay, hb_log) and plugins written as a v2 user writes them, with ``parent.msg``,
``parent.logger``, ``parent.<option>`` and True/False to accept or reject."""

from __future__ import annotations

import logging

import pytest

from sarra.core.delivery import FAILED, REJECTED
from sarra.core.errors import ConfigError, HookError, PathError
from sarra.flow.engine import BrokerSource, Flow
from sarra.flow.retry import RetryQueue
from sarra.flow.sinks import NoticePublisher, Reporter
from tests.fixtures.fakebroker import FakeBroker
from tests.fixtures.plugins import delivery, hooks, notice, v2_plugin, write_plugin


def on_message_plugin(directory, name, *body):
    """A v2 plugin file as the shortest ones are written: a function, then its entry."""
    code = "def f(parent):\n" + "".join(f"    {line}\n" for line in body)
    return write_plugin(directory, f"{name}.py", code + "self.on_message = f\n")


def flow(b, hs, tmp_path, work=None):
    def ok_work(d):
        d.ok(201, "Downloaded")
        d.post_notice = d.notice

    return Flow(
        source=BrokerSource(b),
        work=work or ok_work,
        retry=RetryQueue(tmp_path / "retry", delay=0.0),
        publisher=NoticePublisher(b, "xpublic"),
        reporter=Reporter(b, "xs_bob", "bob", "host.example"),
        hooks=hs,
    )


# ---------------------------------------------------------------- v2's own files
def test_v2_msg_log_file_logs_each_message_with_the_v2_fields(tmp_path, caplog):
    _, hs = hooks(tmp_path, f"on_message {v2_plugin('msg_log')}\n")
    d = delivery("a/b/f #1.txt", source="alice")
    with caplog.at_level(logging.INFO):
        assert hs.accepts(d) is True
    line = next(r.getMessage() for r in caplog.records if "msg_log received" in r.getMessage())
    assert f"{d.notice.pubtime} http://src.example/data/a/b/f%20%231.txt" in line
    assert "topic=v02.post.a.b" in line and "source=alice" in line
    assert d.outcome is None and d.notice.relpath == "a/b/f #1.txt"  # unchanged


def test_v2_file_log_file_logs_where_the_file_went(tmp_path, caplog):
    _, hs = hooks(tmp_path, f"directory {tmp_path}/in\non_file {v2_plugin('file_log')}\n")
    d = delivery("a/b/f.txt")
    d.local_path = tmp_path / "in" / "f.txt"
    with caplog.at_level(logging.INFO):
        hs.emit("on_file", d)
    assert f"file_log downloaded to: {tmp_path}/in/f.txt" in caplog.text


def test_v2_msg_delay_file_defers_young_messages_and_takes_old_ones(tmp_path):
    _, hs = hooks(tmp_path, f"msg_delay 30\nplugin {v2_plugin('msg_delay')}\n")
    young, old = delivery("young.txt", age=2), delivery("old.txt", age=60)
    assert hs.accepts(young) is False
    assert young.outcome == FAILED and young.report is None and "msg_delay" in young.reason
    assert hs.accepts(old) is True and old.outcome is None


def test_a_deferred_message_goes_to_the_retry_queue_unreported_and_comes_back(tmp_path):
    _, hs = hooks(tmp_path, f"msg_delay 30\nplugin {v2_plugin('msg_delay')}\n")
    b = FakeBroker()
    b.put(notice("young.txt", age=2))
    f = flow(b, hs, tmp_path)
    f.run_once()
    assert len(b.acked) == 1 and len(f.retry) == 1
    assert not [o for o in b.published if o.exchange == "xs_bob"]  # no report
    f.hooks = hooks(tmp_path, f"msg_delay 0\nplugin {v2_plugin('msg_delay')}\n")[1]
    f.run_once()
    assert len(f.retry) == 0 and f.stats.ok == 1


def test_v2_hb_log_file_runs_at_housekeeping(tmp_path, caplog):
    _, hs = hooks(tmp_path, f"on_heartbeat {v2_plugin('hb_log')}\n")
    with caplog.at_level(logging.INFO):
        hs.safe_emit("on_housekeeping")
    assert "heartbeat. Sarracenia version is" in caplog.text


# ---------------------------------------------------------------- written as a user would
RENAMER = """
import os
class Renamer(object):
    def __init__(self, parent):
        parent.declare_option('rename_suffix')
        if not hasattr(parent, 'rename_suffix'):
            parent.rename_suffix = ['.none']
        suffix = parent.rename_suffix[0]
        parent.logger.info("renamer: suffix %s, mirror %s" % (suffix, parent.mirror))

    def on_message(self, parent):
        msg = parent.msg
        if msg.new_file.startswith('skip'):
            return False
        msg.new_file = msg.new_file + parent.rename_suffix[0]
        msg.new_dir = os.path.join(msg.new_dir, 'renamed')
        msg.headers['seen_by'] = parent.program_name
        msg.headers['count'] = 3
        del msg.headers['source']
        return True

renamer = Renamer(self)
self.on_message = renamer.on_message
"""


def test_a_users_v2_plugin_renames_moves_sets_headers_and_rejects(tmp_path, caplog):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "renamer.py", RENAMER)
    conf = f"directory {tmp_path}/in\nmirror on\nrename_suffix .grib\non_message renamer\n"
    with caplog.at_level(logging.INFO):
        _, hs = hooks(tmp_path, conf, dirs=[plugins])
    assert "renamer: suffix .grib, mirror True" in caplog.text
    d = delivery("a/b/f.txt", source="alice")
    assert hs.accepts(d) is True
    assert d.local_path == tmp_path / "in" / "a" / "b" / "renamed" / "f.txt.grib"
    assert d.place.root == f"{tmp_path}/in" and d.place.dir == "a/b/renamed"
    assert d.notice.headers["seen_by"] == "dd_subscribe" and d.notice.headers["count"] == "3"
    assert "source" not in d.notice.headers
    skipped = delivery("a/skip.txt")
    assert hs.accepts(skipped) is False and skipped.outcome == REJECTED
    assert "on_message renamer" in skipped.reason


def test_a_users_plugin_dir_comes_before_the_built_in_of_the_same_name(tmp_path, caplog):
    plugins = tmp_path / "plugins"
    on_message_plugin(plugins, "msg_log", "parent.logger.info('mine')", "return True")
    _, hs = hooks(tmp_path, "on_message msg_log\n", dirs=[plugins])
    with caplog.at_level(logging.INFO):
        hs.accepts(delivery())
    assert "mine" in caplog.text and "msg_log received" not in caplog.text


def test_the_built_in_msg_log_and_file_log_by_bare_name(tmp_path, caplog):
    _, hs = hooks(tmp_path, f"directory {tmp_path}\non_message msg_log\non_file file_log\n")
    d = delivery("x/f.txt")
    with caplog.at_level(logging.INFO):
        assert hs.accepts(d)
        d.local_path = tmp_path / "f.txt"
        hs.emit("on_file", d)
    assert "msg_log received:" in caplog.text and "http://src.example/data/x/f.txt" in caplog.text
    assert f"file_log downloaded to: {tmp_path}/f.txt" in caplog.text


def test_a_raising_v2_plugin_fails_that_message_only_named_in_the_log(tmp_path, caplog):
    plugins = tmp_path / "plugins"
    code = "def f(parent):\n    return parent.msg.headers['nope']\nself.on_message = f\n"
    write_plugin(plugins, "fragile.py", code)
    _, hs = hooks(tmp_path, "on_message fragile\n", dirs=[plugins])
    with pytest.raises(HookError, match="plugin on_message fragile .*KeyError"):
        hs.accepts(delivery())
    b = FakeBroker()
    b.put(notice("one.txt"))
    b.put(notice("two.txt", nope="here"))
    f = flow(b, hs, tmp_path)
    with caplog.at_level(logging.INFO):
        f.run_once()
    assert f.stats.ok == 1 and len(f.retry) == 1 and len(b.acked) == 2
    assert "on_message fragile" in caplog.text and "KeyError" in caplog.text


def test_on_post_false_posts_nothing_and_header_changes_are_posted(tmp_path):
    plugins = tmp_path / "plugins"
    code = (
        "def f(parent):\n"
        "    if 'secret' in parent.msg.relpath: return False\n"
        "    parent.msg.headers['via'] = 'here'\n"
        "    return True\n"
        "self.on_post = f\n"
    )
    write_plugin(plugins, "filter_posts.py", code)
    _, hs = hooks(tmp_path, "on_post filter_posts\n", dirs=[plugins])
    b = FakeBroker()
    b.put(notice("a/secret.txt"))
    b.put(notice("a/public.txt"))
    f = flow(b, hs, tmp_path)
    f.run_once()
    posts = [o for o in b.published if o.exchange == "xpublic"]
    assert len(posts) == 1 and posts[0].headers["via"] == "here"
    assert b"public.txt" in posts[0].body and len(b.acked) == 2


def test_set_notice_points_the_download_at_another_url(tmp_path):
    plugins = tmp_path / "plugins"
    code = (
        "def f(parent):\n"
        "    m = parent.msg\n"
        "    m.set_notice(m.baseurl.replace('http:', 'https:'), m.relpath)\n"
        "    return True\n"
        "self.on_message = f\n"
    )
    write_plugin(plugins, "tls.py", code)
    _, hs = hooks(tmp_path, "on_message tls\n", dirs=[plugins])
    d = delivery("a/f 1#.txt")
    assert hs.accepts(d)
    assert d.notice.baseurl == "https://src.example/data/" and d.notice.relpath == "a/f 1#.txt"


# ---------------------------------------------------------------- hostile notices
@pytest.mark.parametrize("rel", ["a/../../etc/passwd", "a/b\x00.txt", "a/" + "n" * 300])
def test_a_plugin_never_sees_a_path_the_placement_rules_refuse(tmp_path, rel):
    plugins = tmp_path / "plugins"
    on_message_plugin(plugins, "seen", "raise SystemError('ran')")
    _, hs = hooks(tmp_path, f"directory {tmp_path}\nmirror on\non_message seen\n", dirs=[plugins])
    d = delivery()
    d.notice = d.notice.replace(relpath=rel)
    with pytest.raises(PathError):
        hs.accepts(d)


@pytest.mark.parametrize("new_file", ["../../evil", "a/b", "..", "", "x\x00y", "n" * 256, 7])
def test_a_name_a_plugin_builds_from_the_notice_is_checked(tmp_path, new_file):
    plugins = tmp_path / "plugins"
    on_message_plugin(plugins, "namer", f"parent.msg.new_file = {new_file!r}", "return True")
    _, hs = hooks(tmp_path, f"directory {tmp_path}\non_message namer\n", dirs=[plugins])
    with pytest.raises(PathError, match="on_message namer"):
        hs.accepts(delivery())


def test_a_plugin_moving_a_file_out_of_the_tree_makes_its_directory_the_root(tmp_path):
    plugins = tmp_path / "plugins"
    on_message_plugin(plugins, "away", "parent.msg.new_dir = '/elsewhere/x'", "return True")
    _, hs = hooks(tmp_path, f"directory {tmp_path}/in\non_message away\n", dirs=[plugins])
    d = delivery("a/f.txt")
    assert hs.accepts(d)
    assert (d.place.root, d.place.dir, d.place.name) == ("/elsewhere/x", "", "f.txt")


# ---------------------------------------------------------------- config errors
@pytest.mark.parametrize(
    "code, why",
    [
        ("def f(parent:\n", "syntax error"),
        ("self.on_message = undefined_name\n", "NameError"),
        ("x = 1\nself.on_file = lambda parent: True\n", "sets neither self.on_message"),
        (
            "class A:\n    def __init__(self, p): pass\n    def do_download(self, p): pass\n"
            "self.plugin = 'A'\n",
            "do_download is not supported",
        ),
    ],
)
def test_a_v2_plugin_that_cannot_be_loaded_is_a_config_error_naming_the_line(tmp_path, code, why):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "broken.py", code)
    with pytest.raises(ConfigError, match=why) as info:
        hooks(tmp_path, "on_message broken\n", dirs=[plugins])
    assert info.value.where == f"{tmp_path}/subscribe.conf:2"


def test_an_unknown_plugin_name_is_a_config_error_naming_the_line(tmp_path):
    with pytest.raises(ConfigError, match="no plugin named 'msg_nowhere'") as info:
        hooks(tmp_path, "accept .*\non_message msg_nowhere\n")
    assert info.value.where.endswith("subscribe.conf:3")


def test_undeclared_options_only_warn_when_a_v2_plugin_file_may_read_them(tmp_path, caplog):
    plugins = tmp_path / "plugins"
    code = "def f(parent):\n    return parent.threshold[0] == '3'\nself.on_message = f\n"
    write_plugin(plugins, "reads.py", code)
    with caplog.at_level(logging.WARNING):
        _, hs = hooks(tmp_path, "threshold 3\non_message reads\n", dirs=[plugins])
    assert "option 'threshold' is not declared by any plugin" in caplog.text
    assert hs.accepts(delivery()) is True
    with pytest.raises(ConfigError, match="unknown option 'threshold'"):
        hooks(tmp_path, "threshold 3\non_message msg_log\n")


def test_option_none_clears_earlier_plugins(tmp_path):
    _, hs = hooks(tmp_path, "on_message msg_nowhere\non_message None\non_message msg_log\n")
    assert [h.label for h in hs.hooks] == ["on_message msg_log"]


def test_a_v2_plugin_sees_options_as_v2_named_them(tmp_path, caplog):
    plugins = tmp_path / "plugins"
    code = (
        "class P:\n"
        "    def __init__(self, parent):\n"
        "        parent.logger.info('dir=%s batch=%s hasx=%s' % (\n"
        "            parent.currentDir, parent.batch, hasattr(parent, 'msg_x')))\n"
        "    def on_start(self, parent): parent.logger.info('started')\n"
        "    def on_stop(self, parent): parent.logger.info('stopped')\n"
        "self.plugin = 'P'\n"
    )
    write_plugin(plugins, "opts.py", code)
    with caplog.at_level(logging.INFO, logger="sarra.plugins"):
        _, hs = hooks(tmp_path, "directory /data\nbatch 7\nplugin opts\n", dirs=[plugins])
        hs.safe_emit("on_start")
        hs.safe_emit("on_stop")
    lines = [r.getMessage() for r in caplog.records if r.name == "sarra.plugins"]
    assert lines == ["dir=/data batch=7 hasx=False", "started", "stopped"]
    assert {h.label for h in hs.hooks} == {"on_start opts", "on_stop opts"}
