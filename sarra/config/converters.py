"""Converters: small pure functions from the text written in a config file to a value.

Each option row of :mod:`sarra.config.options` names one of these.  A converter raises
``ValueError`` quoting the bad value (``loader`` wraps it in ``ConfigError`` with the file,
the line and the option name), and its return annotation is the type the option has on
a loaded ``Options`` (``tools/gen-typed-options`` reads it to write ``typed.py``).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Callable, Optional, Pattern, Tuple, Union
from urllib.parse import urlsplit

from sarra.core.redaction import redact

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def boolean(value: str) -> bool:
    """``True/False/yes/no/on/off/1/0``, any case."""
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r} (use yes/no, true/false, on/off, 1/0)")


def integer(value: str) -> int:
    """A decimal integer."""
    try:
        return int(value.strip(), 10)
    except ValueError:
        raise ValueError(f"not an integer: {value!r}") from None


def bounded(low: int, high: int) -> Callable[[str], int]:
    """A decimal integer from ``low`` to ``high``: a count that starts processes, threads
    or buffers must not be able to exhaust the machine by a typo (``instances 999999``)."""

    def convert(value: str) -> int:
        n = integer(value)
        if not low <= n <= high:
            raise ValueError(f"{value.strip()!r} is out of range ({low} to {high})")
        return n

    convert.__name__ = f"integer {low}..{high}"
    return convert


def string(value: str) -> str:
    """Any text, kept as written (surrounding blanks removed)."""
    return value.strip()


_SIZE = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)\s*(?:([kmgt])(?:i?b?)?|b)?$", re.IGNORECASE)
_SIZE_POWER = {"k": 1, "m": 2, "g": 3, "t": 4}


def size(value: str) -> int:
    """Bytes: ``10``, ``64K``, ``10M``, ``1G``, ``1.5Mi``, ``2MB``; multiples are binary (1024)."""
    match = _SIZE.match(value.strip())
    if not match:
        raise ValueError(f"not a size: {value!r} (examples: 4096, 64K, 10M, 1G)")
    number, unit = match.groups()
    power = _SIZE_POWER[unit.lower()] if unit else 0
    return int(float(number) * 1024**power)


_DURATION = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*([smhdw]?)$", re.IGNORECASE)
_DURATION_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration(value: str) -> float:
    """Seconds: ``30``, ``1.5s``, ``5m``, ``1h``, ``2d``, ``1w``."""
    match = _DURATION.match(value.strip())
    if not match:
        raise ValueError(f"not a duration: {value!r} (examples: 30, 1.5s, 5m, 1h, 2d)")
    number, unit = match.groups()
    return float(number) * _DURATION_UNIT[unit.lower()]


def interval(value: str) -> float:
    """A :func:`duration`, or a negative number (-> -1.0): sr3's ``sleep -1``, "once, no
    repeat" (what dd_post always does)."""
    text = value.strip()
    if text.startswith("-") and _DURATION.match(text[1:]):
        return -1.0
    return duration(text)


_NEVER = frozenset({"none", "off", "never"})


def ttl(value: str) -> Optional[float]:
    """A lifetime: a duration, or ``None``/``off`` (-> None: no limit), as v2 and sr3
    write ``expire None``."""
    return None if value.strip().lower() in _NEVER else duration(value)


def octal(value: str) -> int:
    """An octal number such as a file mode: ``644``, ``0644`` or ``0o644``."""
    text = value.strip().lower()
    text = text[2:] if text.startswith("0o") else text
    try:
        return int(text, 8)
    except ValueError:
        raise ValueError(f"not an octal number: {value!r}") from None


def url(value: str) -> str:
    """A URL with a scheme and a host (``file:`` URLs need no host)."""
    text = value.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        raise ValueError(f"not a URL: {redact(text)!r}") from None
    if not parts.scheme or (not parts.hostname and parts.scheme != "file"):
        raise ValueError(f"not a URL: {redact(text)!r} (expected scheme://host/...)")
    return text


def amqp_url(value: str) -> str:
    """A broker URL: ``amqp://user@host[:port]/[vhost]`` or ``amqps://...``."""
    text = url(value)
    scheme = urlsplit(text).scheme.lower()
    if scheme.startswith("mqtt"):  # sr3 speaks MQTT too
        raise ValueError(f"{redact(text)!r}: MQTT brokers are not supported (sarra speaks AMQP)")
    if scheme not in ("amqp", "amqps"):
        raise ValueError(f"not a broker URL: {redact(text)!r} (expected amqp:// or amqps://)")
    return text


def choice(*choices: str) -> Callable[[str], str]:
    """Return a converter accepting one of ``choices`` (any case)."""

    def convert(value: str) -> str:
        word = value.strip().lower()
        if word not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return word

    convert.__name__ = "choice"
    return convert


def regex(value: str) -> Pattern[str]:
    """A Python regular expression, compiled."""
    try:
        return re.compile(value.strip())
    except re.error as e:
        raise ValueError(f"bad regular expression {value.strip()!r}: {e}") from None


def string_list(value: str) -> Tuple[str, ...]:
    """Comma-separated words: ``a,b, c`` -> ``("a", "b", "c")``."""
    return tuple(word.strip() for word in value.split(",") if word.strip())


def strip_value(value: str) -> Union[int, Pattern[str]]:
    """Number of leading path components to drop, or a regex to remove from the path."""
    text = value.strip()
    return int(text) if text.isdigit() else regex(text)


def inflight(value: str) -> Union[str, float, None]:
    """How files are hidden while written: a suffix (``.tmp``), a prefix (``.``), a
    directory (``tmp/``), ``NONE`` (-> None), or a number of seconds a watched file must
    stay unchanged (-> float)."""
    text = value.strip()
    if text.upper() == "NONE":
        return None
    if _DURATION.match(text) and text[0].isdigit():
        return duration(text)
    if not text or "/" in text.rstrip("/"):
        raise ValueError(f"bad inflight {value!r} (use .tmp, ., tmp/, NONE or seconds)")
    return text


_SUMS = ("d", "s", "n", "0", "z,d", "z,s")
#: the names v2 (``sum md5``) and sr3 (``identity sha512``) write for the v02 flags
_SUM_NAMES = {"md5": "d", "sha512": "s", "none": "n", "random": "0"}
_SUM_NAMES.update({"cod,md5": "z,d", "cod,sha512": "z,s", "z": "z,d", "cod": "z,d"})


def sum_flag(value: str) -> str:
    """The v02 checksum flag: ``d``, ``s``, ``n``, ``0``, ``z,d`` or ``z,s``, or the name
    v2 and sr3 give it: ``md5``, ``sha512``, ``none``, ``random``, ``cod,md5``, ``cod,sha512``."""
    text = value.strip().lower().replace(" ", "")
    text = _SUM_NAMES.get(text, text)
    if text not in _SUMS:
        names = ", ".join((*_SUMS, *_SUM_NAMES))
        raise ValueError(f"bad sum {value!r} (use one of {names})")
    return text


def suppress(value: str) -> float:
    """Duplicate-suppression lifetime: a duration, ``on`` (= 300 s) or ``off`` (= 0)."""
    word = value.strip().lower()
    if word in _TRUE - {"1"}:
        return 300.0
    if word in _FALSE - {"0"}:
        return 0.0
    return duration(value)


_EVENTS = {"create": "create", "created": "create", "delete": "delete", "deleted": "delete"}
_EVENTS.update({"link": "link", "linked": "link", "modify": "modify", "modified": "modify"})
#: sr3's directory events: accepted, never posted (directories follow their files)
_EVENTS.update({"mkdir": "mkdir", "rmdir": "rmdir"})


def events(value: str) -> Tuple[str, ...]:
    """File events to post: any of ``create,delete,link,modify``, separated by ``,`` or
    ``|`` (sr3 writes ``create|delete``); v2's ``created``... and sr3's ``mkdir``,
    ``rmdir`` too."""
    words = string_list(value.replace("|", ","))
    bad = [w for w in words if w.lower() not in _EVENTS]
    if bad or not words:
        raise ValueError(f"bad events {value!r} (use create,delete,link,modify)")
    return tuple(dict.fromkeys(_EVENTS[w.lower()] for w in words))


def header(value: str) -> Tuple[str, str]:
    """A header to add to posts: ``name=value`` -> ``(name, value)``."""
    name, sep, text = value.strip().partition("=")
    if not sep or not name.strip():
        raise ValueError(f"bad header {value!r} (expected name=value)")
    return name.strip(), text.strip()


_DECLARE_KINDS = ("source", "subscriber", "feeder", "admin", "exchange", "queue", "env")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
#: letters, digits and "-": never "_" nor ".", which end a user's name in its exchanges
#: (``xs_<user>_<suffix>``) and queues (``q_<user>.<name>``)
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")


def user_name(value: str) -> str:
    """A switch user's name: 1-64 letters, digits and ``-``, not starting with ``-``.

    ``_`` and ``.`` are refused because they separate a user's name from the suffix of
    its exchanges and queues: with users ``u`` and ``u_x``, ``u``'s rights on
    ``xs_u_<suffix>`` would cover ``xs_u_x`` (``u`` posting as ``u_x``); with ``u.x``,
    ``u``'s queues ``q_u.<name>`` would cover ``q_u.x...``.  Without them, no two valid
    names can reach each other's exchanges or queues.
    """
    if not _USER_NAME.fullmatch(value):
        raise ValueError(
            f"bad user name {value[:80]!r}: 1-64 letters, digits and '-' only (no '_' or "
            "'.': they separate a user's name from its exchanges' and queues' suffixes)"
        )
    return value


def declare(value: str) -> Tuple[str, str]:
    """``source alice``, ``subscriber bob``, ``exchange xs_foo`` -> ``(kind, name)``;
    ``env NAME=value`` -> ``("env", "NAME=value")``: an environment variable set at
    start-up and usable as ``${NAME}`` in the lines after it (v2, sr3).

    Source and subscriber names must be valid user names (:func:`user_name`).
    """
    words = value.split(None, 1)
    kind = words[0].lower() if words else ""
    if kind == "env" and len(words) == 2:
        name, sep, _ = words[1].partition("=")
        if sep and _ENV_NAME.fullmatch(name.strip()):
            return kind, words[1].strip()
        raise ValueError(f"bad declare {value!r} (expected: env NAME=value)")
    words = value.split()
    if len(words) != 2 or kind not in _DECLARE_KINDS:
        raise ValueError(
            f"bad declare {value!r} (expected one of {', '.join(_DECLARE_KINDS)} + name)"
        )
    if kind in ("source", "subscriber"):
        user_name(words[1])
    return kind, words[1]


def source_hosts(value: str) -> Tuple[str, Tuple[str, ...]]:
    """``<source|*> <host pattern>...`` -> ``(source, patterns)`` (``core.fetchpolicy``)."""
    from sarra.core.fetchpolicy import host_pattern

    words = value.split()
    if len(words) < 2:
        raise ValueError(f"bad source_hosts {value!r} (expected: <source|*> <host pattern>...)")
    return words[0], tuple(host_pattern(w) for w in words[1:])


def source_rate(value: str) -> Tuple[str, int]:
    """``<source|*> <bytes/s>`` -> ``(source, rate)``: a source's bandwidth quota (dd_sara)."""
    words = value.split()
    if len(words) != 2 or (words[0] != "*" and not re.fullmatch(r"[\w.-]{1,64}", words[0])):
        raise ValueError(f"bad source_bandwidth {value!r} (expected: <source|*> <rate, e.g. 2M>)")
    try:
        rate = size(words[1])
    except ValueError:
        rate = 0
    if rate <= 0:
        raise ValueError(f"bad source_bandwidth {value!r}: the rate must be a size above 0")
    return words[0], rate


def route(value: str) -> Tuple[str, str]:
    """``<cluster|*> <broker url>`` -> ``(cluster, url)``: next hop of reports for a cluster."""
    words = value.split()
    if len(words) != 2:
        raise ValueError(f"bad report_route {value!r} (expected: <cluster|*> <amqp url>)")
    return words[0], amqp_url(words[1])


_RELATIVE_TIME = re.compile(r"^\d+(\.\d+)?[smhdw]$")


def point_in_time(value: str) -> str:
    """``2h`` (ago), ``YYYYMMDDHHMMSS`` or ISO 8601; kept as text, resolved when used."""
    text = value.strip()
    if _RELATIVE_TIME.match(text) or (len(text) >= 14 and text[:14].isdigit()):
        return text
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"bad time {value!r} (use 2h, 20261128220000 or 2026-11-28T22:00)"
        ) from None
    return text


log_level = choice("debug", "info", "warning", "error", "critical")
inline_encoding = choice("guess", "text", "binary")

#: the notice formats (``sarra.core.message.FORMATS``)
_FORMATS = ("v02", "v03")


def formats(value: str) -> Tuple[str, ...]:
    """Notice formats to post in: ``v02``, ``v03`` or both (``v02,v03``), in that order."""
    words = tuple(dict.fromkeys(w.lower() for w in string_list(value)))
    bad = [w for w in words if w not in _FORMATS]
    if bad or not words:
        raise ValueError(f"bad post_format {value!r} (use v02, v03 or v02,v03)")
    return words


def only_off(why: str) -> Callable[[str], bool]:
    """A boolean that may only be off here: on is refused with ``why`` (an option of v2
    or sr3 whose "on" would silently do something else here, such as ``dry_run``)."""

    def convert(value: str) -> bool:
        if boolean(value):
            raise ValueError(f"on is not supported: {why}")
        return False

    convert.__name__ = "boolean"
    return convert
