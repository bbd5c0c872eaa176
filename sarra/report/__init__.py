"""Reports as a source sees them: what dd_log shows.

``view`` turns report messages into entries, filters them, formats one line each, and
summarises per file where the data went; its ``Journal`` keeps entries on disk.

May import: ``core``, ``logs``.
"""
