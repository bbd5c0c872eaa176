"""New and changed files of a remote server as deliveries: the source of dd_poll's flow.

Every ``interval`` seconds a pass lists each polled directory (``sarra.poll.walker``);
a file is posted when its name is not an inflight one (``inflight``: a ``.tmp`` suffix
or a leading dot: still being written), it matches the accept/reject masks of its
directory (v2 rules: against its *name*; with none matching, ``accept_unmatch``), its
listed time (when the
listing gives one) is within ``file_time_limit``, and its listing line differs from
the one remembered (``sarra.poll.state``): new, or changed in size or time.

The pass is handed to the flow a batch at a time, as the listing streams in: posts are
published (confirmed) and settled while the listing goes on, so a long listing never
sits in memory.  ``settle`` records a file once its post is confirmed (or an
``on_message`` hook refused it), never when the post failed; ``flush`` commits what a
batch recorded.  Between passes the connection to the server is closed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

from sarra.core.delivery import FAILED, Delivery
from sarra.core.errors import PathError, escape
from sarra.core.message import Notice
from sarra.poll.state import PollState
from sarra.poll.walker import Found, Walk
from sarra.transfer import Transfer

log = logging.getLogger(__name__)

__all__ = ["Polled", "PollSource"]

#: longest a gather keeps reading a listing that brings nothing new (seconds): the flow
#: must see a stop request and keep its broker connection alive meanwhile
SCAN_SLICE = 1.0


@dataclass(frozen=True)
class Polled:
    """One polled directory (a server path, ``${YYYYMMDD}``... expanded at each pass by
    ``expand``) and the masks of its accept/reject lines."""

    directory: str
    masks: Sequence[Any]


class PollSource:
    """A Flow source (``gather``/``settle``/``flush``) over passes of listings.

    ``make_notice(found)`` builds the post of a file; ``expand(directory)`` gives the
    server path of a polled directory at the time of the pass.
    """

    done = False

    def __init__(
        self,
        transfer: Transfer,
        polled: Sequence[Polled],
        state: PollState,
        make_notice: Callable[[Found], Notice],
        *,
        interval: float,
        expand: Callable[[str], str] = lambda d: d,
        recursive: bool = True,
        accept_unmatch: bool = False,
        file_time_limit: float = 0.0,
        inflight: Any = ".tmp",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.transfer = transfer
        self.polled = list(polled)
        self.state = state
        self.make_notice = make_notice
        self.interval = interval
        self.expand = expand
        self.recursive = recursive
        self.accept_unmatch = accept_unmatch
        self.file_time_limit = file_time_limit
        self.inflight = inflight if isinstance(inflight, str) and inflight != "NONE" else None
        self.clock = clock
        self.sleep = sleep
        self.next_pass = 0.0
        self.passes = 0
        self.posted = 0
        self._found: Optional[Iterator[tuple]] = None
        self._walks: List[Walk] = []
        self._pass_start = 0.0
        self._new = 0
        self._lines: Dict[int, tuple] = {}  # id(delivery) -> (path, line) until settled

    # ---------------------------------------------------------------- Flow source
    def gather(self, max_count: int, timeout: float) -> List[Delivery]:
        if self._found is None:
            wait = self.next_pass - self.clock()
            if wait > 0:
                self.sleep(min(wait, timeout))
                return []
            self._start_pass()
        assert self._found is not None
        out: List[Delivery] = []
        until = time.monotonic() + SCAN_SLICE
        for found, masks in self._found:
            d = self._consider(found, masks)
            if d is not None:
                out.append(d)
            if len(out) >= max_count or time.monotonic() > until:
                return out
        self._end_pass()
        return out

    def settle(self, d: Delivery) -> None:
        path_line = self._lines.pop(id(d), None)
        if path_line is not None and d.outcome != FAILED:  # posted, or refused by a hook
            self.state.record(path_line[0], path_line[1], self.clock())
            self.posted += 1

    def flush(self) -> None:
        self.state.commit()

    def close(self) -> None:
        self.transfer.close()
        self.state.close()

    # ---------------------------------------------------------------- passes
    def _start_pass(self) -> None:
        self._pass_start = self.clock()
        self.next_pass = self._pass_start + self.interval
        self._new = 0
        self._walks = []
        self._found = self._every_file()

    def _every_file(self) -> Iterator[tuple]:
        for p in self.polled:
            walk = Walk(self.transfer, self.expand(p.directory), self.recursive)
            self._walks.append(walk)
            for found in walk:
                yield found, p.masks

    def _end_pass(self) -> None:
        self._found = None
        self.passes += 1
        self.transfer.close()  # a connection idle until the next pass may not survive it
        gone = self.state.expire(self.clock())
        listed = sum(w.listed for w in self._walks)
        refused = sum(w.refused for w in self._walks)
        failed = sum(w.failed for w in self._walks)
        log.info(
            "poll pass %d: %d entries listed in %.1f s, %d new or changed%s%s%s",
            self.passes,
            listed,
            self.clock() - self._pass_start,
            self._new,
            f", {refused} names refused" if refused else "",
            f", {failed} listings failed" if failed else "",
            f", {gone} forgotten" if gone else "",
        )

    def _consider(self, found: Found, masks: Sequence[Any]) -> Optional[Delivery]:
        """The delivery of a new or changed file that the masks accept, else None."""
        e = found.entry
        if self._in_flight(e.name) or not self._accepted(e.name, masks):
            return None
        now = self.clock()
        if self.file_time_limit and e.mtime is not None and now - e.mtime > self.file_time_limit:
            return None
        known = self.state.lookup(found.path)
        if known is not None and known[0] == e.line:
            self.state.touch(found.path, known[1], now)
            return None
        try:
            d = Delivery(self.make_notice(found))
        except PathError as refused:  # a path v02 cannot carry (names were checked already)
            log.debug("poll: not posting %s: %s", escape(found.path, 200), refused)
            return None
        self._lines[id(d)] = (found.path, e.line)
        self._new += 1
        return d

    def _in_flight(self, name: str) -> bool:
        """A name the ``inflight`` convention says is still being written (a ``.tmp``
        suffix, a leading dot): posted once renamed, never before."""
        if self.inflight is None or self.inflight.endswith("/"):
            return False
        if self.inflight == ".":
            return name.startswith(".")
        return name.endswith(self.inflight)

    def _accepted(self, name: str, masks: Sequence[Any]) -> bool:
        for mask in masks:
            if mask.regex.match(name):
                return bool(mask.accept)
        return self.accept_unmatch
