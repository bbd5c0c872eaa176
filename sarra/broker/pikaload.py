"""Import pika without its asyncio adapter (import this module before pika).

``import pika`` imports every connection adapter it ships, and its asyncio adapter
imports asyncio: ~11 ms of a one-shot command's ~100 ms start-up here, for an adapter
sarra never uses (``sarra.broker.connection`` runs BlockingConnection).  While pika is imported,
a placeholder stands in for ``pika.adapters.asyncio_connection``; it is then taken out
of ``sys.modules``, so an explicit ``import pika.adapters.asyncio_connection`` still
imports the real adapter, and the placeholder class itself builds a real connection.

Nothing changes when pika or asyncio is already imported.
"""

from __future__ import annotations

import sys
import types
from typing import Any

_NAME = "pika.adapters.asyncio_connection"


class AsyncioConnection:
    """Stand-in for ``pika.adapters.AsyncioConnection``: builds the real one."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        import importlib

        real = importlib.import_module(_NAME).AsyncioConnection
        return real(*args, **kwargs)


def load() -> None:
    if "pika" in sys.modules or "asyncio" in sys.modules or _NAME in sys.modules:
        return
    stub = types.ModuleType(_NAME)
    stub.AsyncioConnection = AsyncioConnection  # type: ignore[attr-defined]
    sys.modules[_NAME] = stub
    try:
        import pika  # noqa: F401
    finally:
        if sys.modules.get(_NAME) is stub:
            del sys.modules[_NAME]


load()
