"""Duplicate suppression ("fingerprint winnowing"), shared by the instances of a config.

The cache is an SQLite file in the config's state directory: SQLite's own locking makes
``claim`` atomic across processes, so two instances receiving the same fingerprint at
the same moment cannot both process it.  A claim that is not confirmed (the work
failed) is released so that a retry is not mistaken for a duplicate.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Optional

from sarra.message import Notice

BASES = ("path", "name", "data")


def fingerprint(notice: Notice, basis: str = "path") -> str:
    """The cache key of spec 6.6: ``sum`` + path + ``parts`` (path alone for R/L).

    ``basis`` "data" drops the path (same bytes from anywhere are duplicates), "name"
    keeps only the file name.
    """
    s = notice.headers.get("sum", "")
    parts = notice.headers.get("parts", "")
    path = notice.relpath.lstrip("/")
    if basis == "name":
        path = path.rsplit("/", 1)[-1]
    if s[:1] in ("R", "L", "m", "r"):
        return f"{s[:1]}|{path}"
    if basis == "data" and s[:1] in ("d", "s"):
        return f"{s}|{parts}"
    return f"{s}|{path}|{parts}"


class DedupCache:
    """Fingerprints seen in the last ``window`` seconds."""

    def __init__(self, path: Path, window: float) -> None:
        self.window = window
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=60, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, t REAL)")

    def claim(self, key: str, now: Optional[float] = None) -> bool:
        """True if ``key`` is new (and is now claimed), False if it is a duplicate."""
        now = time.time() if now is None else now
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            row = cur.execute("SELECT t FROM seen WHERE key = ?", (key,)).fetchone()
            if row is not None and now - row[0] < self.window:
                return False
            cur.execute("INSERT OR REPLACE INTO seen (key, t) VALUES (?, ?)", (key, now))
            return True
        finally:
            cur.execute("COMMIT")

    def release(self, key: str) -> None:
        self.db.execute("DELETE FROM seen WHERE key = ?", (key,))

    def expire(self, now: Optional[float] = None) -> int:
        now = time.time() if now is None else now
        return self.db.execute("DELETE FROM seen WHERE t < ?", (now - self.window,)).rowcount

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM seen").fetchone()[0]

    def close(self) -> None:
        self.db.close()
