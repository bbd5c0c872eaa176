"""Crash-safe duplicate suppression for a switch: claims that survive ``kill -9``.

``sarra.dedup.DedupCache`` claims a fingerprint before the work and keeps it; if the
process dies between the claim and the confirmed re-post, the redelivered message would
then be taken for a duplicate and lost.  Here a claim remembers *which message* made it
(``owner``: a digest of the message as received) and whether it was re-posted
(``done``):

* no claim, or an expired one -> claim it (pending) and process;
* a pending claim by the same message -> it is that message redelivered after a crash:
  process it again;
* a pending claim by another message, or a done claim -> duplicate.

``done`` is written right after the broker confirmed the re-post and before the ack, so
a crash between the two cannot re-advertise the file twice.  SQLite in the config's state
directory, shared by its instances (``BEGIN IMMEDIATE`` makes a claim atomic).
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path
from typing import Any, Optional


def message_id(received: Any) -> str:
    """Digest of a received message (exchange, topic, headers, body): same on redelivery."""
    h = hashlib.sha256()
    h.update(received.exchange.encode())
    h.update(b"\0" + received.routing_key.encode() + b"\0")
    h.update(repr(sorted((str(k), str(v)) for k, v in (received.headers or {}).items())).encode())
    h.update(b"\0" + bytes(received.body))
    return h.hexdigest()


class Winnow:
    """Fingerprints claimed or re-posted in the last ``window`` seconds."""

    def __init__(self, path: Path, window: float) -> None:
        self.window = window
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=60, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS claims "
            "(key TEXT PRIMARY KEY, owner TEXT, done INTEGER, t REAL)"
        )
        self._next_expiry = 0.0

    def claim(self, key: str, owner: str, now: Optional[float] = None) -> bool:
        """True if ``owner`` may process ``key`` (see the module docstring)."""
        now = time.time() if now is None else now
        if now >= self._next_expiry:
            self.expire(now)
            self._next_expiry = now + min(60.0, self.window)
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            row = cur.execute("SELECT owner, done, t FROM claims WHERE key = ?", (key,)).fetchone()
            if row is not None and now - row[2] < self.window:
                return not row[1] and row[0] == owner
            cur.execute(
                "INSERT OR REPLACE INTO claims (key, owner, done, t) VALUES (?, ?, 0, ?)",
                (key, owner, now),
            )
            return True
        finally:
            cur.execute("COMMIT")

    def done(self, key: str) -> None:
        self.db.execute("UPDATE claims SET done = 1 WHERE key = ?", (key,))

    def release(self, key: str, owner: str) -> None:
        """Forget a claim that did not lead to a re-post (unless another owner holds it)."""
        self.db.execute("DELETE FROM claims WHERE key = ? AND owner = ? AND done = 0", (key, owner))

    def expire(self, now: Optional[float] = None) -> int:
        now = time.time() if now is None else now
        return self.db.execute("DELETE FROM claims WHERE t < ?", (now - self.window,)).rowcount

    def close(self) -> None:
        self.db.close()
