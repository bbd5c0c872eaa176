"""Resolve a server's name once, check every address, hand back the address to connect to.

Owns the I/O half of the SSRF policy (the pure half is ``sarra.core.fetchpolicy``): name
resolution (``getaddrinfo``) and the switch's own addresses (its interfaces).  A backend
with a :class:`Guard` connects to the address :meth:`Guard.address` returned, never to
the name again: the check and the connection use the same address, so a DNS answer that
changes between the two (rebinding) cannot reach an internal service.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Callable, List

from sarra.core.errors import TransferError
from sarra.core.fetchpolicy import Address, Allowed, FetchPolicy, normal_name, parse_address

__all__ = ["Guard", "own_addresses", "resolve"]

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], List[Address]]


def resolve(host: str, port: int) -> List[Address]:
    """Every address ``host`` resolves to (literal forms such as ``127.1`` included).

    Raises:
        TransferError: the name does not resolve (transient: DNS may come back).
    """
    literal = parse_address(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        raise TransferError(f"cannot resolve {host!r}: {e}") from e
    out: List[Address] = []
    for *_, sockaddr in infos:
        addr = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if addr not in out:
            out.append(addr)
    return out


def _ipv6_interfaces() -> List[Address]:
    try:
        with open("/proc/net/if_inet6", encoding="ascii") as f:
            words = [line.split()[0] for line in f if line.strip()]
    except OSError:
        return []
    return [ipaddress.IPv6Address(int(w, 16)) for w in words]


def _ipv4_interfaces() -> List[Address]:
    """IPv4 addresses of every interface (SIOCGIFADDR); empty where unsupported."""
    import fcntl
    import struct

    out: List[Address] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))
            except OSError:
                continue  # no IPv4 address on this interface
            out.append(ipaddress.IPv4Address(packed[20:24]))
    return out


def own_addresses() -> List[Address]:
    """The switch's own addresses: its interfaces' and what its host names resolve to."""
    found: List[Address] = []
    for get in (_ipv4_interfaces, _ipv6_interfaces):
        try:
            found += get()
        except (OSError, ValueError):
            log.debug("cannot list interface addresses (%s)", get.__name__, exc_info=True)
    for name in {socket.gethostname(), socket.getfqdn()}:
        try:
            found += resolve(name, 0)
        except TransferError:
            pass
    return list(dict.fromkeys(found))


class Guard:
    """The policy in force for one source, bound to a resolver.

    ``address(host, port)`` resolves ``host``, checks the name and every address with
    ``allowed`` and returns the (first) checked address as text for the connection.
    """

    def __init__(self, allowed: Allowed, resolver: Resolver = resolve) -> None:
        self.allowed = allowed
        self._resolve = resolver

    @classmethod
    def for_source(
        cls, policy: FetchPolicy, source: str | None, resolver: Resolver = resolve
    ) -> Guard:
        """The guard of ``source``'s allowed hosts under ``policy``."""
        return cls(policy.for_source(source), resolver)

    def address(self, host: str, port: int) -> str:
        """The address to connect to for ``host``.

        Raises:
            Refused: the policy forbids this host (permanent, 403).
            TransferError: the name does not resolve.
        """
        name = normal_name(host)
        addresses = self._resolve(name, port)
        self.allowed.check(name, addresses)
        return str(addresses[0])
