"""The on-disk retry queue of one instance.

A message whose work failed for a reason that may pass (server down, checksum wrong,
connection reset) is written here *before* its broker message is acknowledged, so a
crash between the two loses nothing: at worst the message is both here and redelivered,
and the second copy finds the work done.  One JSON file per entry, written atomically
(temp file, fsync, rename); the file name is a hash of the message, so re-queueing the
same message updates its entry instead of adding another.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from sarra.core import message
from sarra.core.delivery import Delivery
from sarra.core.errors import MessageError

log = logging.getLogger(__name__)


@dataclass
class RetryEntry:
    """A failed message waiting for its next attempt."""

    path: Path
    topic: str
    headers: Dict[str, str]
    body: str
    attempts: int
    first_failed: float
    next_try: float
    reason: str = ""
    #: unexpected errors so far (see ``Delivery.faults``): survives restarts here
    faults: int = 0


def entry_name(topic: str, headers: Dict[str, str], body: str) -> str:
    h = hashlib.sha256()
    for part in (topic, body, json.dumps(sorted(headers.items()))):
        h.update(part.encode("utf-8", "surrogateescape"))
        h.update(b"\0")
    return h.hexdigest()[:24] + ".json"


class RetryQueue:
    """Failed messages of one instance, with capped exponential back-off and a TTL."""

    def __init__(
        self,
        directory: Path,
        *,
        delay: float = 10.0,
        ttl: float = 2 * 86400,
        max_delay: float = 600.0,
    ) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.delay = delay
        self.ttl = ttl
        self.max_delay = max_delay
        # earliest next_try on disk as of the last scan: the directory is only read
        # again once something may be due (the flow asks before every batch)
        self._next_due = 0.0

    def backoff(self, attempts: int) -> float:
        return min(self.delay * (2 ** max(attempts - 1, 0)), self.max_delay)

    def put(
        self,
        topic: str,
        headers: Dict[str, str],
        body: str,
        reason: str,
        previous: Optional[RetryEntry] = None,
        now: Optional[float] = None,
        faults: int = 0,
    ) -> bool:
        """Record a failure.  Returns False (nothing kept) once the TTL has passed.

        Raises:
            OSError: the entry could not be written; the caller must not ack.
        """
        now = time.time() if now is None else now
        attempts = (previous.attempts if previous else 0) + 1
        first = previous.first_failed if previous else now
        path = previous.path if previous else self.dir / entry_name(topic, headers, body)
        if now - first > self.ttl:
            self.remove(path)
            return False
        next_try = now + self.backoff(attempts)
        data = {
            "topic": topic,
            "headers": headers,
            "body": body,
            "attempts": attempts,
            "first_failed": first,
            "next_try": next_try,
            "reason": reason,
            "faults": faults,
        }
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self._next_due = min(self._next_due, next_try)
        return True

    def remove(self, entry_or_path: object) -> None:
        path = entry_or_path.path if isinstance(entry_or_path, RetryEntry) else entry_or_path
        try:
            os.unlink(path)  # type: ignore[arg-type]
        except FileNotFoundError:
            pass

    def _entries(self) -> Iterator[RetryEntry]:
        for path in sorted(self.dir.glob("*.json")):
            try:
                with open(path, encoding="utf-8") as f:
                    d = json.load(f)
                yield RetryEntry(
                    path,
                    d["topic"],
                    d["headers"],
                    d["body"],
                    d["attempts"],
                    d["first_failed"],
                    d["next_try"],
                    d.get("reason", ""),
                    int(d.get("faults", 0)),
                )
            except (OSError, ValueError, KeyError, TypeError) as e:
                log.error("retry queue: dropping unreadable entry %s: %s", path.name, e)
                self.remove(path)

    def due(self, max_count: int, now: Optional[float] = None) -> List[RetryEntry]:
        """Entries whose next attempt is due, oldest first, at most ``max_count``."""
        now = time.time() if now is None else now
        if now < self._next_due:
            return []
        entries = list(self._entries())
        out = sorted((e for e in entries if e.next_try <= now), key=lambda e: e.next_try)
        later = [e.next_try for e in entries if e.next_try > now]
        # entries handed out now come back through put() or remove(): if they are not
        # settled (the batch was abandoned), look again after a short while
        self._next_due = min(later + [now + (1.0 if out else self.delay)])
        if len(out) > max_count:
            self._next_due = now
        return out[:max_count]

    def deliveries(self, max_count: int) -> List[Delivery]:
        """The due entries (:meth:`due`) as deliveries; an entry that no longer decodes is
        dropped with one error line: it could never be worked."""
        out = []
        for entry in self.due(max_count):
            try:
                notice = message.decode(entry.topic, entry.headers, entry.body)
            except MessageError as e:
                log.error("retry queue: dropping undecodable entry: %s", e)
                self.remove(entry)
                continue
            out.append(Delivery(notice, retry=entry, attempts=entry.attempts, faults=entry.faults))
        return out

    def __len__(self) -> int:
        return sum(1 for _ in self.dir.glob("*.json"))
