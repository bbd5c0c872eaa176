"""Built-in logging plugins: v2's ``msg_log``, ``file_log``, ``post_log``, ``hb_log`` and
sr3's ``log`` callback, written for sarra (one log line at the moment each names).

The values logged come from notices: the log handlers escape control characters and
cut long lines (``sarra.logs.setup.SafeTextFilter``), so nothing here needs to.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Optional

import sarra
from sarra.core.message import encode_path, join_url
from sarra.core.timestamps import parse_time
from sarra.hooks.base import Host
from sarra.hooks.builtin.base import Builtin

if TYPE_CHECKING:  # pragma: no cover
    from sarra.core.delivery import Delivery
    from sarra.core.message import Notice


def _lag(notice: Notice) -> float:
    return time.time() - parse_time(notice.pubtime)


def _url(notice: Notice) -> str:
    """The URL as on the wire (``%20``, ``%23``), as v2's plugins logged it."""
    return join_url(notice.baseurl, encode_path(notice.relpath))


def _headers(notice: Notice) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(notice.headers.items()))


class MsgLog(Builtin):
    """``on_message msg_log``: one line per message accepted, as v2 wrote it."""

    def on_message(self, d: Delivery) -> Optional[bool]:
        n = d.notice
        self.log.info(
            "msg_log received: %s %s topic=%s lag=%.3g %s",
            n.pubtime,
            _url(n),
            n.topic,
            _lag(n),
            _headers(n),
        )
        return True


class FileLog(Builtin):
    """``on_file file_log``: one line per file in place."""

    def on_file(self, d: Delivery) -> None:
        self.log.info("file_log downloaded to: %s", d.local_path)


class PostLog(Builtin):
    """``on_post post_log``: one line per notice about to be posted."""

    def on_post(self, d: Delivery) -> None:
        n = d.post_notice if d.post_notice is not None else d.notice
        self.log.info("post_log notice=%s %s headers=%s", n.pubtime, _url(n), _headers(n))


class HbLog(Builtin):
    """``on_heartbeat hb_log``: one line at each housekeeping."""

    def on_housekeeping(self) -> None:
        self.log.info("heartbeat. sarra version is: %s", sarra.__version__)


#: sr3 ``logEvents`` words and the events they name here
_EVENTS = {
    "after_accept": "on_message",
    "after_work": "on_file",
    "after_post": "on_post",
    "on_housekeeping": "on_housekeeping",
    "on_start": "on_start",
    "on_stop": "on_stop",
}


def _event_words(value: str) -> frozenset:
    words = value.replace("|", ",").replace(" ", ",").split(",")
    return frozenset(w for w in words if w)


class Log(Builtin):
    """sr3 ``callback log``: lines at the moments ``logEvents`` names (default
    ``after_accept,after_work,after_post,on_housekeeping``, as sr3), and a count of what
    it saw at each housekeeping."""

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        default = frozenset({"after_accept", "after_work", "after_post", "on_housekeeping"})
        chosen = self.setting("logEvents", _event_words, default)
        words = set(chosen) if not isinstance(chosen, str) else _event_words(chosen)
        self.events = {_EVENTS[w] for w in words if w in _EVENTS}
        self.accepted = self.done = self.posted = 0
        self.verb = "downloaded" if host.program in ("subscribe", "sara") else "handled"

    def handles(self, event: str) -> bool:
        return event in self.events

    def on_start(self) -> None:
        self.log.info("starting %s %s", self.host.program, self.host.options.config or "")

    def on_stop(self) -> None:
        self.log.info("stopping %s %s", self.host.program, self.host.options.config or "")

    def on_message(self, d: Delivery) -> Optional[bool]:
        self.accepted += 1
        self.log.info("accepted: (lag: %.2f) %s", _lag(d.notice), _url(d.notice))
        return True

    def on_file(self, d: Delivery) -> None:
        self.done += 1
        self.log.info("%s ok: %s", self.verb, d.local_path)

    def on_post(self, d: Delivery) -> None:
        self.posted += 1
        n = d.post_notice if d.post_notice is not None else d.notice
        self.log.info("posted: %s", _url(n))

    def on_housekeeping(self) -> None:
        self.log.info(
            "housekeeping: %d accepted, %d %s, %d posted",
            self.accepted,
            self.done,
            self.verb,
            self.posted,
        )
        self.accepted = self.done = self.posted = 0
