"""Watching a directory tree: what dd_watch turns into notices.

``watcher`` (watchdog events, with a scan when the kernel queue overflows), ``scan`` (the
start-up and overflow walk), ``source`` (events to notices, as a Flow source).

May import: ``core``, ``config``, ``post``.  watchdog is imported here only.
"""
