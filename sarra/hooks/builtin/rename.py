"""Built-in plugins that change where a file goes or where it comes from: v2's
``msg_rename_whatfn``, ``msg_rename_dmf``, ``msg_renamer``, ``msg_replace_new_dir``,
``msg_http_to_https`` (and the sr3 callbacks of the same jobs), written for sarra, and
the accelerator plugins, which sarra does not need.

The names come from the notice: :func:`sarra.hooks.placing.move_to` checks what these
produce as it checks a notice's path.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Dict, Optional

from sarra.core.errors import ConfigError
from sarra.hooks.base import Host
from sarra.hooks.builtin.base import Builtin
from sarra.hooks.placing import move_to

if TYPE_CHECKING:  # pragma: no cover
    from sarra.core.delivery import Delivery


class RenameWhatFn(Builtin):
    """``on_message msg_rename_whatfn``: the file name cut at its first ``:``
    (Sundew's WHATFN: ``AACN27:pxatx:CWAO:...`` is written as ``AACN27``)."""

    def on_message(self, d: Delivery) -> Optional[bool]:
        new_dir, new_file = self.where(d)
        short = new_file.split(":", 1)[0]
        if short and short != new_file:
            move_to(d, new_dir, short)
        return True


class RenameDatestamp(Builtin):
    """``on_message msg_rename_dmf`` (or ``msg_renamer``): ``:YYYYmmddHHMMSS`` (local
    time of reception) added to the file name."""

    def on_message(self, d: Delivery) -> Optional[bool]:
        new_dir, new_file = self.where(d)
        move_to(d, new_dir, new_file + time.strftime(":%Y%m%d%H%M%S", time.localtime()))
        return True


class ReplaceNewDir(Builtin):
    """``on_message msg_replace_new_dir`` (``msg_replace_new_dir old,new``, repeatable):
    ``old`` replaced by ``new`` in the directory the file goes to, and in the
    ``oldname``/``newname``/``link`` headers."""

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        raw = host.settings.declare("msg_replace_new_dir") or []
        self.pairs = []
        for line in raw:
            old, sep, new = line.partition(",")
            if not sep or not old:
                where = host.settings.where("msg_replace_new_dir")
                raise ConfigError(f"msg_replace_new_dir {line!r}: expected old,new", where)
            self.pairs.append((old, new))
        if not self.pairs:
            raise ConfigError("option msg_replace_new_dir is needed (msg_replace_new_dir old,new)")

    def on_message(self, d: Delivery) -> Optional[bool]:
        new_dir, new_file = self.where(d)
        moved = new_dir
        changes: Dict[str, str] = {}
        for old, new in self.pairs:
            moved = moved.replace(old, new)
            for name in ("oldname", "newname", "link"):
                value = changes.get(name, d.notice.headers.get(name))
                if value is not None:
                    changes[name] = value.replace(old, new)
        if changes:
            d.notice = d.notice.with_headers(changes)
        if moved != new_dir:
            move_to(d, moved, new_file)
        return True


class HttpToHttps(Builtin):
    """``on_message msg_http_to_https``: fetch over https what is announced over http."""

    def on_message(self, d: Delivery) -> Optional[bool]:
        base = d.notice.baseurl
        if base.startswith("http:"):
            d.notice = d.notice.replace(baseurl="https:" + base[len("http:") :])
        return True


class Accelerator(Builtin):
    """``plugin accel_wget`` / ``accel_scp`` / ``accel_cp``: v2 handed big files to
    another program; sarra streams them itself (and in parallel with ``threads`` or
    ``instances``), so these do nothing but say so once."""

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.log.info("accelerator plugins are not needed: sarra's transfers are built in")

    def handles(self, event: str) -> bool:
        return False
