"""The credentials file: permission refusal, parsing, lookup, resolve and redaction."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from sarra.config.credentials import Credentials, parse_line
from sarra.core.errors import CredentialsError
from sarra.core.redaction import redact, redact_url

CONTENT = """\
# comment
amqp://alice:a-pass@broker.example.com/
amqp://bob:b-pass@broker.example.com/
amqps://alice:tls-pass@broker.example.com/
amqp://carol:c-pass@broker.example.com:5673/
sftp://dave@files.example.com/ ssh_keyfile=/keys/dave,known_hosts=/keys/kh
ftp://erin:e%40pass@ftp.example.com/ passive, binary
https://frank:f-pass@web.example.com/
"""


@pytest.fixture
def creds() -> Credentials:
    return Credentials.parse(CONTENT, "credentials.conf")


def write(tmp_path: Path, mode: int, text: str = CONTENT) -> Path:
    path = tmp_path / "credentials.conf"
    path.write_text(text)
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_load_refuses_a_file_others_can_read_and_says_how_to_fix_it(tmp_path, mode):
    path = write(tmp_path, mode)
    with pytest.raises(CredentialsError) as info:
        Credentials.load(path)
    assert f"chmod 600 {path}" in str(info.value)
    assert "pass" not in str(info.value)


def test_load_reads_a_private_file(tmp_path):
    creds = Credentials.load(write(tmp_path, 0o600))
    assert len(creds) == 7


def test_missing_file_means_no_credentials(tmp_path):
    assert len(Credentials.load(tmp_path / "absent.conf")) == 0


def test_bad_line_reports_file_and_line_without_the_password(tmp_path):
    path = write(tmp_path, 0o600, "amqp://a:x@h/\ngopher://u:topsecret@h/\n")
    with pytest.raises(CredentialsError) as info:
        Credentials.load(path)
    assert info.value.where == f"{path}:2"
    assert "topsecret" not in str(info.value)
    assert "gopher://u:***@h/" in str(info.value)


def test_unknown_option_is_refused_without_the_password():
    with pytest.raises(CredentialsError, match="unknown option 'turbo'") as info:
        parse_line("ftp://u:hidden@h/ passive,turbo")
    assert "hidden" not in str(info.value)


def test_options_are_parsed(creds):
    sftp = creds.lookup("sftp://dave@files.example.com/some/path")
    assert sftp.keyfile == "/keys/dave"
    assert sftp.known_hosts == "/keys/kh"
    assert sftp.password is None
    ftp = creds.lookup("ftp://ftp.example.com/")
    assert ftp.passive and ftp.binary and not ftp.tls and not ftp.prot_p
    assert ftp.password == "e@pass"  # percent-encoded in the file


def test_lookup_matches_scheme_host_port_and_user(creds):
    assert creds.lookup("amqp://bob@broker.example.com/").password == "b-pass"
    assert creds.lookup("amqps://alice@broker.example.com/").password == "tls-pass"
    assert creds.lookup("amqp://carol@broker.example.com:5673/").password == "c-pass"
    assert creds.lookup("amqp://carol@broker.example.com/") is None  # other port
    assert creds.lookup("amqp://zed@broker.example.com/") is None  # other user
    assert creds.lookup("amqp://alice@elsewhere.example.com/") is None
    assert creds.lookup("http://frank@web.example.com/") is None  # other scheme


def test_lookup_treats_the_default_port_as_equal_to_no_port(creds):
    assert creds.lookup("amqp://alice@broker.example.com:5672/").password == "a-pass"
    assert creds.lookup("https://web.example.com:443/x").user == "frank"


def test_url_without_user_matches_the_first_entry_for_the_host(creds):
    assert creds.lookup("amqp://broker.example.com/").user == "alice"


def test_resolve_fills_in_the_password_and_keeps_the_rest(creds):
    assert creds.resolve("amqp://bob@broker.example.com/vhost") == (
        "amqp://bob:b-pass@broker.example.com/vhost"
    )
    assert creds.resolve("amqp://broker.example.com:5672/") == (
        "amqp://alice:a-pass@broker.example.com:5672/"
    )
    assert creds.resolve("ftp://ftp.example.com/pub") == "ftp://erin:e%40pass@ftp.example.com/pub"


def test_resolve_leaves_unknown_urls_and_given_passwords_alone(creds):
    assert creds.resolve("amqp://x@nowhere/") == "amqp://x@nowhere/"
    given = "amqp://bob:other@broker.example.com/"
    assert creds.resolve(given) == given
    assert creds.resolve("sftp://dave@files.example.com/d") == "sftp://dave@files.example.com/d"


def test_credential_repr_and_str_never_show_the_password(creds):
    entry = creds.lookup("amqp://bob@broker.example.com/")
    for text in (repr(entry), str(entry), repr(creds), repr(list(creds))):
        assert "b-pass" not in text
    assert "amqp://bob:***@broker.example.com/" in repr(entry)


def test_logging_a_credential_never_shows_the_password(creds, caplog):
    entry = creds.lookup("https://web.example.com/")
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("using %s / %r", entry, entry)
    assert "f-pass" not in caplog.text
    assert "frank:***@" in caplog.text


@pytest.mark.parametrize(
    "url, expected",
    [
        ("amqp://u:secret@h:5672/v", "amqp://u:***@h:5672/v"),
        ("amqp://u@h/", "amqp://u@h/"),
        ("http://h/p", "http://h/p"),
        ("sftp://u:p@ss:w@h/", "sftp://u:***@h/"),
        ("ftp://:pw@h/", "ftp://:***@h/"),
    ],
)
def test_redact_url_replaces_only_the_password(url, expected):
    assert redact_url(url) == expected


def test_redact_hides_every_password_in_free_text():
    text = "connect amqp://a:one@h1/ failed, then http://b:two@h2:80/x and http://h3:8080/p@q"
    assert redact(text) == (
        "connect amqp://a:***@h1/ failed, then http://b:***@h2:80/x and http://h3:8080/p@q"
    )
