"""Built-in plugins that choose messages: v2's ``msg_delay``, ``msg_skip_old``,
``msg_by_source``, ``msg_by_user`` (and sr3's message delay callback), written for sarra.

``msg_delay`` keeps a message back until it is old enough: v2 put it in its retry
queue (``parent.consumer.msg_to_retry()``); here it fails for now without a report and
goes to the on-disk retry queue, which hands it back after ``retry_delay`` (doubling
each time), until it is old enough or ``retry_ttl`` passes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Optional

from sarra.config.converters import duration
from sarra.core.timestamps import parse_time
from sarra.hooks.base import Host
from sarra.hooks.builtin.base import Builtin
from sarra.hooks.placing import defer

if TYPE_CHECKING:  # pragma: no cover
    from sarra.core.delivery import Delivery


def _age(d: Delivery) -> float:
    return time.time() - parse_time(d.notice.pubtime)


class MsgDelay(Builtin):
    """``on_message msg_delay`` (``msg_delay 30``: seconds, default 300): a message is
    worked only once it is that old."""

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.delay = float(self.setting("msg_delay", duration, 300.0))

    def on_message(self, d: Delivery) -> Optional[bool]:
        age = _age(d)
        if age >= self.delay:
            return True
        self.log.debug("%s is %.1fs old, waiting for %.0fs", d.describe(), age, self.delay)
        defer(d, self.label)
        return False


class MsgSkipOld(Builtin):
    """``on_message msg_skip_old`` (``msg_skip_threshold 10``: seconds, default 3600):
    a message older than that is rejected rather than worked late."""

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.threshold = float(self.setting("msg_skip_threshold", duration, 3600.0))

    def on_message(self, d: Delivery) -> Optional[bool]:
        lag = _age(d)
        if lag <= self.threshold:
            return True
        self.log.info("msg_skip_old: excessive lag %.3gs, skipping %s", lag, d.describe())
        return False


class MsgBySource(Builtin):
    """``on_message msg_by_source`` (``msg_by_source alice bob``, repeatable): only the
    messages whose ``source`` header is one of those."""

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.sources = frozenset(self.words("msg_by_source", required=True))

    def on_message(self, d: Delivery) -> Optional[bool]:
        return d.notice.headers.get("source") in self.sources


class MsgByUser(Builtin):
    """``on_message msg_by_user`` (``msg_by_user alice``, repeatable): only the reports
    of those consumers (a post: its ``user`` header, as in v2)."""

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.users = frozenset(self.words("msg_by_user", required=True))

    def on_message(self, d: Delivery) -> Optional[bool]:
        report = d.notice.report
        user = report.user if report is not None else d.notice.headers.get("user")
        return user in self.users
