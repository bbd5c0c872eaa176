"""The option table: one row per option, plus the converters and the synonym table.

Everything that knows about options reads :data:`OPTIONS`: the config parser
(``config.py``), ``--help`` and validation.  Each row names its converter, a small pure
function from the text written in a config file to a Python value; converters raise
``ValueError`` quoting the bad value (``config.py`` wraps that in ``ConfigError`` with the
file, the line and the option name).  v2 spellings and short command-line flags are all
in :data:`SYNONYMS`; an option has exactly one canonical name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Callable, Mapping, Pattern, Tuple, Union
from urllib.parse import urlsplit

from sarra.config.paths import PROGRAMS
from sarra.core.redaction import redact

# ---------------------------------------------------------------------------- converters

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def boolean(value: str) -> bool:
    """``True/False/yes/no/on/off/1/0``, any case."""
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r} (use yes/no, true/false, on/off, 1/0)")


def integer(value: str) -> int:
    """A decimal integer."""
    try:
        return int(value.strip(), 10)
    except ValueError:
        raise ValueError(f"not an integer: {value!r}") from None


def bounded(low: int, high: int) -> Callable[[str], int]:
    """A decimal integer from ``low`` to ``high``: a count that starts processes, threads
    or buffers must not be able to exhaust the machine by a typo (``instances 999999``)."""

    def convert(value: str) -> int:
        n = integer(value)
        if not low <= n <= high:
            raise ValueError(f"{value.strip()!r} is out of range ({low} to {high})")
        return n

    convert.__name__ = f"integer {low}..{high}"
    return convert


#: upper bound of ``instances`` and ``threads``: processes (threads) of one config
MAX_PROCESSES = 100


def string(value: str) -> str:
    """Any text, kept as written (surrounding blanks removed)."""
    return value.strip()


_SIZE = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)\s*(?:([kmgt])(?:i?b?)?|b)?$", re.IGNORECASE)
_SIZE_POWER = {"k": 1, "m": 2, "g": 3, "t": 4}


def size(value: str) -> int:
    """Bytes: ``10``, ``64K``, ``10M``, ``1G``, ``1.5Mi``, ``2MB``; multiples are binary (1024)."""
    match = _SIZE.match(value.strip())
    if not match:
        raise ValueError(f"not a size: {value!r} (examples: 4096, 64K, 10M, 1G)")
    number, unit = match.groups()
    power = _SIZE_POWER[unit.lower()] if unit else 0
    return int(float(number) * 1024**power)


_DURATION = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*([smhdw]?)$", re.IGNORECASE)
_DURATION_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration(value: str) -> float:
    """Seconds: ``30``, ``1.5s``, ``5m``, ``1h``, ``2d``, ``1w``."""
    match = _DURATION.match(value.strip())
    if not match:
        raise ValueError(f"not a duration: {value!r} (examples: 30, 1.5s, 5m, 1h, 2d)")
    number, unit = match.groups()
    return float(number) * _DURATION_UNIT[unit.lower()]


def octal(value: str) -> int:
    """An octal number such as a file mode: ``644``, ``0644`` or ``0o644``."""
    text = value.strip().lower()
    text = text[2:] if text.startswith("0o") else text
    try:
        return int(text, 8)
    except ValueError:
        raise ValueError(f"not an octal number: {value!r}") from None


def url(value: str) -> str:
    """A URL with a scheme and a host (``file:`` URLs need no host)."""
    text = value.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        raise ValueError(f"not a URL: {redact(text)!r}") from None
    if not parts.scheme or (not parts.hostname and parts.scheme != "file"):
        raise ValueError(f"not a URL: {redact(text)!r} (expected scheme://host/...)")
    return text


def amqp_url(value: str) -> str:
    """A broker URL: ``amqp://user@host[:port]/[vhost]`` or ``amqps://...``."""
    text = url(value)
    if urlsplit(text).scheme.lower() not in ("amqp", "amqps"):
        raise ValueError(f"not a broker URL: {redact(text)!r} (expected amqp:// or amqps://)")
    return text


def choice(*choices: str) -> Callable[[str], str]:
    """Return a converter accepting one of ``choices`` (any case)."""

    def convert(value: str) -> str:
        word = value.strip().lower()
        if word not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return word

    convert.__name__ = "choice"
    return convert


def regex(value: str) -> Pattern[str]:
    """A Python regular expression, compiled."""
    try:
        return re.compile(value.strip())
    except re.error as e:
        raise ValueError(f"bad regular expression {value.strip()!r}: {e}") from None


def string_list(value: str) -> Tuple[str, ...]:
    """Comma-separated words: ``a,b, c`` -> ``("a", "b", "c")``."""
    return tuple(word.strip() for word in value.split(",") if word.strip())


def strip_value(value: str) -> Union[int, Pattern[str]]:
    """Number of leading path components to drop, or a regex to remove from the path."""
    text = value.strip()
    return int(text) if text.isdigit() else regex(text)


def inflight(value: str) -> Union[str, float, None]:
    """How files are hidden while written: a suffix (``.tmp``), a prefix (``.``), a
    directory (``tmp/``), ``NONE`` (-> None), or a number of seconds a watched file must
    stay unchanged (-> float)."""
    text = value.strip()
    if text.upper() == "NONE":
        return None
    if _DURATION.match(text) and text[0].isdigit():
        return duration(text)
    if not text or "/" in text.rstrip("/"):
        raise ValueError(f"bad inflight {value!r} (use .tmp, ., tmp/, NONE or seconds)")
    return text


_SUMS = ("d", "s", "n", "0", "z,d", "z,s")


def sum_flag(value: str) -> str:
    """The v02 checksum flag: ``d``, ``s``, ``n``, ``0``, ``z,d`` or ``z,s`` (``z`` = ``z,d``)."""
    text = value.strip().lower().replace(" ", "")
    text = "z,d" if text == "z" else text
    if text not in _SUMS:
        raise ValueError(f"bad sum {value!r} (use one of {', '.join(_SUMS)})")
    return text


def suppress(value: str) -> float:
    """Duplicate-suppression lifetime: a duration, ``on`` (= 300 s) or ``off`` (= 0)."""
    word = value.strip().lower()
    if word in _TRUE - {"1"}:
        return 300.0
    if word in _FALSE - {"0"}:
        return 0.0
    return duration(value)


_EVENTS = {"create": "create", "created": "create", "delete": "delete", "deleted": "delete"}
_EVENTS.update({"link": "link", "linked": "link", "modify": "modify", "modified": "modify"})


def events(value: str) -> Tuple[str, ...]:
    """File events to post: any of ``create,delete,link,modify`` (v2 ``created``... too)."""
    words = string_list(value)
    bad = [w for w in words if w.lower() not in _EVENTS]
    if bad or not words:
        raise ValueError(f"bad events {value!r} (use create,delete,link,modify)")
    return tuple(dict.fromkeys(_EVENTS[w.lower()] for w in words))


def header(value: str) -> Tuple[str, str]:
    """A header to add to posts: ``name=value`` -> ``(name, value)``."""
    name, sep, text = value.strip().partition("=")
    if not sep or not name.strip():
        raise ValueError(f"bad header {value!r} (expected name=value)")
    return name.strip(), text.strip()


_DECLARE_KINDS = ("source", "subscriber", "feeder", "admin", "exchange", "queue")
#: letters, digits and "-": never "_" nor ".", which end a user's name in its exchanges
#: (``xs_<user>_<suffix>``) and queues (``q_<user>.<name>``)
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")


def user_name(value: str) -> str:
    """A switch user's name: 1-64 letters, digits and ``-``, not starting with ``-``.

    ``_`` and ``.`` are refused because they separate a user's name from the suffix of
    its exchanges and queues: with users ``u`` and ``u_x``, ``u``'s rights on
    ``xs_u_<suffix>`` would cover ``xs_u_x`` (``u`` posting as ``u_x``); with ``u.x``,
    ``u``'s queues ``q_u.<name>`` would cover ``q_u.x...``.  Without them, no two valid
    names can reach each other's exchanges or queues.
    """
    if not _USER_NAME.fullmatch(value):
        raise ValueError(
            f"bad user name {value[:80]!r}: 1-64 letters, digits and '-' only (no '_' or "
            "'.': they separate a user's name from its exchanges' and queues' suffixes)"
        )
    return value


def declare(value: str) -> Tuple[str, str]:
    """``source alice``, ``subscriber bob``, ``exchange xs_foo`` -> ``(kind, name)``.

    Source and subscriber names must be valid user names (:func:`user_name`).
    """
    words = value.split()
    if len(words) != 2 or words[0].lower() not in _DECLARE_KINDS:
        raise ValueError(
            f"bad declare {value!r} (expected one of {', '.join(_DECLARE_KINDS)} + name)"
        )
    kind = words[0].lower()
    if kind in ("source", "subscriber"):
        user_name(words[1])
    return kind, words[1]


def source_hosts(value: str) -> Tuple[str, Tuple[str, ...]]:
    """``<source|*> <host pattern>...`` -> ``(source, patterns)`` (``core.fetchpolicy``)."""
    from sarra.core.fetchpolicy import host_pattern

    words = value.split()
    if len(words) < 2:
        raise ValueError(f"bad source_hosts {value!r} (expected: <source|*> <host pattern>...)")
    return words[0], tuple(host_pattern(w) for w in words[1:])


def route(value: str) -> Tuple[str, str]:
    """``<cluster|*> <broker url>`` -> ``(cluster, url)``: next hop of reports for a cluster."""
    words = value.split()
    if len(words) != 2:
        raise ValueError(f"bad report_route {value!r} (expected: <cluster|*> <amqp url>)")
    return words[0], amqp_url(words[1])


_RELATIVE_TIME = re.compile(r"^\d+(\.\d+)?[smhdw]$")


def point_in_time(value: str) -> str:
    """``2h`` (ago), ``YYYYMMDDHHMMSS`` or ISO 8601; kept as text, resolved when used."""
    text = value.strip()
    if _RELATIVE_TIME.match(text) or (len(text) >= 14 and text[:14].isdigit()):
        return text
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"bad time {value!r} (use 2h, 20261128220000 or 2026-11-28T22:00)"
        ) from None
    return text


log_level = choice("debug", "info", "warning", "error", "critical")

# ---------------------------------------------------------------------------- the table

ALL = PROGRAMS
CONSUMERS = ("subscribe", "sara", "log", "shovel", "sender")
POSTERS = ("post", "watch", "sara", "shovel", "sender", "poll")
FETCHERS = ("subscribe", "sara")
SOURCES = ("post", "watch")
DAEMONS = ("subscribe", "sara", "log", "watch", "shovel", "sender", "poll")


@dataclass(frozen=True)
class Option:
    """One option.  ``multi``: every occurrence appends (value ``None`` clears the list);
    ``scoped``: its position in the file matters (accept/reject capture the directory,
    mirror, strip and flatten in force at their line)."""

    name: str
    converter: Callable[[str], Any]
    default: Any
    help: str
    programs: Tuple[str, ...] = ALL
    scoped: bool = False
    multi: bool = False

    @property
    def is_flag(self) -> bool:
        """True for booleans, which may be written without a value (``mirror`` = ``mirror on``)."""
        return self.converter is boolean


_O = Option


def _M(name: str, conv: Callable[[str], Any], help: str, programs: tuple[str, ...] = ALL) -> Option:
    """A repeatable option (default: empty tuple)."""
    return Option(name, conv, (), help, programs, multi=True)


CONS, POST, FETCH, SRC, DAEM = CONSUMERS, POSTERS, FETCHERS, SOURCES, DAEMONS
PUMP = ("sara", "shovel")
SEND = ("sender",)
POLL = ("poll",)
#: what the sender shares with the fetchers: placement and the way files are written
PLACE = FETCH + SEND
LOG = ("log",)
_ROWS = (
    # -- consuming
    _O("broker", amqp_url, None, "broker to consume from: amqp[s]://user@host[:port]/", CONS),
    _O("exchange", string, None, "exchange to bind to (default: set by the program)", CONS),
    _O("topic_prefix", string, "v02.post", "first words of the binding key", CONS),
    _M("subtopic", string, "binding key after topic_prefix (repeatable)", CONS),
    _O("queue_name", string, None, "queue name (default: q_<user>.<program>.<config>...)", CONS),
    _O("durable", boolean, True, "declare the queue durable", CONS),
    _O("expire", duration, 300.0, "delete the queue after this long unused (x-expires)", CONS),
    _O("message_ttl", duration, None, "drop queued messages older than this", CONS),
    _O(
        "prefetch",
        bounded(1, 65535),
        25,
        "messages the broker sends ahead of acknowledgement",
        CONS,
    ),
    _O("batch", bounded(1, 100_000), 100, "messages gathered per processing round"),
    _O(
        "threads",
        bounded(1, MAX_PROCESSES),
        1,
        "files of a batch downloaded at once (own connections)",
        ("subscribe",),
    ),
    _O(
        "instances",
        bounded(1, MAX_PROCESSES),
        1,
        "number of processes to run for this config (1 to 100)",
        DAEM,
    ),
    _O("reset", boolean, False, "delete the queue and saved state on start", CONS),
    _O("source_from_exchange", boolean, False, "set source from the xs_ exchange name", PUMP),
    _M("declare", declare, "declare source|subscriber|exchange <name> (repeatable)"),
    # -- selecting and placing
    _O("accept", regex, (), "take what matches (file order)", CONS + SRC + POLL, True, True),
    _O("reject", regex, (), "skip what matches (file order)", CONS + SRC + POLL, True, True),
    _O("accept_unmatch", boolean, False, "take what no accept/reject matches", CONS + SRC + POLL),
    _O("directory", string, ".", "where files go (dd_poll: what it lists)", PLACE + POLL, True),
    _O("mirror", boolean, False, "keep the posted relative path under directory", PLACE, True),
    _O("strip", strip_value, 0, "drop N leading path components, or a regex", PLACE, True),
    _O("flatten", string, "/", "replaces / in the path when not mirroring", PLACE, True),
    _O("inflight", inflight, ".tmp", "name while writing: .tmp | . | tmp/ | NONE | seconds"),
    _O("inplace", boolean, True, "assemble file parts into the file itself", FETCH),
    _O("preserve_time", boolean, True, "set mtime/atime from the post", PLACE + POLL),
    _O("preserve_mode", boolean, True, "set the file mode from the post", PLACE),
    _O("chmod", octal, 0o644, "file mode when the post carries none", PLACE),
    _O("overwrite", boolean, True, "replace existing files (else skip identical ones)", FETCH),
    _O(
        "link_absolute_targets",
        boolean,
        False,
        "make links (L posts) with absolute targets: only for a trusted upstream",
        FETCH,
    ),
    _O(
        "file_sources",
        string_list,
        (),
        "local directories file: URLs of notices may be read from (none: refused)",
        PLACE,
    ),
    _O("suppress_duplicates", suppress, 0.0, "ignore a checksum seen within this long"),
    _O(
        "suppress_basis",
        choice("path", "name", "data"),
        "path",
        "what makes a duplicate (same source): sum+path, sum+file name, or the sum alone",
        FETCH,
    ),
    _O("rename", string, None, "post a rename header (ending in /: keep the name)", SRC),
    # -- retries and transfers
    _O("retry_ttl", duration, 172800.0, "give up retrying a failed message after this", DAEM),
    _O("retry_delay", duration, 10.0, "first wait before retrying a failed message", DAEM),
    _O("attempts", integer, 3, "transfer attempts before queueing for retry", FETCH),
    _O("timeout", duration, 30.0, "network timeout of a transfer"),
    _O("throttle", size, 0, "bytes per second per transfer (0: unlimited)", PLACE),
    _O("timeout_min_rate", size, 1024, "slowest bytes/s a download may average (0: any)", PLACE),
    _O("download_max_size", size, 1 << 30, "most bytes fetched when a post gives no size", PLACE),
    _O("redirect_hosts", string_list, (), "hosts an HTTP redirect may lead to (else none)", PLACE),
    _M("source_hosts", source_hosts, "<source|*> <host|*.domain|addr|net>...: may fetch", PLACE),
    # -- sending and polling
    _O("destination", url, None, "server to send to, or (dd_poll) to list", SEND + POLL),
    _O("base_dir", string, None, "local tree the relpaths of notices are read from", SEND),
    _O("file_time_limit", duration, 5184000.0, "older listed files are not posted (60d)", POLL),
    # -- hooks
    _M("on_file", string, "script or plugin run when a file is complete (repeatable)"),
    _M("on_part", string, "script or plugin run when a part is written (repeatable)"),
    _M("on_message", string, "script or plugin run on each accepted message (repeatable)"),
    _M("on_post", string, "script or plugin run before each post (repeatable)"),
    _M("plugin", string, "Hook class: dotted path or file path (repeatable)"),
    # -- reports
    _O("report_back", boolean, True, "send a report message for each file processed", CONS),
    _O("report_exchange", string, None, "exchange for reports (default xs_<broker user>)", CONS),
    _O(
        "report_router",
        boolean,
        False,
        "route reports: xs_<user> -> xreport -> xr_<source> or toward from_cluster",
        PUMP,
    ),
    _M("report_route", route, "<cluster|*> <broker url>: next hop of reports (repeatable)", PUMP),
    # -- posting
    _O("post_broker", amqp_url, None, "broker to post to", POST),
    _O("post_exchange", string, None, "exchange to post to (default: set by the program)", POST),
    _O("post_exchange_suffix", string, None, "post to xs_<broker user>_<suffix>", POST),
    _O("post_base_url", url, None, "URL that downloaders fetch relative paths from", POST),
    _O("post_base_dir", string, None, "local directory that post_base_url maps to", POST),
    _O("post_topic_prefix", string, "v02.post", "first words of posted topics", POST),
    _O("post_subtopic", string, None, "post with this topic, not the file's directories", POST),
    _O("post_relpath_slash", boolean, False, "post relpaths with a leading / (v2 style)", POST),
    _O("events", events, ("create", "delete", "link", "modify"), "file events to post", SRC + SEND),
    _O("blocksize", size, 1, "split files in blocks of this size (0: auto, 1: never)", SRC),
    _O("sum", sum_flag, "d", "checksum to post: d, s, n, 0, z,d or z,s", SRC + POLL),
    _O("to", string_list, None, "clusters to deliver to (to_clusters header)", POST),
    _O("cluster", string, None, "name of this cluster (default: the broker host)"),
    _O("cluster_aliases", string_list, (), "other names of this cluster"),
    _O("gateway_for", string_list, (), "clusters this pump forwards to", PUMP),
    _M("header", header, "add name=value to every post (repeatable)", POST),
    _O("source", string, None, "source header to post (default: none)", SRC + POLL),
    _M("path", string, "file or directory to post or watch (repeatable)", SRC),
    _O("recursive", boolean, True, "descend into directories given as path", SRC + POLL),
    _O("follow_symlinks", boolean, False, "watch and post what symbolic links point to", SRC),
    _O("force_polling", boolean, False, "poll the tree instead of using inotify", ("watch",)),
    _O("sleep", duration, 5.0, "seconds between scans (dd_poll: listings)", ("watch", "poll")),
    _O("post_on_start", boolean, False, "post every existing file at start", ("watch",)),
    _O("pipe", boolean, False, "read the paths to post from standard input", ("post",)),
    _O("remove", boolean, False, "announce the named paths as removed (R posts)", ("post",)),
    _O("moved_from", string, None, "announce the one named path as moved from here", ("post",)),
    # -- running
    _O("log_level", log_level, "info", "debug, info, warning, error or critical"),
    _O("debug", boolean, False, "same as log_level debug"),
    _O("log_backups", integer, 5, "rotated log files to keep", DAEM),
    _O("log_rotate", duration, 86400.0, "rotate the log this often", DAEM),
    _O("heartbeat", duration, 60.0, "AMQP heartbeat interval (0: off)"),
    _O("housekeeping", duration, 300.0, "interval of periodic housekeeping", DAEM),
    _O("stop_timeout", duration, 10.0, "seconds stop waits before killing an instance", DAEM),
    # -- broker TLS
    _O("broker_ca", string, None, "CA file to verify amqps brokers (default: system CAs)"),
    _O("broker_tls_verify", boolean, True, "verify the amqps broker's certificate and name"),
    # -- dd_log
    _O("follow", boolean, False, "keep showing reports as they come (else exit when idle)", LOG),
    _O("idle_exit", duration, 3.0, "without follow: exit after this long with no report", LOG),
    _O("summary", boolean, False, "show one summary per file instead of one line per report", LOG),
    _O("keep_journal", boolean, False, "append every report received to the local journal", LOG),
    _O("journal", boolean, False, "read reports from the local journal, not the broker", LOG),
    _O("path_match", regex, None, "show reports whose file (relpath) matches this regex", LOG),
    _O("consumer_match", regex, None, "show reports whose consumer user@host matches", LOG),
    _O("code", string_list, (), "show these codes: 201, 2xx, 4 ... (comma separated)", LOG),
    _O("since", point_in_time, None, "show reports received after: 2h, 20261128220000, ISO", LOG),
    _O("until", point_in_time, None, "show reports received before (same forms as since)", LOG),
)


#: Every option by canonical name (read-only).
OPTIONS: Mapping[str, Option] = MappingProxyType({row.name: row for row in _ROWS})

#: The one synonym table: v2 spellings and short command-line flags -> canonical name.
SYNONYMS: Mapping[str, str] = MappingProxyType(
    {
        "-b": "broker",
        "-pb": "post_broker",
        "-u": "post_base_url",
        "-pbu": "post_base_url",
        "url": "post_base_url",
        "-dr": "post_base_dir",
        "-pbd": "post_base_dir",
        "document_root": "post_base_dir",
        "-ex": "exchange",
        "-pe": "post_exchange",
        "-sum": "sum",
        "-bs": "blocksize",
        "-to": "to",
        "to_clusters": "to",
        "-tp": "post_topic_prefix",
        "-ptp": "post_topic_prefix",
        "-sub": "post_subtopic",
        "-header": "header",
        "-rn": "rename",
        "-p": "path",
        "-rm": "remove",
        "-mv": "moved_from",
        "-e": "events",
        "-rec": "recursive",
        "-rb": "report_back",
        "-qn": "queue_name",
        "queue": "queue_name",
        "expiry": "expire",
        "caching": "suppress_duplicates",
        "cache": "suppress_duplicates",
        "no_duplicates": "suppress_duplicates",
        "loglevel": "log_level",
        "logdays": "log_backups",
        "logrotate": "log_backups",
        "logrotate_interval": "log_rotate",
        "sendto": "destination",
        "pollurl": "destination",
        "basedir": "base_dir",
        "get": "accept",
        "fileagemax": "file_time_limit",
    }
)


def canonical(name: str) -> str | None:
    """Return the canonical option name for ``name`` (synonyms, ``-x``/``--x-y`` forms), or None."""
    word = name.strip().lower()
    if word in SYNONYMS:
        return SYNONYMS[word]
    bare = word.lstrip("-").replace("-", "_")
    if bare in OPTIONS:
        return bare
    return SYNONYMS.get(bare)


def options_for(program: str) -> Tuple[Option, ...]:
    """The options that ``program`` (a short name) uses, in table order."""
    return tuple(row for row in _ROWS if program in row.programs)
