"""The rule every seam follows before it uses a dependency's private API.

A speed trick that reaches into a dependency (pika's ``BlockingChannel._impl``, requests'
adapter pools) lives in one seam module per dependency (``sarra.broker.pika_seam``,
``sarra.transfer.requests_seam``).  At import, the seam calls :func:`choose` with the
installed version, the range the trick was verified on, and whether the private
attribute is there; anything else, or ``SARRA_PUBLIC_APIS=1`` in the environment, and
the seam takes the public API instead.  The trick is an optimisation, never a
requirement: both paths behave the same, and CI runs the broker and HTTP tests once
with the public paths forced.

Pure: the caller passes the version string and the environment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Tuple

__all__ = ["FORCE_ENV", "Choice", "Version", "choose", "forced", "parse_version"]

#: Set to anything but "", "0", "no", "false" or "off": every seam takes the public API.
FORCE_ENV = "SARRA_PUBLIC_APIS"

Version = Tuple[int, ...]

_LEADING_NUMBERS = re.compile(r"(\d{1,6})(?:\.(\d{1,6}))?(?:\.(\d{1,6}))?")


def forced(environ: Mapping[str, str]) -> bool:
    """True when ``environ`` asks every seam for the public API."""
    return environ.get(FORCE_ENV, "").strip().lower() not in ("", "0", "no", "false", "off")


def parse_version(text: str) -> Version | None:
    """The leading numbers of a version string: ``"1.4.4"`` -> (1, 4, 4), ``"2.0rc1"`` ->
    (2, 0); None when it does not start with a number."""
    m = _LEADING_NUMBERS.match(text.strip()[:40])
    if m is None:
        return None
    return tuple(int(part) for part in m.groups() if part is not None)


@dataclass(frozen=True)
class Choice:
    """Which path a seam took: ``private`` (the trick) or not, and why, for the debug log."""

    private: bool
    why: str


def choose(
    what: str,
    version: str,
    verified: tuple[Version, Version],
    has_private: bool,
    environ: Mapping[str, str],
) -> Choice:
    """Decide whether the trick ``what`` may run on a dependency at ``version``.

    ``verified`` is ``(lowest, above)``: the trick was checked on versions ``lowest <=
    v < above``.  Returns a private Choice only when the version parses and falls in that
    range, ``has_private`` is true and the environment does not force the public API.
    """
    low, above = verified
    parsed = parse_version(version)
    if forced(environ):
        return Choice(False, f"{what}: public API ({FORCE_ENV} is set)")
    if parsed is None or not low <= parsed < above:
        span = f"{_dotted(low)} <= v < {_dotted(above)}"
        return Choice(False, f"{what}: public API (version {version!r} not in {span})")
    if not has_private:
        return Choice(False, f"{what}: public API (the private attribute is missing)")
    return Choice(True, f"{what}: private API (version {version}, verified range)")


def _dotted(v: Version) -> str:
    return ".".join(str(n) for n in v)
