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
    #: consume xs_<broker user>_<suffix> (sets exchange)
    exchange_suffix: Optional[str]
    #: first words of the binding key; several bind one queue: v02.post,v03
    topic_prefix: str
    #: binding key after topic_prefix (repeatable)
    subtopic: Tuple[str, ...]
    #: queue name (default: q_<user>.<program>.<config>...)
    queue_name: Optional[str]
    #: declare the queue at start (off: it must exist)
    queue_declare: bool
    #: bind the queue at start (off: it keeps its bindings)
    queue_bind: bool
    #: declare the queue durable
    durable: bool
    #: delete the queue after this long unused (x-expires; None: never); 5m as v2 and sr3
    expire: Optional[float]
    #: drop queued messages older than this (None: never)
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
    #: declare source|subscriber|exchange <name>, or env NAME=value (repeatable)
    declare: Tuple[Tuple[str, str], ...]
    #: take what matches (file order)
    accept: Tuple[Pattern[str], ...]
    #: skip what matches (file order)
    reject: Tuple[Pattern[str], ...]
    #: take what no accept/reject matches
    accept_unmatch: bool
    #: log each message the accept/reject lines reject (else at debug level)
    log_reject: bool
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
    #: fetch the files (off: post the notices on, fetch nothing)
    download: bool
    #: delete each file once its on_file hooks ran; nothing posted
    discard: bool
    #: delete the source's file once downloaded and verified: only for a trusted upstream
    delete: bool
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
    #: sr3 logEvents: what 'callback log' logs (after_accept,...)
    log_events: Optional[str]
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
    #: checksum to post: d (md5), s (sha512), n, 0, z,d or z,s
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
    #: seconds between scans (dd_poll: listings; -1: dd_post's once)
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
    #: save the counters dd metrics/status/check read this often (0: metrics off)
    metrics_interval: float
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
    #: v2/sr3 simulation: only off is accepted
    dry_run: bool
    #: v2 save of messages to a file: only off is accepted
    save: bool
    #: no effect here: high availability (vip) comes with issue 18: this node runs as if it
    #: held the vip
    vip: Optional[str]
    #: no effect here: high availability (vip) comes with issue 18: this node runs as if it
    #: held the vip
    poll_without_vip: Optional[str]
    #: no effect here: high availability (vip) comes with issue 18: this node runs as if it
    #: held the vip
    interface: Optional[str]
    #: no effect here: notices go to post_broker, never to standard output
    outlet: Optional[str]
    #: no effect here: one exchange per config
    exchange_split: Optional[str]
    #: no effect here: one post exchange per config
    post_exchange_split: Optional[str]
    #: no effect here: TLS is verified unless broker_tls_verify is off
    tls_rigour: Optional[str]
    #: no effect here: directories are made 0777 less the umask
    chmod_dir: Optional[str]
    #: no effect here: listing times are read as the server gives them
    timezone: Optional[str]
    #: no effect here: file names are kept as posted (no v2 filename rewriting yet)
    filename: Optional[str]
    #: no effect here: files are split as blocksize says
    parts: Optional[str]
    #: no effect here: files are split as blocksize says
    partflg: Optional[str]
    #: no effect here: part files end in .Part
    part_ext: Optional[str]
    #: no effect here: paths are posted as given (symbolic links not resolved)
    realpath_post: Optional[str]
    #: no effect here: accept/reject match the paths as given
    realpath_filter: Optional[str]
    #: no effect here: paths are posted as given
    realpath_adjust: Optional[str]
    #: no effect here: include reads local files only
    remote_config_url: Optional[str]
    #: no effect here: a size other than announced fails the transfer
    accept_size_wrong: Optional[str]
    #: no effect here: the notice's relpath is always taken as is
    base_url_rel_path: Optional[str]
    #: no effect here: the announced size is trusted up to download_max_size
    file_size_max: Optional[str]
    #: no effect here: messages are worked whatever their age (msg_skip_old skips old ones)
    message_age_max: Optional[str]
    #: no effect here: posts carry no age limit
    post_message_age_max: Optional[str]
    #: no effect here: instances run until stopped
    message_count_max: Optional[str]
    #: no effect here: no rate limit on messages
    message_rate_max: Optional[str]
    #: no effect here: no rate check on messages
    message_rate_min: Optional[str]
    #: no effect here: dd_sara sets the source from the exchange
    source_from_message: Optional[str]
    #: no effect here: state is kept per user, not per host
    statehost: Optional[str]
    #: no effect here: bindings come from topic_prefix and subtopic
    topic: Optional[str]
    #: no effect here: posted topics come from post_topic_prefix and the path
    post_topic: Optional[str]
    #: no effect here: posted topics come from post_topic_prefix and the path
    topic_copy: Optional[str]
    #: no effect here: date variables use the current time
    var_time_offset: Optional[str]
    #: no effect here: exchanges are declared when missing
    exchange_declare: Optional[str]
    #: no effect here: messages are never saved to disk (save), so none to restore
    restore: Optional[str]
    #: no effect here: messages are never saved to disk (save)
    restore_to_queue: Optional[str]
    #: no effect here: write a plugin's option on a line of its own
    set: Optional[str]
    #: no effect here: queues are classic queues
    queue_type: Optional[str]
    #: no effect here: queues are never deleted by the broker when idle (expire is)
    auto_delete: Optional[str]
    #: no effect here: queue names come from queue_name
    queue_suffix: Optional[str]
    #: no effect here: retries end with retry_ttl
    retry_count_max: Optional[str]
    #: no effect here: instances are not restarted when their memory grows
    memory_max: Optional[str]
    #: no effect here: dd_post -mv (moved_from) announces a move
    move: Optional[str]
    #: no effect here: dd_admin reads the switch's admin URL from admin.conf
    admin: Optional[str]
    #: no effect here: dd_admin reads the feeder URL from admin.conf
    feeder: Optional[str]
    #: no effect here: dd_admin declares users (dd_admin add-user)
    users: Optional[str]
    #: no effect here: dd_admin sets passwords
    set_passwords: Optional[str]
    #: no effect here: dd_admin gives users their roles
    role: Optional[str]
    #: no effect here: queues are declared with sarra's own arguments
    amqp_queue_args: Optional[str]
    #: no effect here: sarra speaks AMQP only
    mqtt_options: Optional[str]
    #: no effect here: sarra's HTTP requests name sarra
    http_user_agent: Optional[str]
    #: no effect here: paths are quoted as v02 says
    https_safe_quote: Optional[str]
    #: no effect here: duplicates are logged at debug level
    log_duplicates: Optional[str]
    #: no effect here: file times and modes are set through the open file
    nofsetstat: Optional[str]
    #: no effect here: duplicates are kept in SQLite
    nodupe_driver: Optional[str]
    #: no effect here: the duplicate cache keeps no statistics
    cache_stat: Optional[str]
    #: no effect here: listings are parsed whole
    ls_file_index: Optional[str]
    #: no effect here: messages are never saved to disk (save)
    save_file: Optional[str]
    #: no effect here: sarra speaks AMQP through pika only
    use_pika: Optional[str]
    #: no effect here: posts are always persistent (delivery mode 2)
    persistent: Optional[str]
    #: no effect here: a failed transfer always goes to the retry queue (retry_ttl)
    retry: Optional[str]
    #: no effect here: connections are kept and reopened when they drop
    reconnect: Optional[str]
    #: no effect here: the instances of a config share its queue
    queue_share: Optional[str]
    #: no effect here: log files are made 0666 less the umask
    chmod_log: Optional[str]
    #: no effect here: sarra keeps no extended attributes
    xattr_disable: Optional[str]
    #: no effect here: blocks are posted in order
    randomize: Optional[str]
    #: no effect here: checksums are always verified while downloading
    recompute_chksum: Optional[str]
    #: no effect here: sarra streams transfers itself (no external accelerator)
    accel_threshold: Optional[str]
    #: no effect here: sarra streams transfers itself (no external accelerator)
    accel_command: Optional[str]
    #: no effect here: transfers use their own buffer sizes
    buf_size: Optional[str]
    #: no effect here: debug logs show the notices
    message_debug_dump: Optional[str]
    #: no effect here: each dd_ command runs its own flow
    flow_main: Optional[str]
    #: no effect here: dd status and dd sanity make their own checks
    run_state_threshold: Optional[str]
    #: no effect here: retried messages are not filtered again
    retry_refilter: Optional[str]
    #: no effect here: one-shot commands keep their retry queue
    retry_empty_before_exit: Optional[str]
    #: no effect here: set by dd for each instance
    instance_number: Optional[str]
    #: no effect here: the host name is the system's
    hostname: Optional[str]
    #: no effect here: sarra's log lines have one format
    log_format: Optional[str]
    #: no effect here: sarra's log lines have one format
    log_json: Optional[str]
    #: no effect here: dd status shows the counters
    log_metrics: Optional[str]
    #: no effect here: foreground logs to the terminal, daemons to their log files
    log_stdout: Optional[str]
    #: no effect here: ftp names are utf-8
    ftp_filename_encoding: Optional[str]
    #: no effect here: sarra sends no pulse messages
    pulse_message: Optional[str]
    #: no effect here: reports go where report_exchange says
    report_daemons: Optional[str]
    #: no effect here: queues are watched by the broker's own limits
    max_queue_size: Optional[str]
    #: no effect here: no sr_audit here
    pump: Optional[str]
    #: no effect here: sarra runs on POSIX systems
    windows_run: Optional[str]
    #: no effect here: no shim library here
    shim_defer_posting_to_exit: Optional[str]
    #: no effect here: no shim library here
    shim_post_minterval: Optional[str]
    #: no effect here: no shim library here
    shim_skip_parent_open_files: Optional[str]
    #: no effect here: nothing to confirm
    danger_will_robinson: Optional[str]
    #: no effect here: no Sundew compatibility mode
    sundew_compat_regex_first_match_is_zero: Optional[str]
    #: no effect here: renames are posted once, as v2 and sr3 read them
    v2compat_rename_double_post: Optional[str]
    #: no effect here: nothing to convert
    wololo: Optional[str]
