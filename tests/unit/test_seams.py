"""Each speed trick on a dependency's internals sits behind one seam that falls back to
the public API: on a version out of the verified range, when the private attribute is
missing, and when SARRA_PUBLIC_APIS is set.  Nothing outside a seam touches those
internals.  (Both paths against a real broker and a real HTTP server:
tests/integration/test_broker_seam.py and
test_transfer_http_seam.py; tools/test runs the broker and HTTP tests once
more with the public paths forced.)"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import pika
import pika.channel
import pika.connection
import pytest
import requests
import urllib3
from watchdog import events as watchdog_events

from sarra import cli
from sarra.broker import confirms, connection, pika_seam
from sarra.core import seams
from sarra.core.seams import FORCE_ENV, Choice
from sarra.transfer import requests_seam
from sarra.watch import watchdog_seam
from sarra.watch.watcher import Watcher
from tests.fixtures.waiting import wait_for

SARRA = Path(__file__).resolve().parents[2] / "sarra"
FORCED = {FORCE_ENV: "1"}

# -- the rule (sarra.core.seams) -----------------------------------------------------------


@pytest.mark.parametrize(
    "text, want",
    [("1.4.4", (1, 4, 4)), ("2.0rc1", (2, 0)), ("2.32.2.post1", (2, 32, 2)), ("7", (7,)),
     (" 1.3 ", (1, 3)), ("", None), ("dev", None), ("v1.2", None)],
)  # fmt: skip
def test_versions_are_read_by_their_leading_numbers(text, want):
    assert seams.parse_version(text) == want


@pytest.mark.parametrize("value", ["1", "yes", "true", "anything"])
def test_any_value_but_an_empty_or_false_one_forces_the_public_apis(value):
    assert seams.forced({FORCE_ENV: value})


@pytest.mark.parametrize("environ", [{}, {FORCE_ENV: ""}, {FORCE_ENV: "0"}, {FORCE_ENV: "no"}])
def test_an_unset_empty_or_false_variable_forces_nothing(environ):
    assert not seams.forced(environ)


@pytest.mark.parametrize(
    "version, has, environ, private, why",
    [
        ("1.4.4", True, {}, True, "verified range"),
        ("1.4.9", True, {}, True, "verified range"),
        ("1.5.0", True, {}, False, "not in 1.3 <= v < 1.5"),
        ("1.2.9", True, {}, False, "not in"),
        ("2.0", True, {}, False, "not in"),
        ("unknown", True, {}, False, "not in"),
        ("1.4.4", False, {}, False, "missing"),
        ("1.4.4", True, FORCED, False, FORCE_ENV),
    ],
)
def test_a_trick_runs_only_in_range_with_its_attribute_and_unforced(
    version, has, environ, private, why
):
    choice = seams.choose("trick", version, ((1, 3), (1, 5)), has, environ)
    assert choice.private is private and why in choice.why


# -- pika ----------------------------------------------------------------------------------


def test_pika_tricks_run_on_the_installed_pika_unless_forced():
    assert pika_seam.CHANNEL.private is not seams.forced(os.environ)
    assert pika.__version__ in pika_seam.describe()


@pytest.mark.parametrize("version", ["1.2.0", "1.5.0", "2.0.0", ""])
def test_pika_out_of_the_verified_range_takes_the_public_api(version):
    assert not pika_seam._channel_choice(version, pika.connection.Connection, {}).private


def test_pika_without_the_corking_hook_takes_the_public_api():
    assert pika_seam._channel_choice("1.4.4", pika.connection.Connection, {}).private
    bare = type("Connection", (), {})
    assert not pika_seam._channel_choice("1.4.4", bare, {}).private


def test_forced_pika_takes_the_public_api():
    assert not pika_seam._channel_choice("1.4.4", pika.connection.Connection, FORCED).private


def test_the_version_is_read_from_pikas_source_before_importing_it():
    assert pika_seam._source_version() == pika.__version__


def test_a_channel_without_an_asynchronous_one_under_it_takes_the_public_api():
    impl = pika.channel.Channel.__new__(pika.channel.Channel)
    yes, no = Choice(True, ""), Choice(False, "")
    assert pika_seam.async_channel(SimpleNamespace(_impl=impl), yes) is impl
    assert pika_seam.async_channel(SimpleNamespace(_impl=impl), no) is None
    assert pika_seam.async_channel(SimpleNamespace(), yes) is None
    assert pika_seam.async_channel(SimpleNamespace(_impl=object()), yes) is None


@pytest.mark.parametrize("private, cls", [(True, "BatchPublisher"), (False, "PublicPublisher")])
def test_the_broker_publishes_and_acks_on_the_path_the_seam_chose(monkeypatch, private, cls):
    """Broker._open asks the seam for the asynchronous channel under its consuming
    channel, and takes the public path when there is none."""
    monkeypatch.setattr(pika_seam, "CHANNEL", Choice(private, ""))
    impl = pika.channel.Channel.__new__(pika.channel.Channel)
    channel = SimpleNamespace(_impl=impl, basic_qos=lambda **kw: None,
                              add_on_cancel_callback=lambda cb: None)  # fmt: skip
    conn = SimpleNamespace(channel=lambda: channel)
    monkeypatch.setattr(connection.pika, "BlockingConnection", lambda params: conn)
    for kind in (confirms.BatchPublisher, confirms.PublicPublisher):
        monkeypatch.setattr(kind, "open", lambda self: None)
    b = connection.Broker("amqp://h/")
    b._open()
    assert type(b._publisher).__name__ == cls
    assert b._acker is (impl if private else channel)


def _import_in_child(env: dict[str, str]) -> str:
    code = (
        "import sys, sarra.broker.connection, pika\n"
        "print('asyncio' in sys.modules)\n"
        "import pika.adapters.asyncio_connection as real\n"
        "assert hasattr(real.AsyncioConnection, 'create_connection')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != FORCE_ENV} | env
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_pika_is_imported_without_asyncio_and_the_real_adapter_still_loads():
    assert _import_in_child({}) == "False"


def test_forced_pika_is_imported_whole():
    assert _import_in_child(FORCED) == "True"


# -- requests ------------------------------------------------------------------------------

ADAPTER = requests.adapters.HTTPAdapter


def test_requests_trick_runs_on_the_installed_requests_unless_forced():
    assert requests_seam.ADAPTER.private is not seams.forced(os.environ)
    assert requests.__version__ in requests_seam.describe()


@pytest.mark.parametrize(
    "req, u3", [("2.32.1", "2.2.0"), ("2.35.0", "2.2.0"), ("3.0", "2.2.0"), ("2.34.2", "1.26.18")]
)
def test_requests_or_urllib3_out_of_the_verified_range_takes_the_public_api(req, u3):
    assert requests_seam.decide("2.34.2", "2.8.0", ADAPTER, {}).private
    assert not requests_seam.decide(req, u3, ADAPTER, {}).private


def test_requests_without_the_adapter_methods_takes_the_public_api():
    old = type("HTTPAdapter", (), {"cert_verify": lambda *a: None})
    assert not requests_seam.decide("2.34.2", "2.8.0", old, {}).private


def test_forced_requests_takes_the_public_api():
    assert not requests_seam.decide("2.34.2", "2.8.0", ADAPTER, FORCED).private


def test_the_watching_adapter_registers_each_connection_its_pools_make():
    import weakref

    conns: weakref.WeakSet = weakref.WeakSet()
    adapter = requests_seam.WatchingAdapter(conns)
    probe = requests.PreparedRequest()
    probe.prepare(method="GET", url="http://127.0.0.1:9/")
    pool = adapter.get_connection_with_tls_context(probe, True)
    conn = pool.ConnectionCls("127.0.0.1", 9)  # not connected: nothing listens there
    assert conn in conns
    assert isinstance(pool, urllib3.HTTPConnectionPool)


# -- watchdog ------------------------------------------------------------------------------


def test_the_lost_events_signal_is_asked_for_when_watchdog_has_it():
    lost = watchdog_seam.lost_event_class()
    assert lost is watchdog_events.EventsLostEvent  # watchdog >= 7.1.1 is installed here
    assert lost in watchdog_seam.event_filter(polling=False)
    assert "rescans" in watchdog_seam.describe()


def test_without_the_lost_events_signal_a_watch_asks_for_the_rest_and_says_so():
    old = types.ModuleType("watchdog.events")
    for name in dir(watchdog_events):
        if name != "EventsLostEvent":
            setattr(old, name, getattr(watchdog_events, name))
    assert watchdog_seam.lost_event_class(old) is None
    wanted = watchdog_seam.event_filter(polling=True, events=old)
    assert watchdog_events.FileModifiedEvent in wanted and len(wanted) == 8
    assert "unnoticed" in watchdog_seam.describe(old)


def test_a_lost_events_signal_rescans_the_tree(tmp_path):
    """A file the watch never heard of (there before it started) is reported once
    watchdog says events were lost."""
    root = tmp_path / "w"
    root.mkdir()
    (root / "unseen").write_bytes(b"x")
    w = Watcher([str(root)])
    w.start()
    try:
        w._queue.put(watchdog_events.EventsLostEvent(str(root), is_directory=True))
        got = wait_for(lambda: w.get_events(0.2), 10, "the rescan's event")
    finally:
        w.stop()
    assert [(e.kind, e.path) for e in got] == [("file", str(root / "unseen"))]


# -- argparse: exact options through its public API ----------------------------------------

#: (program, argv, accepted): the same outcomes the old private override gave
EXACTNESS = [
    ("dd_subscribe", ["-b", "amqp://h/", "foreground", "x"], True),
    ("dd_subscribe", ["-bro", "amqp://h/", "foreground", "x"], False),
    ("dd_subscribe", ["--bro", "amqp://h/", "foreground", "x"], False),
    ("dd_subscribe", ["--broker=amqp://h/", "status"], True),
    ("dd_subscribe", ["-b=amqp://h/", "status"], True),
    ("dd_subscribe", ["-bamqp://h/", "status"], False),
    ("dd_subscribe", ["-e", "x", "status"], False),
    ("dd_subscribe", ["-ex", "x", "status"], True),
    ("dd_subscribe", ["-exx", "status"], False),
    ("dd_subscribe", ["status", "-c", "foo"], True),
    ("dd_subscribe", ["status", "--conf", "foo"], False),
    ("dd_subscribe", ["--hel"], False),
    ("dd_subscribe", ["--vers"], False),
    ("dd_subscribe", ["--instance", "3", "foreground", "x"], True),
    ("dd_subscribe", ["--inst", "3", "foreground", "x"], False),
    ("dd_post", ["-b", "amqp://h/", "-ex", "xs_me", "f.txt"], True),
    ("dd_post", ["-b", "amqp://h/", "-1", "f.txt"], True),
    ("dd_post", ["-b", "amqp://h/", "-1.5"], True),
    ("dd_post", ["-b", "amqp://h/", "-", "f"], True),
    ("dd_post", ["-b", "amqp://h/", "-a b"], True),
    ("dd_post", ["-post_broker", "amqp://h/", "f"], False),
    ("dd_post", ["-pb", "amqp://h/", "f"], True),
    ("dd_post", ["-b", "-x", "f"], False),
    ("dd_post", ["--accept", ".*x", "--reject=-y", "f"], True),
    ("dd_post", ["-sum", "d", "f"], True),
    ("dd_post", ["-su", "d", "f"], False),
]


@pytest.mark.parametrize("program, argv, accepted", EXACTNESS)
def test_options_match_exactly_or_not_at_all(program, argv, accepted):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            cli.parse(program, argv)
            code = 0
        except SystemExit as e:
            code = e.code
    assert (code == 0) is accepted, err.getvalue()
    assert code in (0, 2)


# -- nothing outside a seam ----------------------------------------------------------------

#: the dependency internals each seam owns: pattern -> the one module allowed to use it
PRIVATE = {
    r"\._impl\b|\"_impl\"": "broker/pika_seam.py",
    r"_adapter_emit_data": "broker/pika_seam.py",
    r"pika\.adapters\.asyncio_connection": "broker/pika_seam.py",  # stubbed in sys.modules
    r"get_connection_with_tls_context|cert_verify|\bpool\.pool\b": "transfer/requests_seam.py",
    r"_get_option_tuples": "",
}


@pytest.mark.parametrize("pattern, home", PRIVATE.items())
def test_no_dependency_internals_outside_their_seam(pattern, home):
    found = set()
    for path in SARRA.rglob("*.py"):
        code = "\n".join(
            line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")
        )
        code = re.sub(r'"""[\s\S]*?"""', "", code)  # docstrings may name them
        if re.search(pattern, code):
            found.add(path.relative_to(SARRA).as_posix())
    assert found <= {home}
