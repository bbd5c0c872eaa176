"""Logging setup: handlers, formats, redaction, rotation settings, human numbers."""

from __future__ import annotations

import logging
import logging.handlers
import sys

import pytest

from sarra.core.errors import ConfigError
from sarra.logs.setup import (
    DAEMON_FORMAT,
    RedactingFilter,
    parse_level,
    redact,
    setup_logging,
)
from sarra.logs.units import human_rate, human_size


@pytest.fixture
def clean_root():
    """Put the root logger back as it was: setup_logging changes process-wide state."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for h in root.handlers:
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)


def daemon(tmp_path, **kw):
    args = dict(
        level="info",
        log_file=tmp_path / "logs" / "dd_sara_cfg_01.log",
        backups=5,
        rotate_s=86400,
        program="dd_sara",
        instance=1,
        redirect_fds=False,
    )
    args.update(kw)
    return setup_logging(**args)


def test_foreground_logs_to_stderr_with_a_short_format(clean_root):
    handler = setup_logging(
        level="debug", log_file=None, backups=0, rotate_s=1, program="p", instance=0
    )
    assert isinstance(handler, logging.StreamHandler)
    assert handler.stream is sys.stderr
    assert "%(name)s" not in handler.formatter._fmt
    assert clean_root.level == logging.DEBUG


def test_daemon_logs_to_a_timed_rotating_file_with_retention(clean_root, tmp_path):
    handler = daemon(tmp_path)
    logging.getLogger("sarra.test").info("hello %s", "file")
    handler.flush()

    assert isinstance(handler, logging.handlers.TimedRotatingFileHandler)
    assert handler.backupCount == 5
    assert (handler.when, handler.interval) == ("D", 86400)
    assert handler.formatter._fmt == DAEMON_FORMAT
    text = (tmp_path / "logs" / "dd_sara_cfg_01.log").read_text()
    assert "[INFO] sarra.test: hello file" in text


@pytest.mark.parametrize(
    "seconds, when, interval",
    [(3600, "H", 3600), (7200, "H", 7200), (90, "S", 90), (600, "M", 600)],
)
def test_rotation_interval_uses_the_largest_whole_unit(
    clean_root, tmp_path, seconds, when, interval
):
    handler = daemon(tmp_path, rotate_s=seconds)
    assert (handler.when, handler.interval) == (when, interval)


def test_calling_setup_again_replaces_the_previous_handler(clean_root, tmp_path):
    first = daemon(tmp_path)
    second = daemon(tmp_path, level="warning")
    assert first not in clean_root.handlers
    assert second in clean_root.handlers
    assert clean_root.level == logging.WARNING


def test_unknown_level_is_a_config_error():
    with pytest.raises(ConfigError, match="'chatty'"):
        parse_level("chatty")


def test_rotation_below_one_second_is_a_config_error(clean_root, tmp_path):
    with pytest.raises(ConfigError, match="rotation"):
        daemon(tmp_path, rotate_s=0)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("amqp://bob:secret@broker/", "amqp://bob:***@broker/"),
        ("amqps://bob:p@ss@broker:5671/vh", "amqps://bob:***@broker:5671/vh"),
        ("sftp://me@host/x", "sftp://me@host/x"),
        ("http://host:8080/path", "http://host:8080/path"),
        ("a ftp://u:1@h and http://v:2@k", "a ftp://u:***@h and http://v:***@k"),
    ],
)
def test_redact_hides_only_url_passwords(text, expected):
    assert redact(text) == expected


def test_redacting_filter_cleans_arguments_and_tracebacks():
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "connecting to %s", ("amqp://u:pw@h/",), None
    )
    try:
        raise RuntimeError("cannot reach amqp://u:pw@h/")
    except RuntimeError:
        record.exc_info = sys.exc_info()

    assert RedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "pw@" not in text
    assert "connecting to amqp://u:***@h/" in text
    assert "cannot reach amqp://u:***@h/" in text


def test_the_installed_handler_redacts_records_from_child_loggers(clean_root, tmp_path):
    handler = daemon(tmp_path)
    logging.getLogger("sarra.broker.connection").warning("lost amqp://bob:hunter2@broker/")
    handler.flush()
    text = (tmp_path / "logs" / "dd_sara_cfg_01.log").read_text()
    assert "hunter2" not in text and "amqp://bob:***@broker/" in text


def test_human_size_and_rate_use_binary_units():
    assert human_size(1536) == "1.5 KiB"
    assert human_rate(3 * 2**20, 2) == "1.5 MiB/s"
    assert human_rate(100, 0) == "n/a"
