"""The broker adapter: the only package that imports pika.

``connection`` (``Broker``: connect, declare, consume, settle, publish, reconnect),
``confirms`` (publisher confirms without a round trip per message), ``urls`` (amqp URLs,
connection parameters, backoff), ``pikaload`` (importing pika without its asyncio
adapter).  pika's exceptions are caught here and re-raised as ``sarra.core.errors``
types; any use of pika internals stays behind one version-checked seam here.

May import: ``sarra.core``, ``sarra.config``.  Never ``flow``, ``roles`` or a command.
"""
