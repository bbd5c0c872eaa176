"""The option table: one row per option, and the synonym table.

Everything that knows about options reads :data:`OPTIONS`: the config loader
(``loader.py``), ``--help``, the man page, validation, and the typed view of
``typed.py`` (generated from this table by ``tools/gen-typed-options``).  Each row names
its converter (:mod:`sarra.config.converters`) and its default: a loaded ``Options``
always has every option, with this default unless a role's ``DEFAULTS``, a config file or
the command line set it.  v2 spellings and short command-line flags are all in
:data:`SYNONYMS`; an option has exactly one canonical name.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping, Tuple

from sarra.config.converters import (
    amqp_url,
    boolean,
    bounded,
    choice,
    declare,
    duration,
    events,
    formats,
    header,
    inflight,
    inline_encoding,
    integer,
    log_level,
    octal,
    point_in_time,
    regex,
    route,
    size,
    source_hosts,
    source_rate,
    string,
    string_list,
    strip_value,
    sum_flag,
    suppress,
    url,
)
from sarra.config.paths import PROGRAMS

#: upper bound of ``instances`` and ``threads``: processes (threads) of one config
MAX_PROCESSES = 100

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
    _O(
        "topic_prefix",
        string,
        "v02.post",
        "first words of the binding key; several bind one queue: v02.post,v03",
        CONS,
    ),
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
    # -- bandwidth limits shared by processes (sarra.transfer.bandwidth)
    _O("bandwidth", size, 0, "bytes/s of this config in all: instances, threads, hosts", PLACE),
    _O("bandwidth_per_host", size, 0, "bytes/s to or from one server, all flows of a host", PLACE),
    _M("source_bandwidth", source_rate, "<source|*> <bytes/s>: quota of a source", ("sara",)),
    # -- sending and polling
    _O("destination", url, None, "server to send to, or (dd_poll) to list", SEND + POLL),
    _O("base_dir", string, None, "local tree the relpaths of notices are read from", SEND),
    _O("file_time_limit", duration, 5184000.0, "older listed files are not posted (60d)", POLL),
    # -- hooks (sarra.hooks: plugins of both generations; see HOOK_OPTIONS)
    _M("on_file", string, "script or plugin run when a file is complete (repeatable)"),
    _M("on_part", string, "script or plugin run when a part is written (repeatable)"),
    _M("on_message", string, "plugin run on each accepted message (repeatable)"),
    _M("on_post", string, "plugin run before each post (repeatable)"),
    _M("on_start", string, "plugin run when an instance starts (repeatable)"),
    _M("on_stop", string, "plugin run when an instance stops (repeatable)"),
    _M("on_heartbeat", string, "plugin run at each housekeeping (repeatable)"),
    _M("plugin", string, "v2 plugin or Hook class: name, file or dotted path (repeatable)"),
    _M("callback", string, "sr3 flow callback: name or dotted path (repeatable)"),
    _M("callback_prepend", string, "sr3 flow callback run before the others (repeatable)"),
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
    _O(
        "post_format",
        formats,
        (),
        "v02, v03 or v02,v03: formats posted (default: post_topic_prefix's, else v02)",
        POST,
    ),
    _O("inline", boolean, False, "put small files' bytes in v03 posts (content)", SRC),
    _O("inline_max", size, 4096, "largest file put inline (bytes)", SRC),
    _O("inline_encoding", inline_encoding, "guess", "inline text as utf-8: guess|text|binary", SRC),
    _O("inline_only", boolean, False, "post only files small enough to put inline", SRC),
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
        # sr3 spellings (canonical() compares lower case)
        "topicprefix": "topic_prefix",
        "post_topicprefix": "post_topic_prefix",
        "inlinebytemax": "inline_max",
        "inlineencoding": "inline_encoding",
        "inlineonly": "inline_only",
        "on_housekeeping": "on_heartbeat",
        "flowcb": "callback",
        "flow_callback": "callback",
        "flowcallback": "callback",
        "fcb": "callback",
        "cb": "callback",
        "flowcb_prepend": "callback_prepend",
        "flow_callback_prepend": "callback_prepend",
        "flowcallbackprepend": "callback_prepend",
        "fcbp": "callback_prepend",
        "cbp": "callback_prepend",
        "sendto": "destination",
        "pollurl": "destination",
        "basedir": "base_dir",
        "get": "accept",
        "fileagemax": "file_time_limit",
        "byteratemax": "throttle",
    }
)

#: The options naming plugins: the loader keeps their lines in file order with where
#: each was written (``Options.hook_lines``), and keeps the lines of options no row knows
#: (``Options.extras``) for the plugins that declare them (``sarra.hooks``).
HOOK_OPTIONS = frozenset(
    {
        "on_file",
        "on_part",
        "on_message",
        "on_post",
        "on_start",
        "on_stop",
        "on_heartbeat",
        "plugin",
        "callback",
        "callback_prepend",
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
