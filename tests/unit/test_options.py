"""The option table, the synonym table and every converter's good and bad inputs."""

from __future__ import annotations

import re

import pytest

from sarra.config import converters
from sarra.config.options import OPTIONS, SYNONYMS, canonical, options_for
from sarra.config.paths import PROGRAMS


@pytest.mark.parametrize(
    "text, expected",
    [("True", True), ("yes", True), ("ON", True), ("1", True), ("false", False),
     ("No", False), ("off", False), ("0", False), (" on ", True)],
)  # fmt: skip
def test_boolean_accepts_v2_words_in_any_case(text, expected):
    assert converters.boolean(text) is expected


@pytest.mark.parametrize("text", ["maybe", "", "2", "y"])
def test_boolean_rejects_other_words_quoting_them(text):
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        converters.boolean(text)


def test_integer_good_and_bad():
    assert converters.integer(" 25 ") == 25
    assert converters.integer("-3") == -3
    for bad in ("2.5", "ten", "", "0x10"):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            converters.integer(bad)


@pytest.mark.parametrize(
    "text, expected",
    [("10", 10), ("0", 0), ("64K", 65536), ("64k", 65536), ("10M", 10 * 2**20),
     ("1G", 2**30), ("1T", 2**40), ("1.5Mi", 3 * 2**19), ("2MB", 2 * 2**20),
     ("1KiB", 1024), ("512b", 512), ("4 K", 4096)],
)  # fmt: skip
def test_size_reads_binary_multiples(text, expected):
    assert converters.size(text) == expected


@pytest.mark.parametrize("text", ["10X", "", "-1", "K", "1.2.3M", "10 megs"])
def test_size_rejects_garbage_quoting_it(text):
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        converters.size(text)


@pytest.mark.parametrize(
    "text, expected",
    [("30", 30.0), ("1.5s", 1.5), ("5m", 300.0), ("1h", 3600.0), ("2d", 172800.0),
     ("1w", 604800.0), ("0", 0.0), (".5", 0.5), ("10S", 10.0)],
)  # fmt: skip
def test_duration_reads_seconds_minutes_hours_days(text, expected):
    assert converters.duration(text) == expected


@pytest.mark.parametrize("text", ["5 minutes", "", "-3", "m", "1h30m", "soon"])
def test_duration_rejects_garbage_quoting_it(text):
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        converters.duration(text)


def test_octal_reads_file_modes():
    assert converters.octal("644") == 0o644
    assert converters.octal("0755") == 0o755
    assert converters.octal("0o600") == 0o600
    for bad in ("9", "rw-r--r--", ""):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            converters.octal(bad)


@pytest.mark.parametrize(
    "text",
    ["http://localhost:8090/", "amqp://guest@localhost/", "sftp://u@h//abs", "file:///tmp/x"],
)
def test_url_accepts_scheme_and_host(text):
    assert converters.url(text) == text


@pytest.mark.parametrize("text", ["localhost", "http://", "http://h:99999/", "/tmp/x"])
def test_url_rejects_what_has_no_scheme_or_host(text):
    with pytest.raises(ValueError, match="not a URL"):
        converters.url(text)


def test_url_error_never_shows_the_password():
    with pytest.raises(ValueError) as info:
        converters.url("amqp://bob:s3cret@:99999/")
    assert "s3cret" not in str(info.value)
    assert "bob:***@" in str(info.value)


def test_amqp_url_refuses_other_schemes():
    assert converters.amqp_url("amqps://u@broker:5671/") == "amqps://u@broker:5671/"
    with pytest.raises(ValueError, match="not a broker URL"):
        converters.amqp_url("http://broker/")


def test_choice_is_case_insensitive_and_lists_the_choices():
    level = converters.choice("info", "debug")
    assert level("INFO") == "info"
    with pytest.raises(ValueError, match=r"'loud' is not one of info, debug"):
        level("loud")


def test_regex_compiles_and_bad_pattern_error_quotes_it():
    assert converters.regex(r".*\.txt").match("a.txt")
    with pytest.raises(ValueError, match=re.escape("'[a-'")):
        converters.regex("[a-")


def test_string_list_splits_on_commas_and_drops_blanks():
    assert converters.string_list("a, b,,c ") == ("a", "b", "c")
    assert converters.string_list("") == ()


def test_strip_is_a_count_or_a_regex():
    assert converters.strip_value("2") == 2
    assert converters.strip_value("^/data/").pattern == "^/data/"
    with pytest.raises(ValueError, match="bad regular expression"):
        converters.strip_value("(")


@pytest.mark.parametrize(
    "text, expected",
    [(".tmp", ".tmp"), (".", "."), ("tmp/", "tmp/"), ("NONE", None), ("none", None),
     ("10", 10.0), ("1.5", 1.5), ("5m", 300.0)],
)  # fmt: skip
def test_inflight_forms(text, expected):
    assert converters.inflight(text) == expected


@pytest.mark.parametrize("text", ["", "a/b/c"])
def test_inflight_rejects_nested_directories_and_empty(text):
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        converters.inflight(text)


@pytest.mark.parametrize(
    "text, expected",
    [("d", "d"), ("S", "s"), ("n", "n"), ("0", "0"), ("z,d", "z,d"), ("z, s", "z,s"),
     ("z", "z,d")],
)  # fmt: skip
def test_sum_flags(text, expected):
    assert converters.sum_flag(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [("md5", "d"), ("SHA512", "s"), ("none", "n"), ("random", "0"), ("cod,md5", "z,d"),
     ("cod,sha512", "z,s"), ("cod", "z,d")],
)  # fmt: skip
def test_sum_reads_the_names_v2_and_sr3_write(text, expected):
    assert converters.sum_flag(text) == expected


@pytest.mark.parametrize("text", ["sha1", "L", "z,n", "", "arbitrary"])
def test_sum_rejects_unknown_flags(text):
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        converters.sum_flag(text)


def test_suppress_duplicates_takes_on_off_or_a_duration():
    assert converters.suppress("on") == 300.0
    assert converters.suppress("off") == 0.0
    assert converters.suppress("10m") == 600.0
    with pytest.raises(ValueError, match="'often'"):
        converters.suppress("often")


def test_events_normalise_v2_spellings_and_refuse_others():
    assert converters.events("created,deleted, linked,modified") == (
        "create",
        "delete",
        "link",
        "modify",
    )
    assert converters.events("modify,modify") == ("modify",)
    with pytest.raises(ValueError, match="'create,explode'"):
        converters.events("create,explode")


def test_events_read_sr3_pipes_and_directory_events():
    assert converters.events("create|delete|link|modify") == ("create", "delete", "link", "modify")
    assert converters.events("create|mkdir|rmdir") == ("create", "mkdir", "rmdir")
    with pytest.raises(ValueError, match="'create|boom'"):
        converters.events("create|boom")


@pytest.mark.parametrize("text", ["None", "off", "NEVER", " none "])
def test_ttl_none_or_off_means_no_limit(text):
    assert converters.ttl(text) is None


def test_ttl_is_a_duration_otherwise():
    assert converters.ttl("1d") == 86400.0
    with pytest.raises(ValueError, match="'soon'"):
        converters.ttl("soon")


def test_only_off_refuses_on_with_the_reason():
    dry = converters.only_off("no simulation here")
    assert dry("off") is False and dry("False") is False
    with pytest.raises(ValueError, match="no simulation here"):
        dry("on")


def test_header_needs_name_equals_value():
    assert converters.header("flow=exp13") == ("flow", "exp13")
    assert converters.header("a= b=c") == ("a", "b=c")
    with pytest.raises(ValueError, match="'noequals'"):
        converters.header("noequals")


def test_declare_reads_kind_and_name():
    assert converters.declare("source alice") == ("source", "alice")
    assert converters.declare("Exchange xs_foo") == ("exchange", "xs_foo")
    with pytest.raises(ValueError, match="'wizard merlin'"):
        converters.declare("wizard merlin")
    with pytest.raises(ValueError, match="'source'"):
        converters.declare("source")


def test_declare_env_keeps_name_equals_value():
    assert converters.declare("env HTTP_PROXY=http://proxy:3128") == (
        "env",
        "HTTP_PROXY=http://proxy:3128",
    )
    assert converters.declare("env A=b c") == ("env", "A=b c")
    for bad in ("env", "env NOVALUE", "env 1X=y", "env =y"):
        with pytest.raises(ValueError, match="bad declare"):
            converters.declare(bad)


def test_every_option_has_a_one_line_help_and_a_canonical_name():
    for name, row in OPTIONS.items():
        assert name == row.name
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name
        assert row.help and "\n" not in row.help, name
        assert set(row.programs) <= set(PROGRAMS), name


def test_defaults_of_the_contract_options():
    expected = {
        "topic_prefix": "v02.post",
        "post_topic_prefix": "v02.post",
        "subtopic": (),
        "durable": True,
        "expire": 300.0,
        "prefetch": 25,
        "batch": 100,
        "instances": 1,
        "accept_unmatch": False,
        "directory": ".",
        "mirror": False,
        "strip": 0,
        "flatten": "/",
        "inflight": ".tmp",
        "suppress_duplicates": 0.0,
        "retry_ttl": 172800.0,
        "retry_delay": 10.0,
        "attempts": 3,
        "timeout": 30.0,
        "report_back": True,
        "events": ("create", "delete", "link", "modify"),
        "blocksize": 1,
        "sum": "d",
        "log_level": "info",
        "heartbeat": 60.0,
        "housekeeping": 300.0,
        "stop_timeout": 10.0,
        "throttle": 0,
        "exchange": None,
        "broker": None,
    }
    for name, value in expected.items():
        assert OPTIONS[name].default == value, name


def test_repeatable_options_default_to_empty_tuples():
    multi = {name for name, row in OPTIONS.items() if row.multi}
    assert {"subtopic", "on_file", "on_message", "plugin", "header", "declare", "path"} <= multi
    assert {"accept", "reject"} <= multi
    for name in multi:
        assert OPTIONS[name].default == (), name


def test_every_synonym_names_a_real_option():
    for synonym, target in SYNONYMS.items():
        assert target in OPTIONS, synonym
        assert synonym not in OPTIONS, f"{synonym} is both an option and a synonym"


@pytest.mark.parametrize(
    "written, expected",
    [("-b", "broker"), ("-pb", "post_broker"), ("-u", "post_base_url"), ("url", "post_base_url"),
     ("-pbu", "post_base_url"), ("-dr", "post_base_dir"), ("document_root", "post_base_dir"),
     ("-ex", "exchange"), ("-pe", "post_exchange"), ("-sum", "sum"), ("-bs", "blocksize"),
     ("-to", "to"), ("-tp", "post_topic_prefix"), ("-ptp", "post_topic_prefix"),
     ("-sub", "post_subtopic"), ("-header", "header"), ("-rn", "rename"), ("-p", "path"),
     ("path", "path"), ("--broker", "broker"), ("--post-base-dir", "post_base_dir"),
     ("Mirror", "mirror"), ("loglevel", "log_level"), ("--url", "post_base_url")],
)  # fmt: skip
def test_canonical_resolves_v2_spellings_and_flags(written, expected):
    assert canonical(written) == expected


def test_canonical_returns_none_for_unknown_names():
    assert canonical("bogus") is None
    assert canonical("-zz") is None


def test_options_for_lists_only_what_a_program_uses():
    watch = {row.name for row in options_for("watch")}
    subscribe = {row.name for row in options_for("subscribe")}
    assert {"force_polling", "sleep", "path", "post_broker"} <= watch
    assert "directory" not in watch
    assert {"broker", "directory", "mirror", "accept"} <= subscribe
    assert "force_polling" not in subscribe
