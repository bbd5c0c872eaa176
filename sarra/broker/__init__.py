"""The broker adapter: the only package that imports pika.

``connection`` (``Broker``: connect, consume, settle, publish, reconnect), ``topology``
(what was declared, to declare again after a reconnect or a deleted queue), ``confirms``
(publisher confirms without a round trip per message), ``urls`` (amqp URLs, connection
parameters, backoff), ``pika_seam`` (the one module that touches pika's private API,
each trick behind a version check with a public fallback).  pika's exceptions are caught
here and re-raised as ``sarra.core.errors`` types.

``pika_seam`` is imported first, here, because it imports pika itself (without the
asyncio adapter): every module of the package then finds pika imported.

May import: ``sarra.core``, ``sarra.config``.  Never ``flow``, ``roles`` or a command.
"""

from sarra.broker import pika_seam  # noqa: F401 - first: it imports pika (see above)
