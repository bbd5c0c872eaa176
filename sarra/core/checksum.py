"""Checksum (``sum`` header) algorithms of the v02 protocol, keyed by their method letter.

This module owns spec section 6: one tiny class per method, a registry from method
letter to factory, and :func:`new` to build a fresh checksum object.  It is pure: no
I/O; data checksums are fed the bytes as they stream past (``update``).

Methods: ``d`` MD5 of data, ``s`` SHA-512 of data, ``n`` MD5 of the basename, ``0`` a
random 4-digit value fixed at creation, ``z`` (``z,d`` / ``z,s``) checksum-on-download
computing the inner algorithm, ``L`` SHA-512 of a link target, ``R`` SHA-512 of the
removed basename.  More can be added with :func:`register` (plug-ins, at load time).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Callable, Mapping

from sarra.core.errors import MessageError

if TYPE_CHECKING:
    import random

__all__ = [
    "Checksum",
    "UnknownChecksumMethod",
    "METHODS",
    "register",
    "new",
    "known",
]


class UnknownChecksumMethod(MessageError):
    """The ``sum`` method letter is not registered (receivers: "cannot verify")."""


class Checksum:
    """Base class: a checksum being computed.

    ``method`` is the v02 method letter, ``flag`` what goes before the comma when this
    object is announced (the letter, or ``z,d`` for checksum-on-download), and
    ``verifiable`` tells whether a received value can be compared with :meth:`value`.
    """

    method: str = ""
    verifiable: bool = False

    @property
    def flag(self) -> str:
        return self.method

    def update(self, data: bytes | memoryview) -> None:
        """Feed bytes of the file (ignored by methods that do not hash data)."""

    def value(self) -> str:
        """Return the value (lower-case hex for hashes), without the method prefix."""
        raise NotImplementedError

    def header(self) -> str:
        """Return the ``sum`` header value: ``"<method>,<value>"``."""
        return f"{self.method},{self.value()}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.flag}>"


class _HashOfData(Checksum):
    """A hashlib digest of the data bytes."""

    algorithm = ""
    verifiable = True

    def __init__(self) -> None:
        self._hash = hashlib.new(self.algorithm)

    def update(self, data: bytes | memoryview) -> None:
        self._hash.update(data)

    def value(self) -> str:
        return self._hash.hexdigest()


class Md5(_HashOfData):
    method = "d"
    algorithm = "md5"


class Sha512(_HashOfData):
    method = "s"
    algorithm = "sha512"


class _HashOfText(Checksum):
    """A digest of a string fixed at creation (a name or a link target), not of data."""

    algorithm = ""

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"method {self.method!r} needs a str, got {type(text).__name__}")
        self._value = hashlib.new(self.algorithm, text.encode("utf-8")).hexdigest()

    def value(self) -> str:
        return self._value


class NameMd5(_HashOfText):
    """``n``: MD5 of the UTF-8 basename of the posted file."""

    method = "n"
    algorithm = "md5"


class LinkSha512(_HashOfText):
    """``L``: SHA-512 of the UTF-8 link target (the ``link`` header value)."""

    method = "L"
    algorithm = "sha512"


class RemovalSha512(_HashOfText):
    """``R``: SHA-512 of the UTF-8 basename of the removed path."""

    method = "R"
    algorithm = "sha512"


class NoChecksum(Checksum):
    """``0``: a random zero-padded 4-digit value, so load balancing by sum spreads."""

    method = "0"

    def __init__(self, rng: random.Random | None = None) -> None:
        if rng is None:
            import random  # only the "0" method needs it

            value = random.randrange(10000)
        else:
            value = rng.randrange(10000)
        self._value = f"{value:04d}"

    def value(self) -> str:
        return self._value


class OnDownload(Checksum):
    """``z,x``: the receiver computes method ``x`` while downloading.

    ``header()`` gives the computed ``x,<value>`` that replaces ``z,x`` when the file is
    re-announced; ``flag`` is the announced form ``z,x``.  Nothing can be verified
    against a ``z`` post itself, but ``inner`` is an ordinary verifiable checksum.
    """

    method = "z"

    def __init__(self, inner: str = "d", registry: Mapping[str, Factory] | None = None) -> None:
        if inner not in ("d", "s"):
            raise UnknownChecksumMethod(f"checksum-on-download needs z,d or z,s, not z,{inner}")
        self.inner = new(inner, registry=registry)

    @property
    def flag(self) -> str:
        return f"z,{self.inner.method}"

    def update(self, data: bytes | memoryview) -> None:
        self.inner.update(data)

    def value(self) -> str:
        return self.inner.value()

    def header(self) -> str:
        return self.inner.header()


Factory = Callable[..., Checksum]

METHODS: dict[str, Factory] = {
    "d": Md5,
    "s": Sha512,
    "n": lambda name: NameMd5(name),
    "0": NoChecksum,
    "z": OnDownload,
    "L": lambda link: LinkSha512(link),
    "R": lambda name: RemovalSha512(name),
}


def register(method: str, factory: Factory) -> None:
    """Register an extra algorithm under ``method`` (plug-ins call this at load time).

    Raises:
        ValueError: ``method`` is empty or contains a comma.
    """
    if not method or "," in method:
        raise ValueError(f"bad checksum method name {method!r}")
    METHODS[method] = factory


def known(method: str, registry: Mapping[str, Factory] | None = None) -> bool:
    """Return True if ``method`` (a letter, or ``z,x``) can be built by :func:`new`."""
    letter = method.split(",", 1)[0]
    return letter in (METHODS if registry is None else registry)


def new(method: str, *, registry: Mapping[str, Factory] | None = None, **kwargs: Any) -> Checksum:
    """Return a new checksum object for ``method``.

    ``method`` is a letter (``"d"``, ``"s"``, ...) or ``"z,d"`` / ``"z,s"``.  Name and
    link methods take their string as a keyword: ``new("n", name="hello.txt")``,
    ``new("R", name="gone.txt")``, ``new("L", link="../small/hello.txt")``.

    Raises:
        UnknownChecksumMethod: the method is not registered.
        TypeError: a required keyword (``name``/``link``) is missing.
    """
    table = METHODS if registry is None else registry
    letter, _, rest = method.partition(",")
    if letter == "z":
        kwargs.setdefault("inner", rest or "d")
        kwargs.setdefault("registry", registry)
    try:
        factory = table[letter]
    except KeyError:
        raise UnknownChecksumMethod(f"unknown checksum method {method!r}") from None
    return factory(**kwargs)
