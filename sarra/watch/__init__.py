"""Watching a directory tree: what dd_watch turns into notices.

``watcher`` (watchdog events, with a scan when the kernel queue overflows), ``scan`` (the
start-up and overflow walk), ``source`` (events to notices, as a Flow source),
``watchdog_seam`` (what differs between watchdog versions: the lost-events signal).

May import: ``core``, ``config``, ``post``.  watchdog is imported here only.
"""
