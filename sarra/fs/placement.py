"""Where a notice's file goes on the local disk, and the guard against escaping it.

``target_path`` applies the placement options captured by the accept mask that chose
the message (``directory``, ``mirror``, ``strip``, ``flatten``) plus the ``rename``
header, and refuses any path that would leave the target directory: ``..`` components,
absolute paths after stripping, and parents that are symbolic links pointing outside.
``inflight_path`` names the temporary file a download is written to.

Every value a notice puts into a path is hostile: ``${SOURCE}`` must be one plain path
component (``check_name``), each component of the relative path at most NAME_MAX
bytes and the whole below PATH_MAX, checked before anything touches the disk.
``split_directory`` cuts a ``directory`` pattern into the configured tree root (fixed
text and environment variables, trusted) and the per-message part below it; the writes
themselves are confined to that root by ``sarra.fs.safefs``.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Tuple

from sarra.core.errors import PathError
from sarra.core.message import Notice
from sarra.core.timestamps import time_variable
from sarra.fs.safefs import Place, check_name, check_relative, resolves_inside

_VAR = re.compile(r"\$\{(\w+|%[^}]*)\}")  # a name, or sr3's time variable ${%Y%m%d}
#: variables taken from the notice: each must expand to one safe path component
NOTICE_VARS = frozenset({"SOURCE"})
#: per-message variables: a directory component using one is below the tree root
MESSAGE_VARS = NOTICE_VARS | {"YYYYMMDD", "YYYY", "MM", "DD", "HH"}


def message_values(notice: Notice, extra: Optional[Mapping[str, str]] = None) -> dict:
    """Per-message variables for ``directory`` patterns (``${SOURCE}``, ``${YYYYMMDD}``...)."""
    stamp = time.strftime("%Y%m%d%H", time.gmtime())
    values = {
        "SOURCE": notice.headers.get("source", ""),
        "YYYYMMDD": stamp[:8],
        "YYYY": stamp[:4],
        "MM": stamp[4:6],
        "DD": stamp[6:8],
        "HH": stamp[8:10],
    }
    values.update(extra or {})
    return values


def expand_directory(template: str, values: Mapping[str, str]) -> str:
    """``template`` with its ``${NAME}`` replaced; a value from the notice must be one
    plain path component.

    Raises:
        PathError: an unknown variable, or a notice value such as ``../x``, ``a/b``,
            ``..``, empty, with a control character or over NAME_MAX bytes.
    """

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name in values:
            value = values[name]
            if name in NOTICE_VARS:
                check_name(value, f"${{{name}}} value")
            return value
        if name in os.environ:
            return os.environ[name]
        when = time_variable(name)
        if when is not None:
            return when
        raise PathError(f"unknown variable ${{{name}}} in directory {template!r}")

    return _VAR.sub(sub, template)


def split_directory(template: str, values: Mapping[str, str]) -> Tuple[str, str]:
    """``(root, below)``: the leading components of ``template`` that use no
    per-message variable (the tree root, from the configuration), and the expanded rest
    (``/``-separated, checked by ``check_relative``).

    Raises:
        PathError: see ``expand_directory`` and ``check_relative``.
    """
    parts = template.split("/")
    cut = len(parts)
    for i, part in enumerate(parts):
        if any(name in MESSAGE_VARS or name[0] == "%" for name in _VAR.findall(part)):
            cut = i
            break
    head = "/".join(parts[:cut])
    root = expand_directory(head, values) if "$" in head else head
    root = os.path.expanduser(root or ("/" if template.startswith("/") else "."))
    below = expand_directory("/".join(parts[cut:]), values) if cut < len(parts) else ""
    return root, "/".join(check_relative(below))


def place_of(root: str, relative: str) -> Place:
    """Where ``root/relative`` goes, ``relative`` checked (``check_relative``).

    Raises:
        PathError: a bad component or a path too long.
    """
    parts = check_relative(relative)
    if not parts:
        raise PathError(f"unusable path {relative!r}")
    return Place(root, "/".join(parts[:-1]), parts[-1])


def _strip(rel: str, strip: Any) -> str:
    if isinstance(strip, int):
        parts = rel.split("/")
        return "/".join(parts[strip:]) if strip < len(parts) else ""
    if strip:
        return re.sub(strip, "", rel, count=1)
    return rel


def relative_target(notice: Notice, *, mirror: bool, strip: Any = 0, flatten: str = "/") -> str:
    """The path below the target directory, ``/``-separated, checked for escapes.

    Raises:
        PathError: the path is empty, absolute, or contains ``..``.
    """
    rel = notice.headers.get("rename") or notice.relpath
    if rel.endswith("/"):
        rel = rel + notice.relpath.rsplit("/", 1)[-1]
    rel = _strip(rel.lstrip("/"), strip)
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if "\0" in rel or not parts:
        raise PathError(f"unusable path {notice.relpath!r}")
    if ".." in parts:
        raise PathError(f"path escapes the target directory: {notice.relpath!r}")
    if not mirror:
        parts = [flatten.join(parts)] if flatten != "/" else parts[-1:]
    return "/".join(parts)


def target_path(root: str, relative: str) -> Path:
    """``root/relative``, checked: components (``check_relative``), and no existing
    parent a link leading outside ``root``.  The writers do not rely on this check (a
    link may be planted after it): they write through ``sarra.fs.safefs``.

    Raises:
        PathError: a bad component, or a parent leading outside ``root``.
    """
    base = Path(root).expanduser()
    parts = check_relative(relative)
    if not parts:
        raise PathError(f"unusable path {relative!r}")
    if not resolves_inside(str(base), parts[:-1], "."):
        raise PathError(f"path escapes the target directory through a link: {relative!r}")
    return base.joinpath(*parts)


def inflight_path(target: Path, inflight: Optional[str]) -> Path:
    """Temporary name a download is written to before its rename into ``target``.

    ``.tmp`` (any string starting with ``.`` and longer than 1): suffix; ``.``: prefix;
    ``tmp/`` (ends with ``/``): sub-directory; ``NONE``/None: the target itself.
    """
    if not inflight or inflight == "NONE":
        return target
    if inflight.endswith("/"):
        return target.parent / inflight.rstrip("/") / target.name
    if inflight == ".":
        return target.parent / ("." + target.name)
    return target.parent / (target.name + inflight)
