"""Notices from local files: what dd_post and dd_watch announce.

``notices`` makes a notice (or one per part) from a file, with its checksum computed
while the file is read; ``split`` forks a helper that posts part of a large file list on
its own connection.

May import: ``core``, ``config``, ``transfer`` (its read pipeline).
"""
