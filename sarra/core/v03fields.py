"""v03 fields -> v02 headers: the decoding half of the v03 mapping (``sarra.core.v03``).

One handler per v03 field that has a v02 form (:data:`FIELDS`), each listing the headers
(``"h"``) and ``Notice.extra`` values (``"x"``) that field becomes; every other field is
a header when its value is text, an extra (JSON text) when it is not.  A handler sees the
whole object, since some fields depend on others (a ``fileOp`` link names the sum, so an
``identity`` beside it is kept as it came; ``blocks`` makes ``size`` a block's size).
``doc/v03.rst`` has the table.  Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Callable, List, Tuple

from sarra.core.errors import MessageError
from sarra.core.notice import Report, _excerpt

MANDATORY = ("pubTime", "relPath", "baseUrl")
_HASH_METHODS = {"md5": ("d", 16), "sha512": ("s", 64), "md5name": ("n", 16)}
_TEXT_METHODS = {"random": "0", "arbitrary": "a"}
_COD = {"md5": "d", "sha512": "s"}
BLOCK_KEYS = ("method", "size", "count", "remainder", "number")
_BLOCKS = {"inplace": "i", "partitioned": "p"}
_FILE_OPS = ("remove", "directory", "link", "hlink", "rename")
REPORT_KEYS = frozenset({"code", "message", "timeCompleted", "host", "user", "elapsedTime"})

Out = List[Tuple[str, str, str]]  # ("h" header | "x" extra, name, text)


def bad(what: str, value: Any) -> MessageError:
    return MessageError(f"v03 {what}: {_excerpt(repr(value))}")


def v02_time(value: str) -> str:
    """A v03 time without its ``T`` (``20240102T030405.5`` -> ``20240102030405.5``)."""
    return value[:8] + value[9:] if len(value) > 8 and value[8] == "T" else value


def _hex(value: Any, size: int, what: str) -> str:
    if not isinstance(value, str):
        raise bad(f"{what} value is not text", value)
    try:
        raw = base64.b64decode(value.replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        raise bad(f"{what} value is not base64", value) from None
    if len(raw) != size:
        raise bad(f"{what} value is {len(raw)} bytes, not {size}", value)
    return raw.hex()


def _identity_sum(identity: Any) -> str | None:
    """The v02 ``sum`` of an identity, None for a method v02 has no letter for.

    Raises:
        MessageError: not an object, or a known method with a malformed value.
    """
    if not isinstance(identity, dict):
        raise bad("identity is not an object", identity)
    method, value = identity.get("method"), identity.get("value")
    if method in _HASH_METHODS and len(identity) == 2:
        letter, size = _HASH_METHODS[method]
        return f"{letter},{_hex(value, size, str(method))}"
    if method in _TEXT_METHODS and isinstance(value, str) and len(identity) == 2:
        return f"{_TEXT_METHODS[method]},{value}"
    if method == "cod" and value in _COD and len(identity) == 2:
        return f"z,{_COD[value]}"
    return None


def _file_op(op: Any, relpath: str) -> tuple[str | None, dict[str, str], dict[str, Any]]:
    """(sum, headers, left-over keys) of a ``fileOp`` object.

    Raises:
        MessageError: not an object, or a known key whose value is not text.
    """
    if not isinstance(op, dict):
        raise bad("fileOp is not an object", op)
    for key in _FILE_OPS:
        if key in op and not isinstance(op[key], str):
            raise bad(f"fileOp {key} is not text", op)
    used = {"remove", "directory"} & set(op)
    letter = None
    if "remove" in op:
        letter = "r" if "directory" in op else "R"
    elif "link" in op or "hlink" in op:
        key = "link" if "link" in op else "hlink"
        used = {key}
        letter = "L" if key == "link" else "l"
    elif "directory" in op:
        letter = "m"
    # rename first: sr3 writes a renamed link's fileOp as {"rename": ..., "link": ...}
    headers = {"oldname": op["rename"]} if "rename" in op else {}
    if letter in ("L", "l"):
        target = op["link" if letter == "L" else "hlink"]
        headers["sum"] = f"{letter},{hashlib.sha512(target.encode('utf-8')).hexdigest()}"
        headers["link"] = target
    elif letter is not None:
        name = [p for p in relpath.split("/") if p][-1:] or [relpath]
        headers["sum"] = f"{letter},{hashlib.sha512(name[0].encode('utf-8')).hexdigest()}"
    if "rename" in op:
        used.add("rename")
    return letter, headers, {k: v for k, v in op.items() if k not in used}


def _size(value: Any) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 63:
        raise bad("size is not a byte count", value)
    return value


def _blocks_parts(blocks: Any) -> str | None:
    """``parts`` of a ``blocks`` object, None when v02 cannot say it (a manifest...)."""
    if not isinstance(blocks, dict) or set(blocks) != set(BLOCK_KEYS):
        return None
    numbers = [blocks[k] for k in BLOCK_KEYS[1:]]
    if blocks["method"] not in _BLOCKS or not all(
        isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 1 << 63 for n in numbers
    ):
        return None
    return ",".join([_BLOCKS[blocks["method"]], *map(str, numbers)])


def _dumps(value: Any) -> str:
    return json.dumps(value)


def _has_op(obj: Mapping[str, Any]) -> bool:
    op = obj.get("fileOp")
    return isinstance(op, dict) and any(k in op for k in ("remove", "directory", "link", "hlink"))


def _identity(name: str, value: Any, obj: Mapping[str, Any], relpath: str) -> Out:
    # an operation (link, removal...) names the sum itself: a content identity beside
    # it, or an older ``integrity`` beside ``identity``, is kept as it came
    superseded = _has_op(obj) or (name == "integrity" and "identity" in obj)
    found = None if superseded else _identity_sum(value)
    return [("x", name, _dumps(value))] if found is None else [("h", "sum", found)]


def _file_op_field(name: str, value: Any, obj: Mapping[str, Any], relpath: str) -> Out:
    _, headers, rest = _file_op(value, relpath)
    out = [("h", key, text) for key, text in headers.items()]
    return out + [("x", name, _dumps(rest))] if rest else out


def _size_field(name: str, value: Any, obj: Mapping[str, Any], relpath: str) -> Out:
    size = _size(value)
    if "blocks" in obj or "parts" in obj:  # the size of a block: blocks says the rest
        return [("x", name, _dumps(value))]
    return [("h", "parts", f"1,{size},1,0,0")]


def _blocks_field(name: str, value: Any, obj: Mapping[str, Any], relpath: str) -> Out:
    parts = _blocks_parts(value)
    if parts is None or "parts" in obj:
        return [("x", name, _dumps(value))]
    return [("h", "parts", parts)]


def _time_field(name: str, value: Any, obj: Mapping[str, Any], relpath: str) -> Out:
    if isinstance(value, str):
        return [("h", name, v02_time(value))]
    return [("x", name, _dumps(value))]


#: the v03 fields that say what a legacy v02 field in a v03 body would
_LEGACY_WINS = {"sum": ("identity", "integrity"), "parts": ("size", "blocks")}


def _legacy(name: str, value: Any, obj: Mapping[str, Any], relpath: str) -> Out:
    """``sum``/``parts`` written in v03 bodies by v2 (sr3 accepts them): kept as the v02
    header unless the v03 field that says the same is there too."""
    if not isinstance(value, str):
        return [("x", name, _dumps(value))]
    if any(w in obj for w in _LEGACY_WINS[name]) or (name == "sum" and _has_op(obj)):
        return []
    return [("h", name, value)]


def _skip(name: str, value: Any, obj: Mapping[str, Any], relpath: str) -> Out:
    return []


def _report_message(name: str, value: Any, obj: Mapping[str, Any], relpath: str) -> Out:
    out = [("h", "message", value["message"])] if isinstance(value.get("message"), str) else []
    rest = {k: v for k, v in value.items() if k not in REPORT_KEYS}
    return out + [("x", name, _dumps(rest))] if rest else out


Handler = Callable[[str, Any, Mapping[str, Any], str], Out]
FIELDS: dict[str, Handler] = {
    "identity": _identity,
    "integrity": _identity,
    "fileOp": _file_op_field,
    "size": _size_field,
    "blocks": _blocks_field,
    "mtime": _time_field,
    "atime": _time_field,
    "sum": _legacy,
    "parts": _legacy,
    "report": _report_message,
    **dict.fromkeys(MANDATORY, _skip),
}


def report_of(value: Any) -> Report:
    """The report fields of a v03 ``report`` object (sr3: code, timeCompleted, message).

    Raises:
        MessageError: not an object, no 3-digit code, or a field of the wrong type.
    """
    if not isinstance(value, dict):
        raise bad("report is not an object", value)
    code = value.get("code")
    if isinstance(code, str) and code.isascii() and code.isdigit():
        code = int(code)
    if not isinstance(code, int) or isinstance(code, bool) or not 0 <= code <= 999:
        raise bad("report code is not a 3-digit status", value)
    texts = [value.get(k, "") for k in ("host", "user", "elapsedTime", "timeCompleted")]
    if not all(isinstance(t, str) for t in texts) or not isinstance(value.get("message", ""), str):
        raise bad("report field is not text", value)
    host, user, elapsed, completed = texts
    return Report(code, host, user, elapsed, v02_time(completed))
