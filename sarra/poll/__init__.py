"""Polling a server that announces nothing: what dd_poll turns into notices.

``walker`` (the remote directories listed one at a time through a transfer backend,
recursively, every name checked and the depth bounded), ``state`` (what each file
looked like when last posted: on disk, so a restart posts nothing twice and misses
nothing), ``source`` (new and changed files as notices: a Flow source).

May import: ``core``, ``config``, ``transfer``, ``fs`` (name checks), ``post``.  Never
``flow`` (the source is duck-typed to its protocol), ``roles`` or a command.
"""
