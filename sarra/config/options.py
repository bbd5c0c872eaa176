"""The option table: one row per option, with every spelling of it.

Everything that knows about options reads :data:`OPTIONS`: the config loader
(``loader.py``), ``--help``, the man page, validation, and the typed view of
``typed.py`` (generated from this table by ``tools/gen-typed-options``).  Each row names
its converter (:mod:`sarra.config.converters`) and its default: a loaded ``Options``
always has every option, with this default unless a role's ``DEFAULTS``, a config file or
the command line set it.

A row also lists the option's other spellings (``aka``): v2 snake_case, sr3 camelCase,
old synonyms and short command-line flags (``-pb``).  An alias may read its value two
other ways: ``!notify_only`` means the opposite boolean (``notify_only on`` is
``download off``), and ``kbytes_ps(K)`` appends a unit (``kbytes_ps 100`` is
``throttle 100K``).  An option of v2 or sr3 that means nothing here, or whose feature
comes later, is a row with ``ignored`` set: it loads, and a warning line at start-up
says why it has no effect (:func:`_I`).  An option has exactly one canonical name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

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
    interval,
    log_level,
    octal,
    only_off,
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
    ttl,
    url,
)
from sarra.config.inert import INERT
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
    mirror, strip and flatten in force at their line); ``aliases``: its other spellings
    (see the module docstring); ``ignored``: why it has no effect here ("" when it has)."""

    name: str
    converter: Callable[[str], Any]
    default: Any
    help: str
    programs: Tuple[str, ...] = ALL
    scoped: bool = False
    multi: bool = False
    aliases: Tuple[str, ...] = ()
    ignored: str = ""

    @property
    def is_flag(self) -> bool:
        """True for booleans, which may be written without a value (``mirror`` = ``mirror on``)."""
        return getattr(self.converter, "__annotations__", {}).get("return") == "bool"


def _O(
    name: str,
    conv: Callable[[str], Any],
    default: Any,
    help: str,
    programs: Tuple[str, ...] = ALL,
    scoped: bool = False,
    multi: bool = False,
    *,
    aka: str = "",
) -> Option:
    """A row; ``aka``: its other spellings, blank-separated."""
    return Option(name, conv, default, help, programs, scoped, multi, tuple(aka.split()))


def _M(
    name: str, conv: Callable[[str], Any], help: str, programs: tuple = ALL, aka: str = ""
) -> Option:
    """A repeatable option (default: empty tuple)."""
    return _O(name, conv, (), help, programs, multi=True, aka=aka)


def _I(name: str, why: str, aka: str = "") -> Option:
    """An option of v2 or sr3 that has no effect here: accepted as text (alone too), with
    one warning line at start-up saying ``why``."""
    aliases = tuple(aka.split())
    return Option(name, string, None, f"no effect here: {why}", ALL, aliases=aliases, ignored=why)


CONS, POST, FETCH, SRC, DAEM = CONSUMERS, POSTERS, FETCHERS, SOURCES, DAEMONS
PUMP = ("sara", "shovel")
SEND = ("sender",)
POLL = ("poll",)
SUB = ("subscribe",)
#: a subscriber with post_broker announces its local copy of each file
REPOST = POSTERS + SUB
#: what the sender shares with the fetchers: placement and the way files are written
PLACE = FETCH + SEND
LOG = ("log",)
# The table reads best as a table: one row a line, aliases on the next where there are.
# fmt: off
_ROWS = (
    # -- consuming
    _O("broker", amqp_url, None, "broker to consume from: amqp[s]://user@host[:port]/", CONS,
       aka="-b"),
    _O("exchange", string, None, "exchange to bind to (default: set by the program)", CONS,
       aka="-ex"),
    _O("exchange_suffix", string, None, "consume xs_<broker user>_<suffix> (sets exchange)",
       PUMP + SUB + SEND, aka="exchangeSuffix"),
    _O("topic_prefix", string, "v02.post",
       "first words of the binding key; several bind one queue: v02.post,v03", CONS,
       aka="topicPrefix"),
    _M("subtopic", string, "binding key after topic_prefix (repeatable)", CONS),
    _O("queue_name", string, None, "queue name (default: q_<user>.<program>.<config>...)", CONS,
       aka="-qn qn queue queueName"),
    _O("queue_declare", boolean, True, "declare the queue at start (off: it must exist)", CONS,
       aka="declare_queue queueDeclare"),
    _O("queue_bind", boolean, True, "bind the queue at start (off: it keeps its bindings)", CONS,
       aka="bind_queue queueBind"),
    _O("durable", boolean, True, "declare the queue durable", CONS),
    _O("expire", ttl, 300.0,
       "delete the queue after this long unused (x-expires; None: never); 5m as v2 and sr3",
       CONS, aka="expiry"),
    _O("message_ttl", ttl, None, "drop queued messages older than this (None: never)", CONS),
    _O("prefetch", bounded(1, 65535), 25, "messages the broker sends ahead of acknowledgement",
       CONS),
    _O("batch", bounded(1, 1_000_000), 100, "messages gathered per processing round"),
    _O("threads", bounded(1, MAX_PROCESSES), 1,
       "files of a batch downloaded at once (own connections)", SUB),
    _O("instances", bounded(1, MAX_PROCESSES), 1,
       "number of processes to run for this config (1 to 100)", DAEM, aka="instance"),
    _O("reset", boolean, False, "delete the queue and saved state on start", CONS),
    _O("source_from_exchange", boolean, False, "set source from the xs_ exchange name", PUMP,
       aka="sourceFromExchange"),
    _M("declare", declare,
       "declare source|subscriber|exchange <name>, or env NAME=value (repeatable)"),
    # -- selecting and placing
    _O("accept", regex, (), "take what matches (file order)", CONS + SRC + POLL, True, True,
       aka="get"),
    _O("reject", regex, (), "skip what matches (file order)", CONS + SRC + POLL, True, True),
    _O("accept_unmatch", boolean, False, "take what no accept/reject matches", CONS + SRC + POLL,
       aka="accept_unmatched acceptUnmatched"),
    _O("log_reject", boolean, False,
       "log each message the accept/reject lines reject (else at debug level)", CONS,
       aka="logReject"),
    _O("directory", string, ".", "where files go (dd_poll: what it lists)", PLACE + POLL, True),
    _O("mirror", boolean, False, "keep the posted relative path under directory", PLACE, True),
    _O("strip", strip_value, 0, "drop N leading path components, or a regex", PLACE, True),
    _O("flatten", string, "/", "replaces / in the path when not mirroring", PLACE, True),
    _O("inflight", inflight, ".tmp", "name while writing: .tmp | . | tmp/ | NONE | seconds",
       aka="lock fileAgeMin"),
    _O("inplace", boolean, True, "assemble file parts into the file itself", FETCH,
       aka="assemble"),
    _O("preserve_time", boolean, True, "set mtime/atime from the post", PLACE + POLL,
       aka="timeCopy"),
    _O("preserve_mode", boolean, True, "set the file mode from the post", PLACE,
       aka="permCopy"),
    _O("chmod", octal, 0o644, "file mode when the post carries none", PLACE,
       aka="default_mode permDefault"),
    _O("overwrite", boolean, True, "replace existing files (else skip identical ones)", FETCH),
    _O("link_absolute_targets", boolean, False,
       "make links (L posts) with absolute targets: only for a trusted upstream", FETCH),
    _O("file_sources", string_list, (),
       "local directories file: URLs of notices may be read from (none: refused)", PLACE),
    _O("suppress_duplicates", suppress, 0.0, "ignore a checksum seen within this long",
       aka="caching cache no_duplicates noduplicates nodupe_ttl -sd -nd"),
    _O("suppress_basis", choice("path", "name", "data"), "path",
       "what makes a duplicate (same source): sum+path, sum+file name, or the sum alone", FETCH,
       aka="suppress_duplicates_basis cache_basis nodupe_basis"),
    _O("rename", string, None, "post a rename header (ending in /: keep the name)", SRC,
       aka="-rn"),
    # -- what a subscriber does with a file
    _O("download", boolean, True, "fetch the files (off: post the notices on, fetch nothing)",
       SUB, aka="!notify_only !no_download"),
    _O("discard", boolean, False, "delete each file once its on_file hooks ran; nothing posted",
       SUB, aka="download-and-discard"),
    _O("delete", boolean, False,
       "delete the source's file once downloaded and verified: only for a trusted upstream",
       FETCH),
    # -- retries and transfers
    _O("retry_ttl", duration, 172800.0, "give up retrying a failed message after this", DAEM),
    _O("retry_delay", duration, 10.0, "first wait before retrying a failed message", DAEM),
    _O("attempts", integer, 3, "transfer attempts before queueing for retry", FETCH),
    _O("timeout", duration, 30.0, "network timeout of a transfer"),
    _O("throttle", size, 0, "bytes per second per transfer (0: unlimited)", PLACE,
       aka="byteRateMax kbytes_ps(K)"),
    _O("timeout_min_rate", size, 1024, "slowest bytes/s a download may average (0: any)", PLACE),
    _O("download_max_size", size, 1 << 30, "most bytes fetched when a post gives no size", PLACE),
    _O("redirect_hosts", string_list, (), "hosts an HTTP redirect may lead to (else none)", PLACE),
    _M("source_hosts", source_hosts, "<source|*> <host|*.domain|addr|net>...: may fetch", PLACE),
    # -- bandwidth limits shared by processes (sarra.transfer.bandwidth)
    _O("bandwidth", size, 0, "bytes/s of this config in all: instances, threads, hosts", PLACE),
    _O("bandwidth_per_host", size, 0, "bytes/s to or from one server, all flows of a host", PLACE),
    _M("source_bandwidth", source_rate, "<source|*> <bytes/s>: quota of a source", ("sara",)),
    # -- sending and polling
    _O("destination", url, None, "server to send to, or (dd_poll) to list", SEND + POLL,
       aka="sendTo pollUrl remoteUrl"),
    _O("base_dir", string, None, "local tree the relpaths of notices are read from", SEND,
       aka="baseDir"),
    _O("file_time_limit", duration, 5184000.0, "older listed files are not posted (60d)", POLL,
       aka="fileAgeMax nodupe_fileAgeMax"),
    # -- hooks (sarra.hooks: plugins of both generations; see HOOK_OPTIONS)
    _M("on_file", string, "script or plugin run when a file is complete (repeatable)"),
    _M("on_part", string, "script or plugin run when a part is written (repeatable)"),
    _M("on_message", string, "plugin run on each accepted message (repeatable)", aka="on_msg"),
    _M("on_post", string, "plugin run before each post (repeatable)"),
    _M("on_start", string, "plugin run when an instance starts (repeatable)"),
    _M("on_stop", string, "plugin run when an instance stops (repeatable)"),
    _M("on_heartbeat", string, "plugin run at each housekeeping (repeatable)",
       aka="on_housekeeping on_hb"),
    _M("plugin", string, "v2 plugin or Hook class: name, file or dotted path (repeatable)"),
    _M("callback", string, "sr3 flow callback: name or dotted path (repeatable)",
       aka="flowcb flow_callback flowCallback fcb cb"),
    _M("callback_prepend", string, "sr3 flow callback run before the others (repeatable)",
       aka="flowcb_prepend flow_callback_prepend flowCallbackPrepend fcbp cbp"),
    _O("log_events", string, None, "sr3 logEvents: what 'callback log' logs (after_accept,...)",
       aka="logEvents"),
    # -- reports
    _O("report_back", boolean, True, "send a report message for each file processed", CONS,
       aka="-rb report reportback"),
    _O("report_exchange", string, None, "exchange for reports (default xs_<broker user>)", CONS),
    _O("report_router", boolean, False,
       "route reports: xs_<user> -> xreport -> xr_<source> or toward from_cluster", PUMP),
    _M("report_route", route, "<cluster|*> <broker url>: next hop of reports (repeatable)", PUMP),
    # -- posting
    _O("post_broker", amqp_url, None, "broker to post to", REPOST, aka="-pb"),
    _O("post_exchange", string, None, "exchange to post to (default: set by the program)", REPOST,
       aka="-pe"),
    _O("post_exchange_suffix", string, None, "post to xs_<broker user>_<suffix>", REPOST,
       aka="post_exchangeSuffix"),
    _O("post_base_url", url, None, "URL that downloaders fetch relative paths from", REPOST,
       aka="-u -pbu url post_url post_baseUrl"),
    _O("post_base_dir", string, None, "local directory that post_base_url maps to", REPOST,
       aka="-dr -pbd document_root post_document_root post_baseDir documentRoot "
           "post_documentRoot"),
    _O("post_topic_prefix", string, "v02.post", "first words of posted topics", REPOST,
       aka="-tp -ptp post_topicPrefix"),
    _O("post_format", formats, (),
       "v02, v03 or v02,v03: formats posted (default: post_topic_prefix's, else v02)", REPOST),
    _O("inline", boolean, False, "put small files' bytes in v03 posts (content)", SRC,
       aka="content"),
    _O("inline_max", size, 4096, "largest file put inline (bytes)", SRC,
       aka="inlineByteMax content_max"),
    _O("inline_encoding", inline_encoding, "guess", "inline text as utf-8: guess|text|binary",
       SRC, aka="inlineEncoding content_encoding"),
    _O("inline_only", boolean, False, "post only files small enough to put inline", SRC,
       aka="inlineOnly"),
    _O("post_subtopic", string, None, "post with this topic, not the file's directories", POST,
       aka="-sub"),
    _O("post_relpath_slash", boolean, False, "post relpaths with a leading / (v2 style)", POST),
    _O("events", events, ("create", "delete", "link", "modify"), "file events to post",
       SRC + SEND, aka="-e fileEvents"),
    _O("blocksize", size, 1, "split files in blocks of this size (0: auto, 1: never)", SRC,
       aka="-bs"),
    _O("sum", sum_flag, "d", "checksum to post: d (md5), s (sha512), n, 0, z,d or z,s",
       SRC + POLL, aka="-sum identity integrity"),
    _O("to", string_list, None, "clusters to deliver to (to_clusters header)", POST,
       aka="-to to_clusters"),
    _O("cluster", string, None, "name of this cluster (default: the broker host)",
       aka="from_cluster"),
    _O("cluster_aliases", string_list, (), "other names of this cluster"),
    _O("gateway_for", string_list, (), "clusters this pump forwards to", PUMP),
    _M("header", header, "add name=value to every post (repeatable)", POST, aka="-header"),
    _O("source", string, None, "source header to post (default: none)", SRC + POLL),
    _M("path", string, "file or directory to post or watch (repeatable)", SRC, aka="-p"),
    _O("recursive", boolean, True, "descend into directories given as path", SRC + POLL,
       aka="-rec"),
    _O("follow_symlinks", boolean, False, "watch and post what symbolic links point to", SRC),
    _O("force_polling", boolean, False, "poll the tree instead of using inotify", ("watch",)),
    _O("sleep", interval, 5.0, "seconds between scans (dd_poll: listings; -1: dd_post's once)",
       ("watch", "poll")),
    _O("post_on_start", boolean, False, "post every existing file at start", ("watch",)),
    _O("pipe", boolean, False, "read the paths to post from standard input", ("post",)),
    _O("remove", boolean, False, "announce the named paths as removed (R posts)", ("post",),
       aka="-rm"),
    _O("moved_from", string, None, "announce the one named path as moved from here",
       ("post",), aka="-mv"),
    # -- running
    _O("log_level", log_level, "info", "debug, info, warning, error or critical",
       aka="loglevel logLevel"),
    _O("debug", boolean, False, "same as log_level debug"),
    _O("log_backups", integer, 5, "rotated log files to keep", DAEM,
       aka="logdays logrotate logRotateCount"),
    _O("log_rotate", duration, 86400.0, "rotate the log this often", DAEM,
       aka="logrotate_interval logRotateInterval"),
    _O("heartbeat", duration, 60.0, "AMQP heartbeat interval (0: off)"),
    _O("housekeeping", duration, 300.0, "interval of periodic housekeeping", DAEM),
    _O("metrics_interval", duration, 5.0,
       "save the counters dd metrics/status/check read this often (0: metrics off)", DAEM,
       aka="metrics_writeInterval"),
    _O("stop_timeout", duration, 10.0, "seconds stop waits before killing an instance", DAEM),
    # -- broker TLS
    _O("broker_ca", string, None, "CA file to verify amqps brokers (default: system CAs)"),
    _O("broker_tls_verify", boolean, True, "verify the amqps broker's certificate and name"),
    # -- dd_log
    _O("follow", boolean, False, "keep showing reports as they come (else exit when idle)", LOG),
    _O("idle_exit", duration, 3.0, "without follow: exit after this long with no report", LOG),
    _O("summary", boolean, False, "show one summary per file instead of one line per report",
       LOG),
    _O("keep_journal", boolean, False, "append every report received to the local journal", LOG),
    _O("journal", boolean, False, "read reports from the local journal, not the broker", LOG),
    _O("path_match", regex, None, "show reports whose file (relpath) matches this regex", LOG),
    _O("consumer_match", regex, None, "show reports whose consumer user@host matches", LOG),
    _O("code", string_list, (), "show these codes: 201, 2xx, 4 ... (comma separated)", LOG),
    _O("since", point_in_time, None, "show reports received after: 2h, 20261128220000, ISO",
       LOG),
    _O("until", point_in_time, None, "show reports received before (same forms as since)", LOG),
    # -- v2 and sr3 options refused when on: "on" would silently do something else here
    _O("dry_run", only_off("sarra has no simulation mode: it would transfer"), False,
       "v2/sr3 simulation: only off is accepted", aka="simulate simulation"),
    _O("save", only_off("sarra has no save mode: it would process the messages"), False,
       "v2 save of messages to a file: only off is accepted"),
) + tuple(_I(*row) for row in INERT)  # v2 and sr3 options with no effect here (config.inert)
# fmt: on


#: Every option by canonical name (read-only).
OPTIONS: Mapping[str, Option] = MappingProxyType({row.name: row for row in _ROWS})

_ALIAS = re.compile(r"(!?)([^()!]+)(?:\((\w+)\))?")


def _aliases() -> Tuple[Dict[str, str], Dict[str, str]]:
    """(spelling -> canonical name, spelling -> how its value is read), from the rows."""
    targets: Dict[str, str] = {}
    forms: Dict[str, str] = {}
    for row in _ROWS:
        for word in row.aliases:
            match = _ALIAS.fullmatch(word)
            assert match, f"bad alias {word!r} of {row.name}"
            negate, spelling, unit = match.groups()
            assert spelling not in targets and spelling.lower() not in OPTIONS, spelling
            targets[spelling] = row.name
            if negate or unit:
                forms[spelling] = "!" if negate else unit
    return targets, forms


_TARGETS, _FORMS = _aliases()
#: Every other spelling of an option -> its canonical name (read-only): v2 and sr3
#: spellings and short command-line flags, gathered from the rows' ``aka``.
SYNONYMS: Mapping[str, str] = MappingProxyType(_TARGETS)
#: The aliases whose value is read another way: ``"!"`` (the opposite boolean) or a
#: unit appended to the value (``"K"``).
ALIAS_FORMS: Mapping[str, str] = MappingProxyType(_FORMS)
_BY_LOWER = {word.lower(): word for word in _TARGETS}  # case never matters
assert all(_TARGETS[_BY_LOWER[w.lower()]] == t for w, t in _TARGETS.items()), "case clash"

#: The options naming plugins: the loader keeps their lines in file order with where
#: each was written (``Options.hook_lines``), and keeps the lines of options no row knows
#: (``Options.extras``) for the plugins that declare them (``sarra.hooks``).
HOOK_OPTIONS = frozenset(
    "on_file on_part on_message on_post on_start on_stop on_heartbeat plugin callback "
    "callback_prepend".split()
)


def spelling(name: str) -> Optional[Tuple[str, str]]:
    """``(canonical name, value form)`` for ``name`` as written, or None when no row
    knows it.  Case does not matter, nor ``-x``/``--x-y`` forms; the form is ``""``,
    ``"!"`` (read the value as the opposite boolean) or a unit to append (see
    :data:`ALIAS_FORMS`)."""
    word = name.strip().lower()
    found = _BY_LOWER.get(word)
    if found is None:
        bare = word.lstrip("-").replace("-", "_")
        if bare in OPTIONS:
            return bare, ""
        found = _BY_LOWER.get(bare)
    if found is None:
        return None
    return _TARGETS[found], _FORMS.get(found, "")


def canonical(name: str) -> str | None:
    """Return the canonical option name for ``name`` (aliases, ``-x``/``--x-y`` forms), or None."""
    found = spelling(name)
    return found[0] if found is not None else None


def options_for(program: str) -> Tuple[Option, ...]:
    """The options that ``program`` (a short name) uses, in table order (the ignored
    ones are used by none)."""
    return tuple(row for row in _ROWS if program in row.programs and not row.ignored)
