"""Reading config files: layering, include, variables, scoped masks and error messages."""

from __future__ import annotations

import copy
import datetime as dt
import logging
import pickle
import re
import socket
from pathlib import Path

import pytest

from sarra.config.loader import MESSAGE_VARIABLES, Options, expand, find_config, load, select
from sarra.config.paths import Paths
from sarra.core.errors import ConfigError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "config"
NOW = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
ENV = {"HOME": "/home/tester", "DATA": "/srv/data"}


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    """An empty config directory under tmp_path."""
    p = Paths.under(tmp_path)
    p.config_dir.mkdir(parents=True)
    return p


def write(paths: Paths, program: str, name: str, text: str) -> Path:
    target = paths.config_file(program, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def run(paths: Paths, text: str, program: str = "subscribe", **kw) -> Options:
    write(paths, program, "t", text)
    kw.setdefault("environ", ENV)
    kw.setdefault("now", NOW)
    return load(program, "t", paths=paths, **kw)


def fixture_paths(tmp_path: Path) -> Paths:
    return Paths(FIXTURES, tmp_path / "state", tmp_path / "log")


# -- layering


def test_each_layer_overrides_the_one_below(paths):
    paths.default_conf().write_text("timeout 40\nprefetch 40\nbatch 40\n")
    opts = run(
        paths,
        "prefetch 50\nbatch 50\n",
        defaults={"timeout": 20.0, "prefetch": 20, "batch": 20, "heartbeat": 20.0},
        overrides=[("batch", "60")],
    )
    assert opts.heartbeat == 20.0  # program default
    assert opts.timeout == 40.0  # default.conf
    assert opts.prefetch == 50  # config file
    assert opts.batch == 60  # command line
    assert opts.instances == 1  # built-in


def test_is_set_is_true_only_for_what_files_or_command_line_set(paths):
    paths.default_conf().write_text("timeout 40\n")
    opts = run(
        paths, "prefetch 50\n", defaults={"exchange": "xpublic"}, overrides=[("-b", "amqp://h/")]
    )
    assert opts.exchange == "xpublic"
    assert not opts.is_set("exchange")
    assert opts.is_set("timeout") and opts.is_set("prefetch") and opts.is_set("broker")
    assert not opts.is_set("batch")
    assert opts.where("broker") == "command line"
    assert opts.where("timeout") == f"{paths.default_conf()}:1"


def test_fixture_directory_layers_default_conf_under_a_v2_config(tmp_path):
    opts = load("dd_subscribe", "v2_lab", paths=fixture_paths(tmp_path))
    assert opts.timeout == 45.0  # from the fixture default.conf
    assert opts.broker == "amqp://guest:guest@localhost/"  # config beats default.conf
    assert opts.subtopic == ("from.default.#", "#")  # repeatable options accumulate
    assert opts.exchange == "xs_guest"
    assert opts.mirror is True
    assert opts.program == "subscribe"
    assert opts.config == "v2_lab"
    assert opts.config_path == FIXTURES / "subscribe" / "v2_lab.conf"
    assert [m.directory for m in opts.masks] == ["/tmp/lab/dl"]


def test_v2_pump_and_post_configs_load_unchanged(tmp_path):
    sara = load("dd_sara", "v2_pump", paths=fixture_paths(tmp_path))
    assert sara.declare == (("source", "guest"),)
    assert sara.source_from_exchange is True
    assert sara.post_base_url == "http://localhost:8090/pump/"
    post = load("dd_post", "v2_lab", paths=fixture_paths(tmp_path))
    assert post.post_base_url == "http://localhost:8090/"  # written as v2 "url"
    assert post.post_base_dir == "/tmp/lab/data"  # written as v2 "document_root"
    assert post.sum == "s"
    assert post.blocksize == 10 * 2**20


def test_config_given_as_an_existing_path_is_used_as_is(paths, tmp_path):
    elsewhere = tmp_path / "elsewhere.conf"
    elsewhere.write_text("prefetch 7\n")
    opts = load("subscribe", str(elsewhere), paths=paths)
    assert opts.prefetch == 7
    assert opts.config == "elsewhere"
    assert opts.config_path == elsewhere


def test_config_name_with_conf_suffix_finds_the_standard_file(paths):
    target = write(paths, "subscribe", "named", "prefetch 8\n")
    assert find_config("subscribe", "named.conf", paths) == target


def test_missing_config_is_an_error_naming_where_it_looked(paths):
    with pytest.raises(ConfigError, match=r"config 'nothere' not found .*subscribe/nothere.conf"):
        load("subscribe", "nothere", paths=paths)


def test_no_config_means_defaults_default_conf_and_command_line(paths):
    paths.default_conf().write_text("timeout 12\n")
    opts = load("dd_post", None, overrides=[("-pbu", "http://h/")], paths=paths)
    assert (opts.timeout, opts.post_base_url, opts.config, opts.config_path) == (
        12.0,
        "http://h/",
        None,
        None,
    )


def test_unknown_program_is_refused(paths):
    with pytest.raises(ConfigError, match="unknown program 'dd_nope'"):
        load("dd_nope", None, paths=paths)


# -- syntax


def test_unknown_option_error_is_one_line_with_file_and_line(tmp_path):
    path = FIXTURES / "subscribe" / "bogus.conf"
    with pytest.raises(ConfigError) as info:
        load("dd_subscribe", "bogus", paths=fixture_paths(tmp_path))
    assert str(info.value) == f"{path}:12: unknown option 'bogus'"
    assert info.value.where == f"{path}:12"


def test_bad_value_error_names_the_option_and_quotes_the_value(paths):
    with pytest.raises(ConfigError) as info:
        run(paths, "# comment\nmirror maybe\n")
    message = str(info.value)
    assert message.startswith(f"{paths.config_file('subscribe', 't')}:2: option 'mirror'")
    assert "'maybe'" in message


def test_bad_value_from_the_command_line_says_so(paths):
    with pytest.raises(ConfigError, match=r"^command line: option 'expire': .*'soon'"):
        run(paths, "", overrides=[("expire", "soon")])


def test_option_without_value_is_an_error_unless_boolean(paths):
    assert run(paths, "mirror\nreset\n").mirror is True
    with pytest.raises(ConfigError, match=r":1: option 'broker' needs a value"):
        run(paths, "broker\n")


def test_comments_blank_lines_and_hash_inside_values(paths):
    opts = run(paths, "\n# subtopic ignored\n   # indented comment\nsubtopic #\nsubtopic a.#\n")
    assert opts.subtopic == ("#", "a.#")


def test_tab_separates_name_and_value(paths):
    assert run(paths, "prefetch\t9\n").prefetch == 9


def test_v2_synonyms_work_in_files_and_command_line(paths):
    opts = run(paths, "document_root /srv\nexpiry 1h\n", overrides=[("-rn", "/x/"), ("--sum", "n")])
    assert (opts.post_base_dir, opts.expire, opts.rename, opts.sum) == ("/srv", 3600.0, "/x/", "n")


def test_none_clears_a_repeatable_option(paths):
    paths.default_conf().write_text("on_message log_it\nheader a=1\n")
    opts = run(paths, "on_message None\non_message mine\n")
    assert opts.on_message == ("mine",)
    assert opts.header == (("a", "1"),)


def test_debug_forces_log_level_debug(paths):
    assert run(paths, "log_level warning\ndebug\n").log_level == "debug"


def test_option_not_used_by_the_program_is_a_warning_naming_the_line(paths, caplog):
    with caplog.at_level(logging.WARNING, logger="sarra.config.loader"):
        opts = run(paths, "force_polling on\n")
    assert opts.force_polling is True
    assert "t.conf:1: option 'force_polling' is not used by dd_subscribe" in caplog.text


def test_default_conf_may_hold_options_of_other_programs_silently(paths, caplog):
    paths.default_conf().write_text("post_on_start on\n")
    with caplog.at_level(logging.WARNING, logger="sarra.config.loader"):
        assert run(paths, "").post_on_start is True
    assert caplog.text == ""


# -- include


def test_include_is_relative_to_the_including_file(tmp_path):
    opts = load(
        "subscribe", str(FIXTURES / "includes" / "main.conf"), paths=fixture_paths(tmp_path)
    )
    assert opts.directory == "/tmp/included"
    assert opts.mirror is True
    (mask,) = opts.masks
    assert (mask.directory, mask.mirror) == ("/tmp/included", True)
    assert mask.where == f"{FIXTURES / 'includes' / 'main.conf'}:3"


def test_missing_include_names_the_including_file_and_line(tmp_path):
    main = FIXTURES / "includes" / "missing.conf"
    with pytest.raises(ConfigError) as info:
        load("subscribe", str(main), paths=fixture_paths(tmp_path))
    assert info.value.where == f"{main}:3"
    assert "does-not-exist.conf" in str(info.value)


def test_include_loop_is_detected(tmp_path):
    a = FIXTURES / "includes" / "loop_a.conf"
    with pytest.raises(ConfigError, match="include loop") as info:
        load("subscribe", str(a), paths=fixture_paths(tmp_path))
    assert info.value.where == f"{FIXTURES / 'includes' / 'loop_b.conf'}:2"


def test_include_expands_variables_and_home(paths, tmp_path):
    (tmp_path / "shared.conf").write_text("prefetch 3\n")
    opts = run(paths, "include ${SHARED}/shared.conf\n", environ={"SHARED": str(tmp_path)})
    assert opts.prefetch == 3


# -- variables


def test_builtin_and_environment_variables_are_expanded(paths):
    opts = run(
        paths,
        "broker amqp://alice@localhost/\n"
        "queue_name q_${BROKER_USER}.${PROGRAM}.${CONFIG}\n"
        "cluster ${HOSTNAME}\n"
        "post_base_dir ${DATA}/${YYYYMMDD}/${HH}\n",
    )
    assert opts.queue_name == "q_alice.dd_subscribe.t"
    assert opts.cluster == socket.gethostname()
    assert opts.post_base_dir == "/srv/data/20240102/03"


def test_directory_keeps_per_message_variables_for_run_time(paths):
    opts = run(paths, "directory ${DATA}/${YYYYMMDD}/${SOURCE}/${HH}\naccept .*\n")
    assert opts.directory == "/srv/data/${YYYYMMDD}/${SOURCE}/${HH}"
    assert opts.masks[0].directory == opts.directory
    values = {"YYYYMMDD": "20240301", "SOURCE": "alice", "HH": "17"}
    assert expand(opts.directory, values) == "/srv/data/20240301/alice/17"


def test_per_message_variables_cover_the_v2_directory_patterns():
    assert {"SOURCE", "YYYYMMDD", "YYYY", "MM", "DD", "HH", "BD", "PBD"} <= MESSAGE_VARIABLES


def test_unknown_variable_is_an_error_with_file_and_line(paths):
    with pytest.raises(ConfigError, match=r"t.conf:2: unknown variable \$\{NOPE\}"):
        run(paths, "prefetch 1\npost_base_dir /x/${NOPE}\n")


def test_broker_user_before_any_broker_is_an_error(paths):
    with pytest.raises(ConfigError, match=r":1: \$\{BROKER_USER\} used before"):
        run(paths, "queue_name q_${BROKER_USER}\n")


def test_unterminated_variable_is_an_error(paths):
    with pytest.raises(ConfigError, match="unterminated variable"):
        run(paths, "post_base_dir /x/${DATA\n")


def test_expand_raises_on_unknown_variable():
    assert expand("a/${X}/b", {"X": "1"}) == "a/1/b"
    assert expand("plain $X", {}) == "plain $X"
    with pytest.raises(ConfigError, match=r"unknown variable \$\{Y\} in 'a/\$\{Y\}'"):
        expand("a/${Y}", {"X": "1"})


# -- scoped accept/reject


def test_masks_capture_directory_mirror_strip_flatten_in_force_at_their_line(paths):
    opts = run(
        paths,
        "directory /a\n"
        "accept .*\\.txt\n"
        "directory /b\n"
        "mirror\n"
        "strip 2\n"
        "flatten -\n"
        "reject .*\\.tmp\n"
        "accept .*\n",
    )
    first, second, third = opts.masks
    assert (first.accept, first.directory, first.mirror, first.strip, first.flatten) == (
        True,
        "/a",
        False,
        0,
        "/",
    )
    assert (second.accept, second.directory, second.mirror, second.strip) == (False, "/b", True, 2)
    assert third.flatten == "-"
    assert first.where.endswith("t.conf:2") and third.where.endswith("t.conf:8")
    assert opts.directory == "/b"
    assert len(opts.accept) == 2 and len(opts.reject) == 1


def test_command_line_directory_applies_to_masks_without_their_own(paths):
    opts = run(paths, "accept .*\\.grib\nmirror\n", overrides=[("directory", "/cli")])
    (mask,) = opts.masks
    assert mask.directory == "/cli"
    assert mask.mirror is False  # mirror came after the accept line


def test_command_line_directory_leaves_masks_placed_by_the_file_alone(paths):
    opts = run(paths, "directory /file\naccept .*\n", overrides=[("directory", "/cli")])
    assert opts.masks[0].directory == "/file"
    assert opts.directory == "/cli"


def test_select_returns_the_first_matching_mask(paths):
    opts = run(paths, "reject .*\\.tmp\naccept .*/obs/.*\n")
    assert select(opts.masks, "a/obs/x.tmp").accept is False
    assert select(opts.masks, "a/obs/x.txt").accept is True
    assert select(opts.masks, "a/model/x.txt") is None


def test_mask_matches_at_the_start_like_v2(paths):
    (mask,) = run(paths, "accept obs\n").masks
    assert mask.matches("obs/x")
    assert not mask.matches("data/obs/x")


# -- the Options object


def test_options_are_read_only(paths):
    opts = run(paths, "prefetch 5\n")
    with pytest.raises(AttributeError, match="read-only"):
        opts.prefetch = 6
    with pytest.raises(AttributeError):
        del opts.prefetch
    with pytest.raises(AttributeError, match="no option 'bogus'"):
        opts.bogus  # noqa: B018
    assert opts.get("prefetch") == 5
    assert opts.get("bogus", "x") == "x"


def test_replace_returns_a_new_object_and_keeps_is_set(paths):
    opts = run(paths, "prefetch 5\n")
    changed = opts.replace(exchange="xpublic", prefetch=9)
    assert (changed.exchange, changed.prefetch, opts.exchange, opts.prefetch) == (
        "xpublic",
        9,
        None,
        5,
    )
    assert not changed.is_set("exchange")
    assert changed.is_set("prefetch")
    assert changed.masks == opts.masks
    with pytest.raises(ConfigError, match="unknown option 'bogus'"):
        opts.replace(bogus=1)


def test_options_survive_copy_and_pickle(paths):
    opts = run(paths, "prefetch 5\naccept .*\\.txt\n")
    for clone in (copy.deepcopy(opts), pickle.loads(pickle.dumps(opts))):
        assert clone.prefetch == 5 and clone.is_set("prefetch")
        assert clone.masks[0].regex.pattern == r".*\.txt"
        assert clone.config_path == opts.config_path


def test_repr_never_shows_a_password(paths):
    opts = run(paths, "broker amqp://bob:s3cret@localhost/\npost_broker amqps://bob:pw2@h/\n")
    text = repr(opts)
    assert "s3cret" not in text and "pw2" not in text
    assert "amqp://bob:***@localhost/" in text


def test_bad_url_error_never_shows_the_password(paths):
    with pytest.raises(ConfigError) as info:
        run(paths, "broker http://bob:s3cret@localhost/\n")
    assert "s3cret" not in str(info.value)
    assert re.search(r"option 'broker': not a broker URL", str(info.value))
