"""HTTP(S) transfer backend on ``requests`` and its urllib3 pools (read-only: get, stat,
ls and listing).

Owns: one ``requests.Session`` per transfer (keep-alive; settings merged once),
explicit ``(connect, read)`` timeouts (the read timeout is the idle limit), streamed
raw bodies, RFC 3986 percent-encoding of the decoded server path (spec 4.5, 17.8),
basic auth from the credentials, and byte ranges for blocks.

Hostile servers: a body is read raw (``read1``, ``decode_content=False``), never
decoded, and never past what :meth:`Transfer.get` allows (``read_limit``; a larger
``Content-Length`` fails before reading).  Redirects are followed here, never by the
libraries: at most ``MAX_REDIRECTS``, to the same scheme, host and port, or to a host
in option ``redirect_hosts`` (then without the credentials).  Under an SSRF guard
(``sarra.transfer.netguard``) every origin gets its own urllib3 pool connected to the
address the guard checked, with the name in ``Host`` and in the TLS checks.  Else a
request goes straight to the session adapter's pool if ``requests_seam`` allows it, or
through ``Session.request``: always so with proxies, cookies (a ``Set-Cookie`` reply,
not under a guard) or auth hooks, still without redirects or decoding.

A block read sends ``Range: bytes=a-b`` and accepts only a 206 whose ``Content-Range``
matches, or a 200 when the request covered the whole file from offset 0.  A server that
ignores ranges is a permanent error raised before any byte is returned, so wrong data is
never written.  Status mapping: 401/403/404/410 and other 4xx permanent (except 408 and
429), 5xx and connection errors transient; all with code 499 and the text
``http download failed: <status> <reason>``.
"""

from __future__ import annotations

import codecs
import logging
import os
import re
import socket
import weakref
from typing import Any, Iterator
from urllib.parse import quote, urljoin, urlsplit

import requests
import urllib3
from requests.utils import DEFAULT_CA_BUNDLE_PATH

from sarra.core.errors import TransferError
from sarra.core.fetchpolicy import name_matches, normal_name
from sarra.core.redaction import redact_url
from sarra.transfer import Entry, Transfer, requests_seam
from sarra.transfer.limits import gather
from sarra.transfer.listing import IndexParser, index_entries

__all__ = ["HttpTransfer", "quote_path"]

log = logging.getLogger(__name__)

# RFC 3986 pchar minus "%": unreserved, sub-delims, ":" and "@" stay; "/" separates.
_SAFE = "/!$&'()*+,;=:@"
_TRANSIENT_4XX = {408, 425, 429}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_PORTS = {"http": 80, "https": 443}
_MAX_LISTING = 16 << 20  # bytes of a directory index page read at most
MAX_REDIRECTS = 5


def quote_path(path: str) -> str:
    """Percent-encode a decoded server path (UTF-8) for a request line."""
    return quote(path, safe=_SAFE)


def _status_error(resp: Any) -> TransferError:
    status = resp.status_code
    permanent = 400 <= status < 500 and status not in _TRANSIENT_4XX
    return TransferError(f"http download failed: {status} {resp.reason}", permanent=permanent)


class _Reply:
    """What a reader needs of a reply: urllib3's, or the one inside requests' (proxies).

    The body is read raw (``read1``, ``decode_content=False``): a ``Content-Encoding``
    is never decoded, so the bytes counted are the bytes received (no gzip bomb).
    """

    def __init__(self, resp: Any) -> None:
        raw = resp if isinstance(resp, urllib3.BaseHTTPResponse) else resp.raw
        self._resp = raw
        self.status_code: int = raw.status
        self.reason: str = raw.reason or ""
        self.headers = raw.headers
        self._done = False

    def location(self) -> str | None:
        """The redirect target, or None when this is not a redirect."""
        if 300 <= self.status_code < 400:
            return self.headers.get("Location") or None
        return None

    def chunks(self, size: int, most: int | None = None) -> Iterator[bytes]:
        """The body in pieces of up to ``size`` bytes; at most ``most`` bytes in all.

        A piece is handed over as soon as ``GATHER_WINDOW`` passed with bytes in hand,
        so the caller can check its deadline while a server trickles."""

        def read1(n: int) -> bytes:
            return self._resp.read1(n, decode_content=False)

        got = 0
        while most is None or got < most:
            data = gather(read1, size if most is None else min(size, most - got))
            if not data:
                self._done = True
                return
            got += len(data)
            yield data

    def pieces(self, most: int, what: str) -> Iterator[str]:
        """The body as text, in pieces as it arrives, for directory listings.

        Raises:
            TransferError: the body is longer than ``most`` bytes (after the pieces of
                the first ``most``: the rest of the listing is not read).
        """
        charset = self.headers.get("Content-Type", "").partition("charset=")[2].strip(' "')
        try:
            decoder = codecs.getincrementaldecoder(charset or "utf-8")(errors="replace")
        except LookupError:
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        total = 0
        for data in self.chunks(1 << 16, most + 1):
            total += len(data)
            if total > most:
                yield decoder.decode(data[: len(data) - (total - most)])
                raise TransferError(f"{what}: index page longer than {most} bytes, cut there")
            yield decoder.decode(data)
        yield decoder.decode(b"", final=True)

    def close(self) -> None:
        """Hand the connection back to the pool: kept alive if the body was read whole."""
        if not self._done:
            self._resp.close()  # unread bytes: this connection cannot serve another GET
        self._resp.release_conn()


class HttpTransfer(Transfer):
    """Downloads over HTTP or HTTPS with one keep-alive session.

    Redirects are followed here (never by requests or urllib3), at most
    ``MAX_REDIRECTS``, within the same scheme, host and port, or to a host that option
    ``redirect_hosts`` lists; an SSRF guard checks every host connected to.
    """

    scheme = "http"

    def __init__(self, baseurl: str, **kwargs: Any) -> None:
        super().__init__(baseurl, **kwargs)
        parts = urlsplit(baseurl)
        self.scheme = parts.scheme.lower()
        self.origin = _origin(self.scheme, self.host, self.port)
        self._session: requests.Session | None = None
        self._template: requests.PreparedRequest | None = None
        self._adapter: Any = None
        self._pools: dict[str, Any] = {}
        self._headers: dict[str, Any] = {}
        self._timeouts = urllib3.Timeout(connect=self.timeout, read=self.timeout)
        self._conns: weakref.WeakSet[Any] = weakref.WeakSet()  # for abort()
        self._redirect_hosts = tuple(
            normal_name(h) for h in (self.options.get("redirect_hosts") or ())
        )

    def connect(self) -> None:
        if self._session is None:
            session = requests.Session()
            # Byte ranges address the stored bytes: never let the server compress.
            session.headers["Accept-Encoding"] = "identity"
            if self.user and self.password is not None:
                session.auth = (self.user, self.password)
            if "verify" in self.options:
                session.verify = self.options["verify"]
            _settle_environment(session, self.origin)
            for prefix in ("http://", "https://"):  # its pools' connections reach abort()
                session.mount(prefix, requests_seam.WatchingAdapter(self._conns))
            self._session = session
            # Session headers and auth merged once; each request copies them (see _send).
            self._template = session.prepare_request(requests.Request("GET", self.origin + "/"))
            self._adapter = session.get_adapter(self._template.url or "")
            self._headers = dict(self._template.headers.items())
            log.debug("%s", requests_seam.describe())

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
            self._template = None
            self._adapter = None
        for pool in self._pools.values():
            if self.guard is not None:
                pool.close()  # the adapter's own pools close with the session
        self._pools.clear()

    def url(self, path: str) -> str:
        """Return the request URL for server ``path`` (no credentials in it)."""
        return self.origin + quote_path(path)

    def _direct(self) -> bool:
        """False when a request must take requests' full path: proxies, cookies or auth
        hooks, or, without a guard, when ``requests_seam`` does not allow the trick."""
        self.connect()
        session, template = self._session, self._template
        assert session is not None and template is not None
        if session.cookies or any(template.hooks.values()) or session.proxies:
            return False
        return self.guard is not None or requests_seam.ADAPTER.private

    def _pool(self, scheme: str, host: str, port: int | None) -> Any:
        """The urllib3 pool for an origin: under a guard, one connected to the address
        the guard checked; else the session adapter's."""
        origin = _origin(scheme, host, port)
        pool = self._pools.get(origin)
        if pool is not None and (self.guard is not None or requests_seam.pool_is_open(pool)):
            return pool  # a guarded pool is only closed by close(), which forgets it
        if self.guard is not None:
            pool = _guarded_pool(self, scheme, host, port)
        else:
            assert self._session is not None
            pool = requests_seam.adapter_pool(self._adapter, self._session, origin)
        self._pools[origin] = requests_seam.watch_pool(pool, self._conns)
        return pool

    def abort(self) -> None:
        """Shut down the sockets of this transfer's connections (see Transfer.abort)."""
        for conn in list(self._conns):
            _shutdown(getattr(conn, "sock", None))

    def _send(
        self,
        method: str,
        scheme: str,
        host: str,
        port: int | None,
        target: str,
        headers: dict[str, str],
    ) -> _Reply:
        """One request, no redirect followed.  Credentials only go to this transfer's
        own origin."""
        origin = _origin(scheme, host, port)
        merged = {**self._headers, **headers}
        if origin != self.origin:
            merged.pop("Authorization", None)
        if not self._direct():
            if self.guard is not None:  # the proxy resolves the name: checked as well we can
                self.guard.address(host, port or _PORTS[scheme])
            return _Reply(self._request(method, origin + target, merged, origin == self.origin))
        pool = self._pool(scheme, host, port)
        if self.guard is not None:
            merged["Host"] = origin.split("://", 1)[1]
        try:
            raw = pool.urlopen(
                method,
                target,
                headers=merged,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
                retries=self._adapter.max_retries,
                timeout=self._timeouts,
            )
        except urllib3.exceptions.HTTPError as e:
            raise TransferError(f"http {method} {origin}{target} failed: {e}") from e
        reply = _Reply(raw)
        if "set-cookie" in raw.headers and self.guard is None:
            # requests keeps the cookie (session jar): this and later requests take its path
            reply.close()
            return _Reply(self._request(method, origin + target, merged, origin == self.origin))
        return reply

    def _request(
        self, method: str, url: str, headers: dict[str, str], own: bool
    ) -> requests.Response:
        """Through ``Session.request``; the session's credentials only to its ``own``
        origin (an auth that leaves the request as it is stands in for them)."""
        assert self._session is not None
        try:
            return self._session.request(
                method,
                url,
                headers=headers,
                stream=True,
                allow_redirects=False,
                timeout=(self.timeout, self.timeout),
                auth=None if own else _as_is,
            )
        except requests.RequestException as e:
            raise TransferError(f"http {method} {url} failed: {e}") from e

    def _open(self, method: str, path: str, headers: dict[str, str]) -> _Reply:
        """The reply to ``method path``, redirects followed where allowed.

        Raises:
            TransferError: an error status (see module docstring), a redirect refused
                or too many (permanent), a connection failure, a host the guard refuses.
        """
        self.connect()
        scheme, host, port, target = self.scheme, self.host, self.port, quote_path(path)
        for _ in range(MAX_REDIRECTS + 1):
            reply = self._send(method, scheme, host, port, target, headers)
            location = reply.location()
            if location is None:
                if reply.status_code >= 300:
                    reply.close()
                    raise _status_error(reply)
                return reply
            reply.close()
            here = _origin(scheme, host, port) + target
            scheme, host, port, target = self._redirect(here, location)
        raise TransferError(f"http: more than {MAX_REDIRECTS} redirects for {path}", permanent=True)

    def _redirect(self, here: str, location: str) -> tuple[str, str, int | None, str]:
        """Where a redirect leads, if it may be followed.

        Raises:
            TransferError: another scheme, host or port not in ``redirect_hosts`` (permanent).
        """
        new = urlsplit(urljoin(here, location))
        old = urlsplit(here)
        same = (new.scheme.lower(), new.hostname, new.port) == (
            old.scheme.lower(),
            old.hostname,
            old.port,
        )
        name = normal_name(new.hostname or "")
        listed = any(name_matches(name, p) for p in self._redirect_hosts)
        if new.scheme.lower() not in _PORTS or not name or not (same or listed):
            raise TransferError(
                f"http: redirect from {here} to {redact_url(new.geturl())} refused "
                "(another scheme, host or port: see option redirect_hosts)",
                permanent=True,
            )
        target = (new.path or "/") + (f"?{new.query}" if new.query else "")
        return new.scheme.lower(), name, new.port, target

    def iter_read(self, path: str, offset: int, length: int | None) -> Iterator[bytes]:
        if length == 0:
            return
        most = self.read_limit  # set by Transfer.get for a whole file
        ranged = offset > 0 or length is not None
        headers = {}
        if ranged:
            end = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{end}"
        reply = self._open("GET", path, headers)
        try:
            if ranged:
                _check_range(reply, path, offset, length)
            _check_length(reply, path, most)
            try:
                yield from reply.chunks(self.chunk_size, None if most is None else most + 1)
            except (requests.RequestException, urllib3.exceptions.HTTPError) as e:
                raise TransferError(f"http download of {self.url(path)} failed: {e}") from e
        finally:
            reply.close()

    def stat(self, path: str) -> int:
        reply = self._open("HEAD", path, {})
        size = reply.headers.get("Content-Length")
        reply.close()
        if size is None or not size.isdigit():
            raise TransferError(f"http: no Content-Length for {self.url(path)}")
        return int(size)

    def listing(self, path: str) -> Iterator[Entry]:
        """Entries of the index page at ``path`` (nginx or Apache autoindex, or any page
        of links: :class:`~sarra.transfer.listing.IndexParser`), parsed as it streams
        in; at most ``_MAX_LISTING`` bytes of it are read."""
        directory = path.rstrip("/") + "/"
        reply = self._open("GET", directory, {})
        try:
            pieces = reply.pieces(_MAX_LISTING, self.url(directory))
            yield from index_entries(IndexParser(directory), pieces)
        except (requests.RequestException, urllib3.exceptions.HTTPError) as e:
            raise TransferError(f"http listing of {self.url(directory)} failed: {e}") from e
        finally:
            reply.close()

    def ls(self, path: str) -> list[str]:
        """Return the names linked from the directory index page at ``path``."""
        return sorted({e.name for e in self.listing(path)})


def _as_is(request: Any) -> Any:
    return request


def _shutdown(sock: Any) -> None:
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


def _origin(scheme: str, host: str, port: int | None) -> str:
    netloc = f"[{host}]" if ":" in host else host
    return f"{scheme}://{netloc}" + (f":{port}" if port else "")


def _guarded_pool(t: HttpTransfer, scheme: str, host: str, port: int | None) -> Any:
    """A urllib3 pool connected to the one address the guard checked for ``host``; TLS
    still verifies the certificate against ``host`` (SNI and name check)."""
    port = port or _PORTS[scheme]
    address = t.guard.address(host, port)
    common: dict[str, Any] = {"maxsize": 1, "timeout": t._timeouts}
    if scheme == "http":
        return urllib3.HTTPConnectionPool(address, port, **common)
    session = t._session
    assert session is not None
    verify = session.verify
    tls: dict[str, Any] = {"server_hostname": host}
    if verify is False:
        tls.update(cert_reqs="CERT_NONE", assert_hostname=False)
    else:
        bundle = verify if isinstance(verify, str) else DEFAULT_CA_BUNDLE_PATH
        where = "ca_cert_dir" if os.path.isdir(bundle) else "ca_certs"
        tls.update({"cert_reqs": "CERT_REQUIRED", "assert_hostname": host, where: bundle})
    cert = session.cert
    if cert:
        tls.update(cert_file=cert if isinstance(cert, str) else cert[0])
        if not isinstance(cert, str):
            tls.update(key_file=cert[1])
    return urllib3.HTTPSConnectionPool(address, port, **common, **tls)


def _settle_environment(session: requests.Session, origin: str) -> None:
    """Read once what requests would otherwise read from the environment per request.

    requests (``trust_env``) looks up the proxy variables twice per request, and netrc
    and ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` once.  The server of a session never
    changes, so the same settings are resolved here, once, and ``trust_env`` is turned off.
    """
    from requests.utils import get_environ_proxies, get_netrc_auth

    session.proxies = dict(get_environ_proxies(origin + "/"))
    if session.auth is None:
        session.auth = get_netrc_auth(origin + "/")
    if session.verify is True:
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            session.verify = bundle
    session.trust_env = False


def _check_length(reply: _Reply, path: str, most: int | None) -> None:
    """Refuse, before reading, a body announced longer than the caller accepts."""
    size = reply.headers.get("Content-Length", "")
    if most is not None and size.isdigit() and int(size) > most:
        raise TransferError(
            f"http: {path} is {size} bytes, more than the {most} announced", permanent=True
        )


def _check_range(resp: Any, path: str, offset: int, length: int | None) -> None:
    """Accept only the bytes that were asked for; raises a permanent TransferError."""
    if resp.status_code == 200:
        size = resp.headers.get("Content-Length")
        if offset == 0 and (length is None or (size is not None and size == str(length))):
            return
        raise TransferError(
            f"http: server ignores byte ranges (200 for bytes {offset}+{length} of {path})",
            permanent=True,
        )
    m = _CONTENT_RANGE.fullmatch(resp.headers.get("Content-Range", "").strip())
    if resp.status_code != 206 or m is None:
        raise TransferError(
            f"http: server ignores byte ranges ({resp.status_code} for {path})", permanent=True
        )
    first, last = int(m[1]), int(m[2])
    want_last = None if length is None else offset + length - 1
    if first != offset or (want_last is not None and last != want_last):
        raise TransferError(
            f"http: server sent bytes {first}-{last} of {path}, asked for {offset}-{want_last}",
            permanent=True,
        )
