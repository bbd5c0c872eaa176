"""``WatchSource``: the Flow source of dd_watch, file events in, deliveries to post out.

Turns ``sarra.watch.watcher.FileEvent`` objects into notices with the same ``NoticeMaker`` as
dd_post: "file" -> the file's post (one per block), "link" -> ``L``, "remove" -> ``R``,
"rename" -> the spec 8.4 pair (``R`` + ``newname``, then the new post + ``oldname``).
A directory renamed within the tree gives, after the files below it, one ``R`` for the
old directory with ``newname`` (spec 8.4); a removed directory one ``R`` after its files.
Accept/reject masks and ``events`` apply to local paths; a rename whose old name is
rejected becomes a plain post, one whose new name is rejected a plain removal.

Never lose an event: the watcher has no broker to redeliver what was not posted, so
this source keeps it.  A post the broker did not confirm is kept in memory and offered
again after ``retry_delay`` (in order, before newer events), unless the disk says it is
stale by then (a file post whose file is gone, a removal whose path exists again).
Deliveries handed out but never settled (the connection dropped mid-batch) are offered
again at the next gather.  ``close()`` logs what was seen but never posted.

Batching: ``gather`` returns every event the watcher has ready (up to ``max_count``)
without waiting for more, so an isolated file is posted at once, and a burst piles up
while the previous batch is being confirmed and goes out in the next, bigger, batch.
"""

from __future__ import annotations

import collections
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Sequence, Set

from sarra.config.loader import Options
from sarra.core.delivery import FAILED, OK, Delivery
from sarra.core.errors import PathError
from sarra.core.message import Notice
from sarra.post.notices import NoticeMaker

log = logging.getLogger(__name__)

ALL_EVENTS = ("create", "delete", "link", "modify")
DIR_LINGER = 0.02


@dataclass
class _Kept:
    """A notice not confirmed yet, offered again at ``due``."""

    notice: Notice
    path: str
    due: float
    attempts: int


def mask_selector(options: Options) -> Callable[[str], bool]:
    """Accept/reject masks on local paths, first match decides (v2 sr_watch semantics).

    With no mask matching: ``accept_unmatch``, or True when no mask accepts anything.
    """
    masks = options.masks
    unmatched = options.accept_unmatch or not any(m.accept for m in masks)

    def accepted(path: str) -> bool:
        for mask in masks:
            if mask.regex.match(path):
                return bool(mask.accept)
        return unmatched

    return accepted


class WatchSource:
    """Deliveries from a started ``Watcher`` (see the module docstring).

    ``watcher`` needs ``get_events(timeout, max_count)``, ``scan()`` and ``stop()``;
    ``clock`` is replaceable for tests.
    """

    done = False

    def __init__(
        self,
        watcher: Any,
        maker: NoticeMaker,
        *,
        events: Sequence[str] = ALL_EVENTS,
        accepted: Callable[[str], bool] = lambda path: True,
        post_on_start: bool = False,
        retry_delay: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.watcher = watcher
        self.maker = maker
        self.events = frozenset(events)
        self.accepted = accepted
        self.retry_delay = max(0.0, float(retry_delay))
        self.clock = clock
        self._startup: Optional[Iterator[Any]] = watcher.scan() if post_on_start else None
        self._kept: Deque[_Kept] = collections.deque()
        self._unsettled: Dict[int, Delivery] = {}
        self.posted = 0
        self.failed = 0

    # ---------------------------------------------------------------- gather
    def gather(self, max_count: int, timeout: float) -> List[Delivery]:
        """Unsettled and due kept posts first, then the start-up scan, then new events."""
        out = self._recover()
        out += self._due(max_count - len(out))
        if self._startup is not None and len(out) < max_count:
            out += self._from_events(self._next_scanned(max_count - len(out)))
        if len(out) < max_count:
            wait = 0.0 if out or self._startup is not None else self._wait(timeout)
            events = self.watcher.get_events(wait, max_count - len(out))
            out += self._from_events(self._with_dir_contents(events, max_count - len(out)))
        for d in out:
            self._unsettled[id(d)] = d
        return out

    def _with_dir_contents(self, events: List[Any], n: int) -> List[Any]:
        """A directory event is followed by one per file below it: wait for those (briefly)
        so that the directory's own post goes after them in the same batch."""
        while events and any(ev.is_dir for ev in events) and len(events) < n:
            more = self.watcher.get_events(DIR_LINGER, n - len(events))
            if not more:
                break
            events = events + more
        return events

    def _wait(self, timeout: float) -> float:
        """Wake up in time for the first kept post that falls due."""
        if not self._kept:
            return timeout
        return max(0.0, min(timeout, self._kept[0].due - self.clock()))

    def _recover(self) -> List[Delivery]:
        """Deliveries of a batch that never settled (connection lost): offer them again."""
        if not self._unsettled:
            return []
        lost = list(self._unsettled.values())
        self._unsettled.clear()
        log.warning("offering %d unconfirmed post(s) again", len(lost))
        return [_delivery(d.notice, str(d.local_path or "")) for d in lost]

    def _due(self, n: int) -> List[Delivery]:
        out: List[Delivery] = []
        now = self.clock()
        while self._kept and len(out) < n and self._kept[0].due <= now:
            k = self._kept.popleft()
            if _stale(k):
                log.info("not posting %s again: changed on disk since", k.notice.relpath)
                continue
            d = _delivery(k.notice, k.path)
            d.attempts = k.attempts
            out.append(d)
        return out

    def _next_scanned(self, n: int) -> List[Any]:
        assert self._startup is not None
        got = [ev for _, ev in zip(range(n), self._startup)]
        if len(got) < n:
            self._startup = None
            log.info("post_on_start: existing files all offered")
        return got

    # ---------------------------------------------------------------- events
    def _from_events(self, events: Sequence[Any]) -> List[Delivery]:
        out: List[Delivery] = []
        last: List[Delivery] = []
        moved = {ev.old_path for ev in events if ev.is_dir and ev.kind == "rename"}
        for ev in events:
            if ev.is_dir and ev.kind == "rename" and _below_any(ev.old_path, moved):
                continue  # spec 8.4: one R for the directory moved, none for its subdirectories
            try:
                made = self._deliveries(ev)
            except FileNotFoundError:
                log.debug("%s vanished before it could be posted", ev.path)
                continue
            except (OSError, PathError) as e:
                log.error("cannot post %s: %s", ev.path, getattr(e, "strerror", None) or e)
                continue
            # Spec 8.4: a directory's own R comes after the posts for the files in it.
            (last if ev.is_dir else out).extend(made)
        return out + last

    def _deliveries(self, ev: Any) -> List[Delivery]:
        """The deliveries for one event (none when masks or ``events`` exclude it).

        Raises:
            OSError, PathError: the file cannot be read or carried (the event is dropped).
        """
        m = self.maker
        if ev.kind == "rename":
            return self._rename(ev)
        if not self.accepted(ev.path):
            log.debug("rejected by masks: %s", ev.path)
            return []
        if ev.kind == "remove":
            notices = [m.removal(ev.path)] if "delete" in self.events else []
        elif ev.kind == "link":
            notices = [m.link(ev.path, {})] if "link" in self.events else []
        elif self.events & {"create", "modify"}:
            notices = m.for_path(ev.path)
        else:
            notices = []
        return [_delivery(n, ev.path) for n in notices]

    def _rename(self, ev: Any) -> List[Delivery]:
        m, old, new = self.maker, ev.old_path, ev.path
        old_ok, new_ok = self.accepted(old), self.accepted(new)
        deleting = "delete" in self.events
        notices: List[Notice] = []
        if ev.is_dir:
            if old_ok and deleting:
                notices = [m.removal(old, {"newname": m.relpath(new)})]
        elif old_ok and new_ok:
            first = [m.removal(old, {"newname": m.relpath(new)})] if deleting else []
            notices = first + self._new_post(new, {"oldname": m.relpath(old)})
        elif new_ok:
            notices = self._new_post(new, {})
        elif old_ok and deleting:
            notices = [m.removal(old)]
        paths = [old if n.headers.get("sum", "").startswith("R") else new for n in notices]
        return [_delivery(n, p) for n, p in zip(notices, paths)]

    def _new_post(self, path: str, extra: Dict[str, str]) -> List[Notice]:
        if os.path.islink(path) and "link" not in self.events:
            return []
        return self.maker.for_path(path, extra)

    # ---------------------------------------------------------------- settle
    def settle(self, d: Delivery) -> None:
        """Count a confirmed post; keep an unconfirmed one for ``retry_delay``."""
        self._unsettled.pop(id(d), None)
        if d.outcome == OK:
            self.posted += 1
            log.info("posted %s", d.describe())
            return
        if d.outcome != FAILED:
            return
        if d.permanent:
            self.failed += 1
            log.error("dropping %s: %s", d.describe(), d.reason)
            return
        due = self.clock() + self.retry_delay
        self._kept.append(_Kept(d.notice, str(d.local_path or ""), due, d.attempts + 1))
        log.warning(
            "%s not posted (attempt %d), kept to retry in %gs: %s",
            d.describe(),
            d.attempts + 1,
            self.retry_delay,
            d.reason,
        )

    @property
    def backlog(self) -> int:
        """Posts kept in memory for a retry."""
        return len(self._kept)

    def close(self) -> None:
        """Stop the watcher; log every change seen but not posted (it is lost)."""
        lost = [k.notice.relpath for k in self._kept]
        lost += [d.describe() for d in self._unsettled.values()]
        try:
            lost += [ev.path for ev in self.watcher.get_events(0.0, 1_000_000)]
        finally:
            self.watcher.stop()
        if self._startup is not None:
            log.warning("stopped before post_on_start had offered every existing file")
        if lost:
            shown = ", ".join(lost[:20]) + (", ..." if len(lost) > 20 else "")
            log.error("stopping with %d change(s) not posted: %s", len(lost), shown)


def _delivery(notice: Notice, path: str) -> Delivery:
    return Delivery(notice, post_notice=notice, local_path=Path(path) if path else None)


def _below_any(path: str, tops: Set[str]) -> bool:
    parent = os.path.dirname(path)
    while parent and parent != os.path.dirname(parent):
        if parent in tops:
            return True
        parent = os.path.dirname(parent)
    return False


def _stale(k: _Kept) -> bool:
    """True when the disk contradicts a kept notice: do not post it any more."""
    if not k.path:
        return False
    removal = k.notice.headers.get("sum", "").startswith("R")
    return os.path.lexists(k.path) if removal else not os.path.lexists(k.path)
