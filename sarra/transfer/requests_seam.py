"""The only place the HTTP backend reaches under requests; behind a version check.

The trick: a GET goes straight to the urllib3 pool of the session's ``HTTPAdapter``
(``HTTPAdapter.get_connection_with_tls_context`` and ``cert_verify``, then the pool's
``urlopen``: what ``HTTPAdapter.send`` does), without building a ``requests.Response``
or merging the session settings again for each request.  For 2,000 GETs of 1 KiB over
loopback it takes 0.25 ms of CPU per GET instead of 0.59 (bench/README, "Seams").
requests documents both methods as "only exposed for use when subclassing the
HTTPAdapter", not for calling, and ``pool.pool`` (None once a pool is closed) is
urllib3's undocumented attribute.

:data:`ADAPTER` allows the trick only on the requests versions it was verified on
(2.32.2, where ``get_connection_with_tls_context`` appeared, up to 2.34.x: the tests ran
on 2.34.2) with urllib3 2.x, when the methods exist and ``SARRA_PUBLIC_APIS`` is not set;
otherwise ``sarra.transfer.http`` sends every request through ``Session.request``
(``stream=True``, no redirects), its public API.  Either way the body is read raw, never
decoded, and redirects are followed by ``sarra.transfer.http`` alone.

The pools made for an SSRF guard (``sarra.transfer.http._guarded_pool``) are urllib3's
public API, not this trick: they stay under the guard whatever this module says.
"""

from __future__ import annotations

import os
import weakref
from typing import Any, Mapping

import requests
import urllib3

from sarra.core.seams import Choice, choose

__all__ = ["ADAPTER", "WatchingAdapter", "adapter_pool", "describe", "pool_is_open", "watch_pool"]

VERIFIED_REQUESTS = ((2, 32, 2), (2, 35))
VERIFIED_URLLIB3 = ((2,), (3,))


def decide(
    requests_version: str, urllib3_version: str, adapter_cls: type, environ: Mapping[str, str]
) -> Choice:
    """Whether GETs may go straight to the adapter's pools (see the module docstring)."""
    has = all(
        callable(getattr(adapter_cls, name, None))
        for name in ("get_connection_with_tls_context", "cert_verify")
    )
    what = "GETs straight to HTTPAdapter's urllib3 pools"
    pools = choose(f"{what} (urllib3)", urllib3_version, VERIFIED_URLLIB3, has, environ)
    if not pools.private:
        return pools
    return choose(f"{what} (requests)", requests_version, VERIFIED_REQUESTS, has, environ)


ADAPTER = decide(
    requests.__version__, urllib3.__version__, requests.adapters.HTTPAdapter, os.environ
)


def describe() -> str:
    """One line for the debug log: which path HTTP requests take, and why."""
    return f"requests {requests.__version__}, urllib3 {urllib3.__version__}: {ADAPTER.why}"


def adapter_pool(adapter: Any, session: requests.Session, origin: str) -> Any:
    """The urllib3 pool that ``adapter`` (the session's, for ``origin``) would send a GET
    to ``origin`` through, with the session's TLS settings applied, as
    ``HTTPAdapter.send`` does.  Only when :data:`ADAPTER` allows it."""
    probe = requests.PreparedRequest()
    probe.prepare(method="GET", url=origin + "/")
    verify, cert = session.verify, session.cert
    pool = adapter.get_connection_with_tls_context(probe, verify, None, cert)
    adapter.cert_verify(pool, probe.url, verify, cert)
    return pool


def pool_is_open(pool: Any) -> bool:
    """False once the pool was closed (the adapter's PoolManager closes the pools it
    evicts): a closed pool cannot be reused."""
    return getattr(pool, "pool", None) is not None


def watch_pool(pool: Any, conns: weakref.WeakSet[Any]) -> Any:
    """``pool``, its connections from now on registered in ``conns`` (so that
    ``HttpTransfer.abort`` can shut their sockets down); ``ConnectionCls`` is urllib3's
    documented class attribute for the connections a pool makes."""
    if not getattr(pool.ConnectionCls, "sarra_watched", False):
        pool.ConnectionCls = _watched(pool.ConnectionCls, conns)
    return pool


def _watched(base: type, conns: weakref.WeakSet[Any]) -> type:
    class Watched(base):  # type: ignore[valid-type, misc]
        sarra_watched = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            conns.add(self)

    return Watched


class WatchingAdapter(requests.adapters.HTTPAdapter):
    """requests' ``HTTPAdapter`` whose pools register their connections in ``conns``:
    on requests' full path too, ``abort`` reaches a socket blocked in the status line.

    This is the use requests documents for ``get_connection_with_tls_context``:
    overriding it in a subclass.  A requests without it (before 2.32.2) never calls the
    override; ``abort`` then finds no socket there, and the read timeout bounds a read.
    """

    def __init__(self, conns: weakref.WeakSet[Any]) -> None:
        self.sarra_conns = conns
        super().__init__()

    def get_connection_with_tls_context(self, *args: Any, **kwargs: Any) -> Any:
        pool = super().get_connection_with_tls_context(*args, **kwargs)
        return watch_pool(pool, self.sarra_conns)
