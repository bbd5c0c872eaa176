"""What dd_poll has posted: each file's listing line when it was last announced.

A file whose line (size and time, or the listing's own text) differs from the one kept
here is new or changed.  The memory is a SQLite file in the config's state directory,
so it survives restarts and crashes and stays on disk however long the listings get
(100,000 entries: the process keeps none of them in memory).  A line is recorded only
once its post was confirmed by the broker, so a crash between the two posts that file
again (at least once), never skips it.

Every file seen by a listing is marked seen (at most every ``refresh`` seconds, to keep
writes few); entries not seen for ``horizon`` seconds (files gone since) are removed,
so the file cannot grow without bound.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Optional, Tuple

__all__ = ["PollState"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    path TEXT PRIMARY KEY,
    line TEXT NOT NULL,
    seen REAL NOT NULL
) WITHOUT ROWID
"""


class PollState:
    """The remembered listing of one poll configuration.

    Writes go into one open transaction; :meth:`commit` makes them durable (the source
    commits after each batch of posts is settled, and at the end of each listing pass).
    """

    def __init__(self, path: Path, horizon: float, refresh: Optional[float] = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.horizon = horizon
        self.refresh = refresh if refresh is not None else horizon / 4
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable against a process crash
        self.db.execute(_SCHEMA)
        self._open = False

    def _begin(self) -> None:
        if not self._open:
            self.db.execute("BEGIN")
            self._open = True

    def lookup(self, path: str) -> Optional[Tuple[str, float]]:
        """``(line, seen)`` remembered for ``path``, or None when it was never posted."""
        row = self.db.execute("SELECT line, seen FROM seen WHERE path = ?", (path,)).fetchone()
        return None if row is None else (row[0], row[1])

    def touch(self, path: str, seen: float, now: float) -> None:
        """``path`` is still listed: refresh its ``seen`` time when it is getting old."""
        if now - seen >= self.refresh:
            self._begin()
            self.db.execute("UPDATE seen SET seen = ? WHERE path = ?", (now, path))

    def record(self, path: str, line: str, now: float) -> None:
        """``path`` was posted (confirmed) as ``line``."""
        self._begin()
        self.db.execute(
            "INSERT OR REPLACE INTO seen (path, line, seen) VALUES (?, ?, ?)", (path, line, now)
        )

    def commit(self) -> None:
        if self._open:
            self.db.execute("COMMIT")
            self._open = False

    def expire(self, now: float) -> int:
        """Forget the files not listed for ``horizon`` seconds; returns how many."""
        self._begin()
        gone = self.db.execute("DELETE FROM seen WHERE seen < ?", (now - self.horizon,)).rowcount
        self.commit()
        return int(gone)

    def __len__(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM seen").fetchone()[0])

    def close(self) -> None:
        self.commit()
        self.db.close()
