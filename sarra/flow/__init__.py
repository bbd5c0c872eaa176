"""The pipeline every broker-fed or file-fed role runs: gather, admit, work, post, settle.

``engine`` (``Flow``: the loop, the ack decision in one place), ``source`` (messages
from the broker), ``consumer`` (queue name and setup, selection masks, placement per
mask), ``sinks`` (posts and reports, confirmed in batches), ``download``, ``assembly``
and ``parallel`` (the fetch work step: whole files, blocks, threads), ``send`` (dd_sender's
work step: a file pushed to a server under a temporary name, renamed into place),
``dedup``, ``retry`` (the on-disk retry queue), ``boundary`` (one message can never stop
the daemon), ``inhand`` (crash markers), ``stats`` and ``context`` (the services a role
is built from).

May import: ``core``, ``config``, ``logs``, ``fs``, ``broker``, ``transfer``, ``hooks``.
Never ``roles``, ``service`` or a command.
"""
