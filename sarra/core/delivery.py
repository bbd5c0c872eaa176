"""``Delivery``: one message in hand, with its local state.

Wire fields live in the frozen ``Notice``; everything local (where it came from, where
the file goes, what happened to it) lives here, so nothing local can leak onto the
wire.  Every delivery ends in exactly one outcome: OK, REJECTED or FAILED.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from sarra.core.errors import escape
from sarra.core.message import Notice

OK = "ok"
REJECTED = "rejected"
FAILED = "failed"


@dataclass(eq=False)
class Delivery:
    """A notice being processed.

    ``received`` is the broker message it came from (None for local sources), ``retry``
    the on-disk retry entry it came from (None for a first attempt).  ``post_notice``
    is what the flow will publish downstream once the work is done; ``report`` a
    ``(code, text)`` pair to report back to the source.  ``place`` (a
    ``sarra.fs.safefs.Place``) is ``local_path`` split into the configured tree root and
    the part below it, to which writes are confined.
    """

    notice: Notice
    received: Any = None
    retry: Any = None
    local_path: Optional[Path] = None
    place: Any = None
    post_notice: Optional[Notice] = None
    outcome: Optional[str] = None
    reason: str = ""
    permanent: bool = False
    report: Optional[tuple] = None
    attempts: int = 0
    #: unexpected errors (bugs, hooks raising) met by this message so far, kept in its
    #: retry entry: after ``flow.MAX_FAULTS`` the message is given up
    faults: int = 0
    #: True when this attempt ended in an unexpected error (see ``faults``)
    unexpected: bool = False
    dedup_key: Optional[str] = None
    dedup_owner: str = ""
    mask: Any = None
    #: a rejection logged at debug level only (the masks' routine ones, ``log_reject`` off)
    quiet: bool = False
    started: float = field(default_factory=time.monotonic)
    size: int = 0

    def ok(self, code: int = 201, text: str = "Downloaded") -> None:
        self.outcome = OK
        self.report = (code, text)

    def reject(self, reason: str, code: Optional[int] = None, text: str = "") -> None:
        """Deliberately not processed (filtered, malformed, duplicate, forbidden)."""
        self.outcome = REJECTED
        self.reason = reason
        self.report = (code, text or reason) if code else None

    def fail(self, reason: str, code: int = 499, permanent: bool = False) -> None:
        """Could not be processed now; retried later unless ``permanent``."""
        self.outcome = FAILED
        self.reason = reason
        self.permanent = permanent
        self.report = (code, reason)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def describe(self) -> str:
        """The relpath, safe for one log line: control characters escaped, cut at 200."""
        return escape(self.notice.relpath, 200)
