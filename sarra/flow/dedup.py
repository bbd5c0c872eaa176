"""Duplicate suppression ("fingerprint winnowing"), shared by the instances of a config.

A *claim* on a fingerprint remembers which message made it (``owner``, a digest of the
notice) and whether that message's work was completed (``done``):

* no claim, or an expired one: claim it (pending) and process the message;
* a pending claim by the same message, redelivered by the broker: that message came
  back after a crash between claim and completion, so process it again (nothing is
  lost); the same message twice *without* the redelivered flag is a duplicate;
* a pending claim by another message, or a done claim: a duplicate.

The flow marks a claim done after the work and the downstream post are confirmed and
before the ack, so a crash between the two cannot process the data twice; a claim whose
message did not end OK is released, so its retry is not taken for a duplicate.
SQLite in the config's state directory: ``BEGIN IMMEDIATE`` makes a claim atomic across
the instances of the config.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path
from typing import Optional

from sarra.core.message import Notice

BASES = ("path", "name", "data")


def fingerprint(notice: Notice, basis: str = "path") -> str:
    """The cache key of spec 6.6: ``sum`` + path + ``parts`` (path alone for R/L),
    prefixed by the notice's ``source`` header when it has one.

    ``basis`` "data" drops the path (same bytes from anywhere are duplicates), "name"
    keeps only the file name.  The source is part of every basis: on ingest it is the
    poster's user (set from its exchange before the claim), so one source posting
    another's path and checksum first cannot make the other's post a duplicate
    ("304 Not modified"); downstream, the same product from two sources is two products.
    Length-prefixed, so no source text can imitate another key.
    """
    s = notice.headers.get("sum", "")
    parts = notice.headers.get("parts", "")
    path = notice.relpath.lstrip("/")
    source = notice.headers.get("source", "")
    owner = f"{len(source)}:{source}|" if source else ""
    if basis == "name":
        path = path.rsplit("/", 1)[-1]
    if s[:1] in ("R", "L", "m", "r"):
        return f"{owner}{s[:1]}|{path}"
    if basis == "data" and s[:1] in ("d", "s"):
        return f"{owner}{s}|{parts}"
    return f"{owner}{s}|{path}|{parts}"


def owner_of(notice: Notice) -> str:
    """Digest of one message: the same for its redeliveries, different for a re-post."""
    h = hashlib.sha256()
    for part in (notice.pubtime, notice.baseurl, notice.relpath):
        h.update(part.encode("utf-8", "surrogateescape") + b"\0")
    for key, value in sorted(notice.headers.items()):
        h.update(f"{key}={value}".encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()[:32]


def _setup(db: sqlite3.Connection, attempts: int = 100) -> None:
    """WAL mode and the table.  Switching to WAL takes an exclusive lock that the busy
    timeout does not wait for, so instances starting together retry for a while."""
    for attempt in range(attempts):
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS claims "
                "(key TEXT PRIMARY KEY, owner TEXT, done INTEGER, t REAL)"
            )
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or attempt == attempts - 1:
                raise
            time.sleep(0.05 + 0.01 * attempt)


class DedupCache:
    """Fingerprints claimed or completed in the last ``window`` seconds."""

    def __init__(self, path: Path, window: float) -> None:
        self.window = window
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=60, isolation_level=None)
        _setup(self.db)

    def claim(
        self, key: str, owner: str = "", redelivered: bool = False, now: Optional[float] = None
    ) -> bool:
        """True if ``owner`` may process ``key`` (see the module docstring)."""
        now = time.time() if now is None else now
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            row = cur.execute("SELECT owner, done, t FROM claims WHERE key = ?", (key,)).fetchone()
            if row is not None and now - row[2] < self.window:
                return redelivered and not row[1] and bool(owner) and row[0] == owner
            cur.execute(
                "INSERT OR REPLACE INTO claims (key, owner, done, t) VALUES (?, ?, 0, ?)",
                (key, owner, now),
            )
            return True
        finally:
            cur.execute("COMMIT")

    def done(self, key: str) -> None:
        self.db.execute("UPDATE claims SET done = 1 WHERE key = ?", (key,))

    def release(self, key: str, owner: str = "") -> None:
        """Forget a pending claim whose message did not complete (if it is still ours)."""
        self.db.execute("DELETE FROM claims WHERE key = ? AND owner = ? AND done = 0", (key, owner))

    def expire(self, now: Optional[float] = None) -> int:
        now = time.time() if now is None else now
        return self.db.execute("DELETE FROM claims WHERE t < ?", (now - self.window,)).rowcount

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM claims").fetchone()[0]

    def close(self) -> None:
        self.db.close()
