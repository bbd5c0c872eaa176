"""Which hosts a download may reach: the SSRF policy of dd_sara (and, when set, dd_subscribe).

Pure: no DNS, no sockets.  The transfer layer (``sarra.transfer.netguard``) resolves a
host name, asks :meth:`Allowed.check` about the name and EVERY address it resolved to,
then connects to the address that was checked, so a name that resolves differently
the second time (DNS rebinding) cannot slip through.

The admin writes ``source_hosts <source|*> <pattern>...`` lines (repeatable).  A pattern
is a host name (``data.example.org``), a name wildcard (``*.example.org``, ``*``), an
address (``192.0.2.7``) or a network (``10.1.0.0/16``, ``::1/128``).  A source without any
line may name any host whose addresses are all *public* (see :func:`is_internal`); a
source with lines may name only the hosts they match.  Internal addresses (loopback,
link-local, unspecified, multicast, reserved, and the switch's own addresses) are
refused unless an *address or network* pattern lists them: a host name never unlocks
them, because a source may control what its names resolve to.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence, Tuple, Union

from sarra.core.errors import TransferError

__all__ = ["Allowed", "FetchPolicy", "Refused", "is_internal", "parse_address", "host_pattern"]

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

#: Ranges refused by default on top of what ``ipaddress`` flags: "this network" (Linux
#: connects 0.x.y.z to the local host), the deprecated IPv4-compatible IPv6 form, and
#: NAT64 (both embed an IPv4 address that may be internal; unwrapped in ``_unwrap``).
_THIS_NET = ipaddress.ip_network("0.0.0.0/8")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(TransferError):
    """The policy forbids fetching from this host: permanent, code 403, no retry."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True, code=403)


def _ipv4_number(text: str) -> int | None:
    """An IPv4 address in any form ``inet_aton`` accepts (``127.1``, ``0x7f.1``,
    ``2130706433``, ``0177.0.0.1``) as a number; None if it is not one."""
    words = text.split(".")
    if not 1 <= len(words) <= 4:
        return None
    numbers = []
    for w in words:
        low = w.lower()
        try:
            if low.startswith("0x"):
                numbers.append(int(low[2:] or "0", 16))
            elif len(low) > 1 and low.startswith("0"):
                numbers.append(int(low[1:], 8))
            elif low.isdigit():
                numbers.append(int(low, 10))
            else:
                return None
        except ValueError:
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = 0
    for n in head:
        value = value * 256 + n
    return (value << (8 * (4 - len(head)))) | last


def parse_address(host: str) -> Address | None:
    """The address a URL host names literally (``[::1]``, ``127.1``, ``2130706433``...),
    or None for a host name.  A zone (``fe80::1%eth0``) is dropped."""
    text = host.strip().rstrip(".")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            return None
    number = _ipv4_number(text)
    return None if number is None else ipaddress.IPv4Address(number)


def _unwrap(addr: Address) -> Address:
    """The IPv4 address inside an IPv4-mapped, -compatible, 6to4 or NAT64 IPv6 address."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return addr.ipv4_mapped
        if addr.sixtofour is not None:  # 2002:aabb:ccdd::/48 carries a.b.c.d
            return addr.sixtofour
        if addr in _NAT64:
            return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
        if int(addr) >> 32 == 0 and int(addr) > 1:  # ::a.b.c.d (deprecated compatible form)
            return ipaddress.IPv4Address(int(addr))
    return addr


def is_internal(addr: Address, own: Iterable[Address] = ()) -> bool:
    """True for an address a source must not make the switch connect to by default:
    loopback, link-local, unspecified (and 0/8), multicast, reserved, or one of
    ``own`` (the switch's interfaces), also when wrapped in an IPv6 form."""
    plain = _unwrap(addr)
    own_set = {_unwrap(a) for a in own}
    return (
        plain.is_loopback
        or plain.is_link_local
        or plain.is_unspecified
        or plain.is_multicast
        or plain.is_reserved
        or (isinstance(plain, ipaddress.IPv4Address) and plain in _THIS_NET)
        or plain in own_set
        or addr in own_set
    )


def normal_name(host: str) -> str:
    """A host name compared case-insensitively, without the root's trailing dot."""
    return host.strip().lower().rstrip(".")


@dataclass(frozen=True)
class _Patterns:
    names: Tuple[str, ...] = ()
    networks: Tuple[Network, ...] = ()


def host_pattern(text: str) -> str:
    """Check one ``source_hosts`` pattern (converter helper); returns it normalised.

    Raises:
        ValueError: not a host name, wildcard, address or network.
    """
    word = normal_name(text)
    if not word:
        raise ValueError(f"bad host pattern {text!r}")
    if "/" in word or parse_address(word) is not None:
        _network(word)
        return word
    bare = word[2:] if word.startswith("*.") else word
    if word != "*" and (not bare or any(not (c.isalnum() or c in "-._") for c in bare)):
        raise ValueError(f"bad host pattern {text!r} (name, *.domain, *, address or a/n)")
    return word


def _network(word: str) -> Network:
    addr = parse_address(word.split("/", 1)[0])
    if addr is None:
        raise ValueError(f"bad address pattern {word!r}")
    prefix = word.split("/", 1)[1] if "/" in word else str(addr.max_prefixlen)
    try:
        return ipaddress.ip_network(f"{addr}/{prefix}", strict=False)
    except ValueError:
        raise ValueError(f"bad address pattern {word!r}") from None


def _compile(patterns: Iterable[str]) -> _Patterns:
    names, networks = [], []
    for p in patterns:
        word = host_pattern(p)
        if "/" in word or parse_address(word) is not None:
            networks.append(_network(word))
        else:
            names.append(word)
    return _Patterns(tuple(names), tuple(networks))


def name_matches(name: str, pattern: str) -> bool:
    """``name`` (normalised) matches ``pattern``: equal, ``*.domain`` below it, or ``*``."""
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    return name == pattern


@dataclass(frozen=True)
class Allowed:
    """What one source may name.  ``listed`` False: no line applies, so nothing (a source
    names only the hosts declared for it; ``source_hosts * *`` lets any public host)."""

    patterns: _Patterns
    listed: bool
    own: Tuple[Address, ...] = ()

    def _in_networks(self, addr: Address) -> bool:
        forms = {addr, _unwrap(addr)}
        forms |= {ipaddress.IPv6Address(f"::ffff:{a}") for a in forms if a.version == 4}
        return any(a in n for n in self.patterns.networks for a in forms)

    def check(self, host: str, addresses: Sequence[Address]) -> None:
        """Accept ``host`` resolved to ``addresses`` (all of them) or refuse it.

        Raises:
            Refused: the name is not listed, or an address is internal and not listed.
        """
        name = normal_name(host)
        if not addresses:
            raise Refused(f"fetch from {name!r} refused: it resolves to no address")
        if not self.listed:
            raise Refused(
                f"fetch from {name!r} refused: no source_hosts line names hosts for this source"
            )
        literal = parse_address(name)
        by_name = literal is None and any(name_matches(name, p) for p in self.patterns.names)
        by_address = all(self._in_networks(a) for a in addresses)
        if not (by_name or by_address):
            raise Refused(f"fetch from {name!r} refused: host not allowed for this source")
        for a in addresses:
            if is_internal(a, self.own) and not self._in_networks(a):
                raise Refused(f"fetch from {name!r} refused: {a} is an internal address")


class FetchPolicy:
    """The ``source_hosts`` lines of a config, by source (``*``: every source)."""

    def __init__(self, lines: Iterable[Tuple[str, Sequence[str]]], own: Iterable[Address] = ()):
        by_source: dict[str, list[str]] = {}
        for source, patterns in lines:
            by_source.setdefault(source, []).extend(patterns)
        self._lines: Mapping[str, Tuple[str, ...]] = {k: tuple(v) for k, v in by_source.items()}
        self._own = tuple(own)
        self._cache: dict[str | None, Allowed] = {}

    @property
    def configured(self) -> bool:
        """True when at least one ``source_hosts`` line was written."""
        return bool(self._lines)

    def for_source(self, source: str | None) -> Allowed:
        """The hosts ``source`` may name: its own lines plus the ``*`` lines."""
        allowed = self._cache.get(source)
        if allowed is None:
            patterns = self._lines.get("*", ()) + (
                self._lines.get(source, ()) if source and source != "*" else ()
            )
            allowed = Allowed(_compile(patterns), bool(patterns), self._own)
            self._cache[source] = allowed
        return allowed
