"""The type of every option: generated from the option table, do not edit.

Written by ``tools/gen-typed-options`` from ``sarra/config/options.py`` (an option's type
is its converter's return annotation; ``Tuple[T, ...]`` when repeatable; ``Optional``
when its default is None).  ``tests/unit/test_typed_options.py`` fails when this file and
the table differ: after changing a row, run ``tools/gen-typed-options``.

``loader.Options`` inherits these annotations, so mypy sees ``o.preserve_time`` as a
``bool`` and rejects a misspelt option name; at run time every option is present on a
loaded ``Options`` (its table default, or what a role, a file or the command line set).
"""

from __future__ import annotations

from typing import Optional, Pattern, Tuple, Union


class OptionValues:
    """One attribute per option, in table order."""

    __slots__ = ()

    #: broker to consume from: amqp[s]://user@host[:port]/
    broker: Optional[str]
    #: exchange to bind to (default: set by the program)
    exchange: Optional[str]
    #: first words of the binding key; several bind one queue: v02.post,v03
    topic_prefix: str
    #: binding key after topic_prefix (repeatable)
    subtopic: Tuple[str, ...]
    #: queue name (default: q_<user>.<program>.<config>...)
    queue_name: Optional[str]
    #: declare the queue durable
    durable: bool
    #: delete the queue after this long unused (x-expires)
    expire: float
    #: drop queued messages older than this
    message_ttl: Optional[float]
    #: messages the broker sends ahead of acknowledgement
    prefetch: int
    #: messages gathered per processing round
    batch: int
    #: files of a batch downloaded at once (own connections)
    threads: int
    #: number of processes to run for this config (1 to 100)
    instances: int
    #: delete the queue and saved state on start
    reset: bool
    #: set source from the xs_ exchange name
    source_from_exchange: bool
    #: declare source|subscriber|exchange <name> (repeatable)
    declare: Tuple[Tuple[str, str], ...]
    #: take what matches (file order)
    accept: Tuple[Pattern[str], ...]
    #: skip what matches (file order)
    reject: Tuple[Pattern[str], ...]
    #: take what no accept/reject matches
    accept_unmatch: bool
    #: where files go (dd_poll: what it lists)
    directory: str
    #: keep the posted relative path under directory
    mirror: bool
    #: drop N leading path components, or a regex
    strip: Union[int, Pattern[str]]
    #: replaces / in the path when not mirroring
    flatten: str
    #: name while writing: .tmp | . | tmp/ | NONE | seconds
    inflight: Union[str, float, None]
    #: assemble file parts into the file itself
    inplace: bool
    #: set mtime/atime from the post
    preserve_time: bool
    #: set the file mode from the post
    preserve_mode: bool
    #: file mode when the post carries none
    chmod: int
    #: replace existing files (else skip identical ones)
    overwrite: bool
    #: make links (L posts) with absolute targets: only for a trusted upstream
    link_absolute_targets: bool
    #: local directories file: URLs of notices may be read from (none: refused)
    file_sources: Tuple[str, ...]
    #: ignore a checksum seen within this long
    suppress_duplicates: float
    #: what makes a duplicate (same source): sum+path, sum+file name, or the sum alone
    suppress_basis: str
    #: post a rename header (ending in /: keep the name)
    rename: Optional[str]
    #: give up retrying a failed message after this
    retry_ttl: float
    #: first wait before retrying a failed message
    retry_delay: float
    #: transfer attempts before queueing for retry
    attempts: int
    #: network timeout of a transfer
    timeout: float
    #: bytes per second per transfer (0: unlimited)
    throttle: int
    #: slowest bytes/s a download may average (0: any)
    timeout_min_rate: int
    #: most bytes fetched when a post gives no size
    download_max_size: int
    #: hosts an HTTP redirect may lead to (else none)
    redirect_hosts: Tuple[str, ...]
    #: <source|*> <host|*.domain|addr|net>...: may fetch
    source_hosts: Tuple[Tuple[str, Tuple[str, ...]], ...]
    #: bytes/s of this config in all: instances, threads, hosts
    bandwidth: int
    #: bytes/s to or from one server, all flows of a host
    bandwidth_per_host: int
    #: <source|*> <bytes/s>: quota of a source
    source_bandwidth: Tuple[Tuple[str, int], ...]
    #: server to send to, or (dd_poll) to list
    destination: Optional[str]
    #: local tree the relpaths of notices are read from
    base_dir: Optional[str]
    #: older listed files are not posted (60d)
    file_time_limit: float
    #: script or plugin run when a file is complete (repeatable)
    on_file: Tuple[str, ...]
    #: script or plugin run when a part is written (repeatable)
    on_part: Tuple[str, ...]
    #: plugin run on each accepted message (repeatable)
    on_message: Tuple[str, ...]
    #: plugin run before each post (repeatable)
    on_post: Tuple[str, ...]
    #: plugin run when an instance starts (repeatable)
    on_start: Tuple[str, ...]
    #: plugin run when an instance stops (repeatable)
    on_stop: Tuple[str, ...]
    #: plugin run at each housekeeping (repeatable)
    on_heartbeat: Tuple[str, ...]
    #: v2 plugin or Hook class: name, file or dotted path (repeatable)
    plugin: Tuple[str, ...]
    #: sr3 flow callback: name or dotted path (repeatable)
    callback: Tuple[str, ...]
    #: sr3 flow callback run before the others (repeatable)
    callback_prepend: Tuple[str, ...]
    #: send a report message for each file processed
    report_back: bool
    #: exchange for reports (default xs_<broker user>)
    report_exchange: Optional[str]
    #: route reports: xs_<user> -> xreport -> xr_<source> or toward from_cluster
    report_router: bool
    #: <cluster|*> <broker url>: next hop of reports (repeatable)
    report_route: Tuple[Tuple[str, str], ...]
    #: broker to post to
    post_broker: Optional[str]
    #: exchange to post to (default: set by the program)
    post_exchange: Optional[str]
    #: post to xs_<broker user>_<suffix>
    post_exchange_suffix: Optional[str]
    #: URL that downloaders fetch relative paths from
    post_base_url: Optional[str]
    #: local directory that post_base_url maps to
    post_base_dir: Optional[str]
    #: first words of posted topics
    post_topic_prefix: str
    #: v02, v03 or v02,v03: formats posted (default: post_topic_prefix's, else v02)
    post_format: Tuple[str, ...]
    #: put small files' bytes in v03 posts (content)
    inline: bool
    #: largest file put inline (bytes)
    inline_max: int
    #: inline text as utf-8: guess|text|binary
    inline_encoding: str
    #: post only files small enough to put inline
    inline_only: bool
    #: post with this topic, not the file's directories
    post_subtopic: Optional[str]
    #: post relpaths with a leading / (v2 style)
    post_relpath_slash: bool
    #: file events to post
    events: Tuple[str, ...]
    #: split files in blocks of this size (0: auto, 1: never)
    blocksize: int
    #: checksum to post: d, s, n, 0, z,d or z,s
    sum: str
    #: clusters to deliver to (to_clusters header)
    to: Optional[Tuple[str, ...]]
    #: name of this cluster (default: the broker host)
    cluster: Optional[str]
    #: other names of this cluster
    cluster_aliases: Tuple[str, ...]
    #: clusters this pump forwards to
    gateway_for: Tuple[str, ...]
    #: add name=value to every post (repeatable)
    header: Tuple[Tuple[str, str], ...]
    #: source header to post (default: none)
    source: Optional[str]
    #: file or directory to post or watch (repeatable)
    path: Tuple[str, ...]
    #: descend into directories given as path
    recursive: bool
    #: watch and post what symbolic links point to
    follow_symlinks: bool
    #: poll the tree instead of using inotify
    force_polling: bool
    #: seconds between scans (dd_poll: listings)
    sleep: float
    #: post every existing file at start
    post_on_start: bool
    #: read the paths to post from standard input
    pipe: bool
    #: announce the named paths as removed (R posts)
    remove: bool
    #: announce the one named path as moved from here
    moved_from: Optional[str]
    #: debug, info, warning, error or critical
    log_level: str
    #: same as log_level debug
    debug: bool
    #: rotated log files to keep
    log_backups: int
    #: rotate the log this often
    log_rotate: float
    #: AMQP heartbeat interval (0: off)
    heartbeat: float
    #: interval of periodic housekeeping
    housekeeping: float
    #: seconds stop waits before killing an instance
    stop_timeout: float
    #: CA file to verify amqps brokers (default: system CAs)
    broker_ca: Optional[str]
    #: verify the amqps broker's certificate and name
    broker_tls_verify: bool
    #: keep showing reports as they come (else exit when idle)
    follow: bool
    #: without follow: exit after this long with no report
    idle_exit: float
    #: show one summary per file instead of one line per report
    summary: bool
    #: append every report received to the local journal
    keep_journal: bool
    #: read reports from the local journal, not the broker
    journal: bool
    #: show reports whose file (relpath) matches this regex
    path_match: Optional[Pattern[str]]
    #: show reports whose consumer user@host matches
    consumer_match: Optional[Pattern[str]]
    #: show these codes: 201, 2xx, 4 ... (comma separated)
    code: Tuple[str, ...]
    #: show reports received after: 2h, 20261128220000, ISO
    since: Optional[str]
    #: show reports received before (same forms as since)
    until: Optional[str]
