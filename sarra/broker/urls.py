"""Broker URLs and connection settings: parsing, TLS, and the backoff schedule;
and the small pure pieces of ``sarra.broker.connection`` (``Received``, generations, topology ops).

Split from ``connection`` for size; only ``connection`` builds connections from it.

Vhost in the URL (a deliberate choice): the path without its leading slash,
percent-decoded.  ``amqp://h``, ``amqp://h/`` and ``amqp://h/%2F`` are vhost ``/``;
``amqp://h/name`` is vhost ``name`` (what sr3 and pika do); ``amqp://h/%2Fname`` is vhost
``/name``.  Sarracenia v2 (spec 10.6) keeps the leading slash, so its ``amqp://h/name``
means vhost ``/name``: write ``amqp://h/%2Fname`` here to reach that vhost.  The default
vhost ``/`` means the same everywhere.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Iterator, Optional
from urllib.parse import unquote, urlsplit

import pika

from sarra.core.errors import ConfigError
from sarra.core.redaction import redact_url


@dataclass(frozen=True)
class Endpoint:
    """What a broker URL says: where to connect, as whom, to which vhost."""

    tls: bool
    host: str
    port: int
    vhost: str
    user: str
    password: str = field(repr=False)


def parse_url(url: str) -> Endpoint:
    """Split an ``amqp://`` or ``amqps://`` URL (see the module docstring for the vhost).

    Raises:
        ConfigError: not an amqp/amqps URL, or no host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("amqp", "amqps"):
        raise ConfigError(f"broker URL must be amqp:// or amqps://, not {redact_url(url)!r}")
    if not parts.hostname:
        raise ConfigError(f"broker URL has no host: {redact_url(url)!r}")
    tls = parts.scheme == "amqps"
    try:
        port = parts.port or (5671 if tls else 5672)
    except ValueError as e:
        raise ConfigError(f"bad port in broker URL {redact_url(url)!r}") from e
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    vhost = unquote(path) or "/"
    user = unquote(parts.username) if parts.username else "guest"
    password = unquote(parts.password) if parts.password is not None else "guest"
    return Endpoint(tls, parts.hostname, port, vhost, user, password)


def backoff_delays(max_backoff: float, first: float = 1.0) -> Iterator[float]:
    """Endless capped exponential backoff: first, 2*first, 4*first, ... up to max_backoff."""
    delay = min(first, max_backoff)
    while True:
        yield delay
        delay = min(delay * 2, max_backoff)


def connection_parameters(
    ep: Endpoint,
    *,
    heartbeat: int,
    name: str = "",
    tls_ca: str | None = None,
    tls_verify: bool = True,
) -> pika.ConnectionParameters:
    """pika parameters for ``ep``: one connection attempt (``Broker`` does the retrying).

    For amqps the server certificate is verified against the system CAs, or ``tls_ca``
    when given; ``tls_verify=False`` turns verification off.
    """
    ssl_options = None
    if ep.tls:
        ctx = ssl.create_default_context(cafile=tls_ca)
        if not tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        ssl_options = pika.SSLOptions(ctx, server_hostname=ep.host)
    return pika.ConnectionParameters(
        host=ep.host,
        port=ep.port,
        virtual_host=ep.vhost,
        credentials=pika.PlainCredentials(ep.user, ep.password),
        heartbeat=heartbeat,
        ssl_options=ssl_options,
        connection_attempts=1,
        socket_timeout=10,
        client_properties={"connection_name": name} if name else None,
    )


@dataclass(frozen=True)
class Received:
    """One message delivered to our consumer."""

    exchange: str
    routing_key: str
    headers: dict = field(hash=False)
    body: bytes
    delivery_tag: int
    redelivered: bool
    generation: int
    content_type: str | None = None
    expiration: str | None = None


def is_current(r: Received, generation: int, connected: bool) -> bool:
    """True when ``r`` may be acked: it came from the live connection's generation."""
    return connected and r.generation == generation


def certificate_refused(e: BaseException) -> bool:
    """True when a connection failed because the server's certificate was not trusted."""
    seen = 0
    cause: Optional[BaseException] = e
    while cause is not None and seen < 10:
        if isinstance(cause, ssl.SSLCertVerificationError) or (
            "CERTIFICATE_VERIFY_FAILED" in str(cause)
        ):
            return True
        cause = cause.__cause__ or cause.__context__
        seen += 1
    for arg in getattr(e, "args", ()):
        if isinstance(arg, BaseException) and certificate_refused(arg):
            return True
    return False


def concerns_queue(op: tuple, queue: str) -> bool:
    return op[0] in ("declare_queue", "bind", "consume") and op[1] == queue
