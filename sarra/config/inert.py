"""Options of v2 and sr3 that load here but have no effect, and why.

A Sarracenia user's config may carry options that mean nothing to sarra (a broker
library switch, the C shim library) or whose feature comes later (``vip``: high
availability, issue 18).  Refusing them would break configs that work; ignoring them
silently would hide a difference.  Each is a row of the option table
(:data:`sarra.config.options.OPTIONS`, built from :data:`INERT` by ``options._I``): it
loads as text, even alone on its line, and the loader logs one warning line at start-up
with the reason given here.

Each entry: ``(name, why it has no effect here, other spellings)``.  The first group
would change what happens if sarra honoured it (read its reason before relying on it);
the second has no meaning here.
"""

from __future__ import annotations

from typing import Tuple

#: v2 entry points that replace what sarra does itself (its transfers, listings and
#: posts): a config line naming one is refused at load (file:line), and a plugin file
#: defining one is refused at start-up (``sarra.hooks.v2``).  ``on_line None`` (clearing
#: a default) loads: there is nothing to clear.
REPLACES_WORK = (
    "do_download",
    "do_get",
    "do_poll",
    "do_put",
    "do_send",
    "do_task",
    "on_data",
    "on_line",
    "on_html_page",
    "on_watch",
    "on_report",
    "destfn_script",
    "on_rpt",
)
WHY_REFUSED = (
    "a v2 entry point that replaces sarra's own transfers, listings or posts is not "
    "supported (plugins run at on_message, on_file, on_part, on_post)"
)

HA = "high availability (vip) comes with issue 18: this node runs as if it held the vip"
_ACCEL = "sarra streams transfers itself (no external accelerator)"

# fmt: off
INERT: Tuple[Tuple[str, str, str], ...] = (
    # -- features that differ here, or come later
    ("vip", HA, ""),
    ("poll_without_vip", HA, ""),
    ("interface", HA, ""),
    ("outlet", "notices go to post_broker, never to standard output", ""),
    ("exchange_split", "one exchange per config", "exchangeSplit"),
    ("post_exchange_split", "one post exchange per config", "post_exchangeSplit"),
    ("tls_rigour", "TLS is verified unless broker_tls_verify is off", "tls_rigor tlsRigour"),
    ("chmod_dir", "directories are made 0777 less the umask", "default_dir_mode permDirDefault"),
    ("timezone", "listing times are read as the server gives them", "destination_timezone"),
    ("filename", "file names are kept as posted (no v2 filename rewriting yet)", ""),
    ("parts", "files are split as blocksize says", ""),
    ("partflg", "files are split as blocksize says", ""),
    ("part_ext", "part files end in .Part", ""),
    ("realpath_post", "paths are posted as given (symbolic links not resolved)",
     "realpath real realpathPost"),
    ("realpath_filter", "accept/reject match the paths as given", "realpathFilter"),
    ("realpath_adjust", "paths are posted as given", "realpathAdjust"),
    ("remote_config_url", "include reads local files only", ""),
    ("accept_size_wrong", "a size other than announced fails the transfer", "acceptSizeWrong"),
    ("base_url_rel_path", "the notice's relpath is always taken as is", "baseUrl_relPath"),
    ("file_size_max", "the announced size is trusted up to download_max_size", "fileSizeMax"),
    ("message_age_max", "messages are worked whatever their age (msg_skip_old skips old ones)",
     "messageAgeMax"),
    ("post_message_age_max", "posts carry no age limit", "post_messageAgeMax"),
    ("message_count_max", "instances run until stopped", "messageCountMax"),
    ("message_rate_max", "no rate limit on messages", "messageRateMax post_rate_limit"),
    ("message_rate_min", "no rate check on messages", "messageRateMin"),
    ("source_from_message", "dd_sara sets the source from the exchange", "sourceFromMessage"),
    ("statehost", "state is kept per user, not per host", ""),
    ("topic", "bindings come from topic_prefix and subtopic", ""),
    ("post_topic", "posted topics come from post_topic_prefix and the path", ""),
    ("topic_copy", "posted topics come from post_topic_prefix and the path", "topicCopy"),
    ("var_time_offset", "date variables use the current time", "varTimeOffset"),
    ("exchange_declare", "exchanges are declared when missing",
     "declare_exchange exchangeDeclare"),
    ("restore", "messages are never saved to disk (save), so none to restore", ""),
    ("restore_to_queue", "messages are never saved to disk (save)", "restore2queue post_queue"),
    ("set", "write a plugin's option on a line of its own", ""),
    ("queue_type", "queues are classic queues", "queueType"),
    ("auto_delete", "queues are never deleted by the broker when idle (expire is)", ""),
    ("queue_suffix", "queue names come from queue_name", ""),
    ("retry_count_max", "retries end with retry_ttl", "retryCountMax"),
    ("memory_max", "instances are not restarted when their memory grows",
     "MemoryMax hb_memory_max MemoryMultiplier hb_memory_multiplier MemoryBaseLineFile "
     "hb_memory_baseline_file"),
    ("move", "dd_post -mv (moved_from) announces a move", ""),
    # -- no meaning here
    ("admin", "dd_admin reads the switch's admin URL from admin.conf", ""),
    ("feeder", "dd_admin reads the feeder URL from admin.conf", "manager"),
    ("users", "dd_admin declares users (dd_admin add-user)", ""),
    ("set_passwords", "dd_admin sets passwords", ""),
    ("role", "dd_admin gives users their roles", ""),
    ("amqp_queue_args", "queues are declared with sarra's own arguments", ""),
    ("mqtt_options", "sarra speaks AMQP only",
     "clean_session qos receiveMaximum max_inflight_messages max_queued_messages"),
    ("http_user_agent", "sarra's HTTP requests name sarra", "httpUserAgent"),
    ("https_safe_quote", "paths are quoted as v02 says", "httpsSafeQuote"),
    ("log_duplicates", "duplicates are logged at debug level", "logDuplicates"),
    ("nofsetstat", "file times and modes are set through the open file", ""),
    ("nodupe_driver", "duplicates are kept in SQLite", ""),
    ("cache_stat", "the duplicate cache keeps no statistics", ""),
    ("ls_file_index", "listings are parsed whole", ""),
    ("save_file", "messages are never saved to disk (save)", ""),
    ("use_pika", "sarra speaks AMQP through pika only", "use_amqplib amqp_consumer"),
    ("persistent", "posts are always persistent (delivery mode 2)", ""),
    ("retry", "a failed transfer always goes to the retry queue (retry_ttl)", "retry_mode"),
    ("reconnect", "connections are kept and reopened when they drop", ""),
    ("queue_share", "the instances of a config share its queue", "queueShare"),
    ("chmod_log", "log files are made 0666 less the umask", "default_log_mode permLog"),
    ("xattr_disable", "sarra keeps no extended attributes", "xattr_disabled"),
    ("randomize", "blocks are posted in order", ""),
    ("recompute_chksum", "checksums are always verified while downloading", ""),
    ("accel_threshold", _ACCEL,
     "accelThreshold accel_wget_threshold accel_scp_threshold accel_cp_threshold"),
    ("accel_command", _ACCEL,
     "accelWgetCommand accelScpCommand accelCpCommand accel_wget_command accel_scp_command "
     "accel_cp_command download_cp_command"),
    ("buf_size", "transfers use their own buffer sizes", "bufsize bufSize"),
    ("message_debug_dump", "debug logs show the notices", "messageDebugDump"),
    ("flow_main", "each dd_ command runs its own flow", "flowMain"),
    ("run_state_threshold", "dd status and dd sanity make their own checks",
     "sanity_log_dead runStateThreshold_hung runStateThreshold_idle runStateThreshold_lag "
     "runStateThreshold_reject runStateThreshold_retry runStateThreshold_slow "
     "runStateThreshold_cpuSlow runStateThreshold_disconnected"),
    ("retry_refilter", "retried messages are not filtered again", ""),
    ("retry_empty_before_exit", "one-shot commands keep their retry queue",
     "retryEmptyBeforeExit"),
    ("instance_number", "set by dd for each instance", "no"),
    ("hostname", "the host name is the system's", ""),
    ("log_format", "sarra's log lines have one format", "logFormat"),
    ("log_json", "sarra's log lines have one format", "logJson"),
    ("log_metrics", "dd status shows the counters", "logMetrics"),
    ("log_stdout", "foreground logs to the terminal, daemons to their log files", "logStdout"),
    ("ftp_filename_encoding", "ftp names are utf-8", "ftpFilenameEncoding"),
    ("pulse_message", "sarra sends no pulse messages", ""),
    ("report_daemons", "reports go where report_exchange says", ""),
    ("max_queue_size", "queues are watched by the broker's own limits", ""),
    ("pump", "no sr_audit here", ""),
    ("windows_run", "sarra runs on POSIX systems", ""),
    ("shim_defer_posting_to_exit", "no shim library here", ""),
    ("shim_post_minterval", "no shim library here", ""),
    ("shim_skip_parent_open_files", "no shim library here", ""),
    ("danger_will_robinson", "nothing to confirm", "dangerWillRobinson"),
    ("sundew_compat_regex_first_match_is_zero", "no Sundew compatibility mode", ""),
    ("v2compat_rename_double_post", "renames are posted once, as v2 and sr3 read them",
     "v2compatRenameDoublePost"),
    ("wololo", "nothing to convert", ""),
)
# fmt: on
