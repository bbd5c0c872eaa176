"""Where a plugin sees a file going, and how its changes go back into the delivery.

v2 and sr3 plugins read and change ``new_dir``/``new_file`` (the directory and name the
file is written to) and the message's headers.  :func:`location` gives the first from
the role's placement rules (``Host.locate``, which sets ``delivery.place``: the tree root
from the configuration plus the checked path below it); :func:`move_to` takes a
plugin's new values back.  A plugin is trusted code (it is configuration), but the
names it returns are mostly built from the notice, so they are checked as the placement
rules check a notice's path: a name is one component, without ``/`` or NUL, not
``.``/``..``, at most 255 bytes (control characters are allowed in names, as in a
notice's; log lines escape them).  A directory inside the configured tree
stays confined to it; a directory the plugin chose elsewhere becomes the tree root.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Tuple

from sarra.core.errors import PathError
from sarra.core.message import Notice

if TYPE_CHECKING:  # pragma: no cover
    from sarra.core.delivery import Delivery

NAME_MAX = 255


def check_component(name: str, what: str = "file name") -> str:
    """``name`` when it is one usable path component.

    Raises:
        PathError: empty, ``.``, ``..``, a ``/`` or a NUL, too long.
    """
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\0" in name:
        raise PathError(f"plugin gave an unusable {what}: {str(name)[:80]!r}")
    if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise PathError(f"plugin gave a {what} longer than {NAME_MAX} bytes: {name[:40]!r}...")
    return name


def location(d: Delivery, locate: Optional[Callable[[Delivery], None]]) -> Tuple[str, str]:
    """``(new_dir, new_file)`` of ``d``: where its file goes (or went).

    Raises:
        PathError: the placement rules refuse the notice's path.
    """
    if d.place is None and d.local_path is None and locate is not None:
        locate(d)
    if d.place is not None:
        return os.path.normpath(os.path.join(d.place.root, d.place.dir)), d.place.name
    if d.local_path is not None:
        return str(Path(d.local_path).parent), Path(d.local_path).name
    rel = d.notice.relpath.lstrip("/")
    return os.path.dirname(rel) or ".", os.path.basename(rel)


def move_to(d: Delivery, new_dir: str, new_file: str) -> None:
    """Send ``d``'s file to ``new_dir/new_file`` (a plugin's choice).

    Raises:
        PathError: a bad name or directory component.
    """
    check_component(new_file)
    if not isinstance(new_dir, str) or not new_dir or "\0" in new_dir:
        raise PathError(f"plugin gave an unusable directory: {str(new_dir)[:80]!r}")
    target = os.path.normpath(new_dir)
    if d.place is None:
        d.local_path = Path(target, new_file)
        return
    root, below = d.place.root, ""
    rel = os.path.relpath(target, os.path.normpath(root))
    if rel == ".." or rel.startswith("../"):
        root = target  # the plugin chose another tree: its directory is the root
    elif rel != ".":
        below = "/".join(check_component(p, "directory name") for p in rel.split("/"))
    d.place = dataclasses.replace(d.place, root=root, dir=below, name=new_file)
    d.local_path = d.place.path


def received_from(d: Delivery) -> str:
    """The exchange ``d`` was consumed from (``""`` for a local source)."""
    return str(d.received.exchange) if d.received is not None else ""


def defer(d: Delivery, label: str) -> None:
    """A plugin asked for ``d`` to be tried again later: failed, kept in the retry queue,
    no report to the source (nothing went wrong)."""
    d.fail(f"deferred by plugin {label}", code=503)
    d.report = None


def header_changes(before: Mapping[str, str], after: Mapping[Any, Any]) -> Dict[str, Any]:
    """What a plugin changed in a copy of the headers: ``{name: value or None}``.

    Values that are not text are written as text (v2 plugins store numbers); names must
    be text.

    Raises:
        TypeError: a header name that is not text.
    """
    changes: Dict[str, Any] = {name: None for name in before if name not in after}
    for name, value in after.items():
        if not isinstance(name, str):
            raise TypeError(f"header names must be text, not {name!r}")
        text = value if isinstance(value, str) else str(value)
        if before.get(name) != text:
            changes[name] = text
    return changes


def with_headers(notice: Notice, before: Mapping[str, str], after: Mapping[Any, Any]) -> Notice:
    """``notice`` with what a plugin changed in a copy of its headers."""
    changes = header_changes(before, after)
    return notice.with_headers(changes) if changes else notice
