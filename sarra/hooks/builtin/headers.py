"""v2's ``post_override`` plugin (sr3's ``accept.postoverride``), written for sarra: the
headers of each notice about to be posted, set or removed.

``post_override <header> <value>`` sets a header, ``post_override_del <header>`` removes
one (both repeatable), as a pump re-distributing beyond the original destinations does
(``post_override to_clusters ACME``, ``post_override_del from_cluster``).  The headers
that say what the file is (``sum``, ``parts``) cannot be changed: a downstream consumer
verifies the file against them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional

from sarra.core.errors import ConfigError
from sarra.hooks.base import Host
from sarra.hooks.builtin.base import Builtin

if TYPE_CHECKING:  # pragma: no cover
    from sarra.core.delivery import Delivery

#: headers that describe the file itself
FIXED = frozenset({"sum", "parts", "identity", "blocks"})


class PostOverride(Builtin):
    """``on_post post_override``: set (``post_override``) and remove
    (``post_override_del``) headers of each notice posted."""

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        settings = host.settings
        self.changes: Dict[str, Optional[str]] = {}
        for line in settings.declare("post_override") or []:
            name, _, value = line.strip().partition(" ")
            if not name or not value.strip():
                raise ConfigError(
                    "post_override needs a header and a value (post_override to_clusters ACME)",
                    settings.where("post_override"),
                )
            self.changes[name] = value.strip()
        for name in self.words("post_override_del"):
            self.changes[name] = None
        fixed = sorted(FIXED.intersection(self.changes))
        if fixed:
            where = settings.where("post_override") or settings.where("post_override_del")
            raise ConfigError(f"post_override cannot change {', '.join(fixed)}", where)

    def on_post(self, d: Delivery) -> None:
        if d.post_notice is not None and self.changes:
            d.post_notice = d.post_notice.with_headers(self.changes)
