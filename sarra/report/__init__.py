"""Reports as a source sees them: what dd_log shows.

``view`` turns report messages into entries, filters them, formats one line each, and
summarises per file where the data went; its ``Journal`` keeps entries on disk.
``printer`` is dd_log's sink in the flow: each batch journaled, then printed.

May import: ``core``, ``config``, ``logs``.
"""
