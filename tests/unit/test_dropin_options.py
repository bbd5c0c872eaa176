"""Config lines as v2 and sr3 users write them: aliases in the table rows, aliases read
the other way round (``notify_only``), with a unit (``kbytes_ps``), options with no effect
here (a warning line each), ``declare env`` and ``config``."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sarra.config.inert import INERT
from sarra.config.loader import Options, load
from sarra.config.options import ALIAS_FORMS, OPTIONS, SYNONYMS, canonical, options_for, spelling
from sarra.config.paths import Paths
from sarra.core.errors import ConfigError


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    p = Paths.under(tmp_path)
    p.config_dir.mkdir(parents=True)
    return p


def run(paths: Paths, text: str, program: str = "subscribe") -> Options:
    target = paths.config_file(program, "t")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return load(program, "t", paths=paths, environ={})


@pytest.mark.parametrize(
    "written, expected",
    [("topicPrefix", "topic_prefix"), ("acceptUnmatched", "accept_unmatch"),
     ("nodupe_ttl", "suppress_duplicates"), ("post_baseUrl", "post_base_url"),
     ("POST_BASEURL", "post_base_url"), ("sendTo", "destination"), ("logReject", "log_reject"),
     ("exchangeSuffix", "exchange_suffix"), ("post_exchangeSuffix", "post_exchange_suffix"),
     ("identity", "sum"), ("fileEvents", "events"), ("queueName", "queue_name"),
     ("declare_queue", "queue_declare"), ("queueBind", "queue_bind"), ("baseDir", "base_dir"),
     ("logRotateCount", "log_backups"), ("vip", "vip"), ("callback", "callback")],
)  # fmt: skip
def test_v2_and_sr3_spellings_name_one_row(written, expected):
    assert canonical(written) == expected


def test_aliases_with_another_reading_say_so():
    assert spelling("notify_only") == ("download", "!")
    assert spelling("No_Download") == ("download", "!")
    assert spelling("kbytes_ps") == ("throttle", "K")
    assert spelling("byteRateMax") == ("throttle", "")
    assert ALIAS_FORMS["notify_only"] == "!"


def test_every_alias_lives_in_its_row():
    for word, target in SYNONYMS.items():
        assert any(a.lstrip("!").split("(")[0] == word for a in OPTIONS[target].aliases), word


@pytest.mark.parametrize("line", ["notify_only", "no_download", "notify_only on", "notify_only 1"])
def test_notify_only_means_download_off(paths, line):
    o = run(paths, line + "\n")
    assert o.download is False and o.is_set("download")


def test_notify_only_off_means_download_on(paths):
    assert run(paths, "no_download off\n").download is True


def test_a_bad_boolean_for_a_turned_alias_names_what_was_written(paths):
    with pytest.raises(ConfigError, match=r"'notify_only' \(download\): not a boolean"):
        run(paths, "notify_only maybe\n")


def test_kbytes_ps_is_throttle_in_kibibytes(paths):
    assert run(paths, "kbytes_ps 10\n").throttle == 10 * 1024
    assert run(paths, "byteRateMax 10M\n").throttle == 10 * 2**20


def test_an_inert_option_loads_and_says_why_in_one_line(paths, caplog):
    caplog.set_level(logging.WARNING, "sarra.config.loader")
    o = run(paths, "vip 192.0.2.7\nuse_pika\n")
    assert o.vip == "192.0.2.7" and o.use_pika == ""
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "'vip' has no effect here: high availability (vip) comes with issue 18" in lines[0]
    assert "t.conf:1" in lines[0] and "t.conf:2" in lines[1]


def test_an_inert_option_in_default_conf_is_quiet(paths, caplog):
    caplog.set_level(logging.WARNING, "sarra.config.loader")
    paths.default_conf().write_text("admin amqps://admin@broker/\nfeeder amqp://feeder@broker/\n")
    run(paths, "broker amqp://u@localhost/\n")
    assert not caplog.records


def test_inert_options_never_reach_the_command_line():
    names = {row.name for row in options_for("subscribe")}
    assert "vip" not in names and "use_pika" not in names
    assert {row[0] for row in INERT} <= set(OPTIONS)


@pytest.mark.parametrize("line", ["dry_run on", "simulate", "save on"])
def test_an_option_whose_on_would_do_something_else_is_refused_on(paths, line):
    with pytest.raises(ConfigError, match="on is not supported"):
        run(paths, line + "\n")


def test_dry_run_off_loads(paths):
    assert run(paths, "dry_run off\nsave False\n").dry_run is False


def test_expire_none_means_the_queue_never_expires(paths):
    assert run(paths, "expire None\n").expire is None
    assert run(paths, "expiry 1d\n").expire == 86400.0


def test_declare_env_sets_a_variable_for_the_lines_after_it(paths):
    o = run(paths, "declare env FEED=/srv/feed\ndirectory ${FEED}/in\n")
    assert o.directory == "/srv/feed/in"
    assert o.declare == (("env", "FEED=/srv/feed"),)


def test_config_reads_another_file_as_include_does(paths):
    (paths.config_file("subscribe", "t").parent).mkdir(parents=True, exist_ok=True)
    (paths.config_file("subscribe", "t").parent / "common.inc").write_text("batch 7\n")
    assert run(paths, "config common.inc\n").batch == 7


def test_events_as_sr3_writes_them(paths):
    o = run(paths, "fileEvents create|delete|link|modify\n", program="watch")
    assert o.events == ("create", "delete", "link", "modify")


@pytest.mark.parametrize("line, value", [("sum md5", "d"), ("identity sha512", "s"),
                                         ("integrity cod,sha512", "z,s")])  # fmt: skip
def test_checksum_names_as_v2_and_sr3_write_them(paths, line, value):
    assert run(paths, line + "\n", program="post").sum == value


REPLACING = ["do_download download_usgs.py", "do_poll poll_noaa.py", "on_html_page html_page",
             "destfn_script destfn_am.py"]  # fmt: skip


@pytest.mark.parametrize("line", REPLACING)
def test_an_entry_point_that_replaces_sarras_work_is_refused_with_why(paths, line):
    why = r"t\.conf:1: option '\w+': a v2 entry point that replaces"
    with pytest.raises(ConfigError, match=why):
        run(paths, f"{line}\n", program="poll")


def test_clearing_such_an_entry_point_loads(paths):
    assert run(paths, "on_line None\non_html_page None\n", program="poll").config == "t"


def test_none_leaves_an_option_without_default_unset(paths):
    o = run(paths, "post_base_dir /srv\npost_baseDir None\nrename None\n", program="post")
    assert o.post_base_dir is None and o.rename is None


def test_sr3_time_variables_and_post_broker_user(paths):
    o = run(
        paths,
        "post_broker amqp://feeder@h/\nqueueName q_${POST_BROKER_USER}.x\n"
        "post_base_url http://h/${%Y}/\ndirectory /data/${%Y%m%d}/${%H}\n",
    )
    assert o.queue_name == "q_feeder.x"
    assert o.post_base_url is not None and o.post_base_url.startswith("http://h/20")
    assert o.directory == "/data/${%Y%m%d}/${%H}"  # per message, as ${YYYYMMDD}


def test_a_time_variable_that_could_make_a_slash_is_unknown(paths):
    with pytest.raises(ConfigError, match=r"unknown variable \$\{%D\}"):
        run(paths, "post_base_url http://h/${%D}/\n")


def test_sleep_minus_one_is_dd_posts_once(paths):
    assert run(paths, "sleep -1\n", program="post").sleep == -1.0


def test_mqtt_brokers_are_refused_with_why(paths):
    with pytest.raises(ConfigError, match="MQTT brokers are not supported"):
        run(paths, "post_broker mqtt://tsource@localhost\n")


def test_time_variables_in_directory_are_expanded_per_message_below_the_root():
    import time

    from sarra.fs.placement import split_directory

    root, below = split_directory("/data/${%Y%m%d}/${%H}", {})
    assert root == "/data"
    assert below == time.strftime("%Y%m%d/%H", time.gmtime())  # (flaky only at an hour's turn)
