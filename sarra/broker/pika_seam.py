"""The only module that touches pika's private API; each trick behind a version check.

Import this module instead of pika's own first import: it imports pika.  Three tricks,
each measured against pika's public API (bench/README, "Seams"):

1. **The asynchronous channel under a BlockingChannel** (``BlockingChannel._impl``, a
   ``pika.channel.Channel``: the SelectConnection layer BlockingConnection is built on).
   Through it, ``sarra.broker.confirms`` publishes a whole batch and reads the confirms
   as they come (``BlockingChannel.confirm_delivery`` waits one round trip per message:
   14-16x slower for 2,000 persistent posts), and ``Broker.ack`` queues the ack frame
   without flushing the socket each time (2,000 gets and acks 1.6-2.8x faster).
2. **Corked frames** (``Connection._adapter_emit_data``, the one place where pika hands
   marshaled frames to its transport): :func:`corked` joins the frames of a slice of
   publishes into one ``send`` (3 frames, so 3 system calls, per message otherwise:
   2,000 batched posts 1.14-1.27x faster).
3. **pika without its asyncio adapter**: ``import pika`` (1.4) imports every adapter it
   ships, and the asyncio one imports asyncio: ~15 ms of CPU (13% of a process that
   imports the broker) for an adapter sarra never uses.  While pika is imported, a placeholder
   stands in for ``pika.adapters.asyncio_connection``; it is then taken out of
   ``sys.modules``, so an explicit import still gets the real adapter, and the
   placeholder class itself builds a real connection.

Each trick runs only on the pika versions it was verified on (``VERIFIED_*``: the pika
source of the tricks is the same from 1.3.0 to 1.4.4, and the broker tests pass on 1.3.2
and 1.4.4) and when the private attribute is there; otherwise, or with
``SARRA_PUBLIC_APIS=1``, sarra uses
``BlockingChannel.confirm_delivery``/``basic_publish``/``basic_ack`` and a plain
``import pika``.  :func:`describe` says which, for the debug log of each connect.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sys
import types
from typing import Any, Iterator

from sarra.core.seams import Choice, choose

__all__ = ["CHANNEL", "IMPORT", "async_channel", "corked", "describe"]

#: ``BlockingChannel._impl`` and ``Connection._adapter_emit_data``: unchanged 1.3.0-1.4.4.
VERIFIED_CHANNEL = ((1, 3), (1, 5))
#: pika 1.3 does not import the asyncio adapter at all; 1.4.0-1.4.4 do, the same way.
VERIFIED_IMPORT = ((1, 4), (1, 5))

_ADAPTER = "pika.adapters.asyncio_connection"
_VERSION_LINE = re.compile(r"^__version__\s*=\s*['\"]([^'\"]{1,40})['\"]", re.MULTILINE)


class AsyncioConnection:
    """Stand-in for ``pika.adapters.AsyncioConnection``: builds the real one."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        import importlib

        real = importlib.import_module(_ADAPTER).AsyncioConnection
        return real(*args, **kwargs)


def _source_version() -> str:
    """pika's ``__version__``, read from its ``__init__.py`` before pika is imported
    (importlib.metadata would cost more than the trick saves)."""
    spec = importlib.util.find_spec("pika")
    if spec is None or not spec.origin:
        return ""
    try:
        with open(spec.origin, encoding="utf-8") as f:
            m = _VERSION_LINE.search(f.read(4096))
    except (OSError, ValueError):
        return ""
    return m[1] if m else ""


def _import_pika(environ: Any) -> Choice:
    """Import pika, without its asyncio adapter when the trick may run (see above)."""
    what = "import without the asyncio adapter"
    if "pika" in sys.modules or "asyncio" in sys.modules or _ADAPTER in sys.modules:
        return Choice(False, f"{what}: no (pika or asyncio was imported before)")
    choice = choose(what, _source_version(), VERIFIED_IMPORT, True, environ)
    if not choice.private:
        import pika  # noqa: F401

        return choice
    stub = types.ModuleType(_ADAPTER)
    stub.AsyncioConnection = AsyncioConnection  # type: ignore[attr-defined]
    sys.modules[_ADAPTER] = stub
    try:
        import pika  # noqa: F401
    except ImportError:  # it wants more of the adapter than the placeholder has
        del sys.modules[_ADAPTER]
        import pika  # noqa: F401

        return Choice(False, f"{what}: no (the placeholder was not enough for this pika)")
    finally:
        if sys.modules.get(_ADAPTER) is stub:
            del sys.modules[_ADAPTER]
    return choice


IMPORT = _import_pika(os.environ)

# isort: split
import pika  # noqa: E402
import pika.channel  # noqa: E402
import pika.connection  # noqa: E402


def _channel_choice(version: str, connection_cls: type, environ: Any) -> Choice:
    """Whether batched confirms, queued acks and corked frames may use pika's internals.

    ``_impl`` is an attribute of each BlockingChannel, checked again by
    :func:`async_channel`; the class attribute checked here is the corking hook.
    """
    return choose(
        "confirms and acks on BlockingChannel._impl, corked frames",
        version,
        VERIFIED_CHANNEL,
        callable(getattr(connection_cls, "_adapter_emit_data", None)),
        environ,
    )


CHANNEL = _channel_choice(pika.__version__, pika.connection.Connection, os.environ)


def describe() -> str:
    """One line for the debug log: which pika paths are in use, and why."""
    return f"pika {pika.__version__}: {CHANNEL.why}; {IMPORT.why}"


def async_channel(ch: Any, choice: Choice | None = None) -> Any:
    """The ``pika.channel.Channel`` under the BlockingChannel ``ch``, or None when the
    public API must be used (``choice``, by default :data:`CHANNEL`, says no, or this
    channel has no such attribute)."""
    if not (choice or CHANNEL).private:
        return None
    impl = getattr(ch, "_impl", None)
    return impl if isinstance(impl, pika.channel.Channel) else None


@contextlib.contextmanager
def corked(conn: Any) -> Iterator[None]:
    """Hand the frames written on ``conn`` (a ``pika.connection.Connection``) inside the
    block to its transport as one buffer, in the same order.

    Inside the block, the connection's ``_adapter_emit_data`` collects the frames; on exit
    they go to the transport joined.  Nothing else writes on the connection meanwhile (no
    I/O is processed inside the block).  A pika without that method is left alone.
    """
    emit = getattr(conn, "_adapter_emit_data", None)
    if emit is None:
        yield
        return
    own = vars(conn).get("_adapter_emit_data")
    pending: list[bytes] = []
    conn._adapter_emit_data = pending.append
    try:
        yield
    finally:
        if own is None:
            del conn._adapter_emit_data  # back to the class's method
        else:
            conn._adapter_emit_data = own
        if pending:
            emit(b"".join(pending))
