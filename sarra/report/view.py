"""What dd_log shows: report entries, filters, one-line format, per-file summaries, journal.

A report message (spec 9) becomes an :class:`Entry`: the time dd_log received it, the
file (relpath), the status code and text, the consumer (``user@host`` of the reporting
process), the file size (from ``parts``, not trusted on ``R``/``L`` reports, 9.3), the
processing time, and where the data came from (``source``, ``from_cluster``).

:func:`summarize` answers "where did my file go": per file, the switches that
re-announced it, the consumers that got it, and the failures not followed by a success
of the same consumer.  :class:`Journal` keeps entries as JSON lines so the same answer
is available after the fact.  Everything here is pure except ``Journal``.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Pattern,
    Sequence,
    Tuple,
)

from sarra.core import partition
from sarra.core.errors import MessageError
from sarra.core.message import Notice
from sarra.core.redaction import escape_controls
from sarra.core.timestamps import parse_time
from sarra.logs.units import human_size

if TYPE_CHECKING:
    from sarra.config.loader import Options

log = logging.getLogger(__name__)

#: ``message`` text of a report saying a switch re-announced the file (9.4).
PUBLISHED = "Published"

#: the largest size a file can have (``off_t``): a ``parts`` header announcing more is
#: not a file's, and is not shown (a float of it would overflow)
MAX_SIZE = 2**63 - 1

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Entry:
    """One report as dd_log keeps it (all plain values, so it round-trips through JSON)."""

    received: float
    relpath: str
    code: int
    message: str
    user: str
    host: str
    elapsed: float
    size: Optional[int] = None
    pubtime: str = ""
    baseurl: str = ""
    source: str = ""
    from_cluster: str = ""
    checksum: str = ""

    @property
    def file_key(self) -> Tuple[str, str]:
        """Same file across hops: the checksum (kept by every hop) and the file name (the
        directory changes when a switch stores it under its own tree)."""
        name = self.relpath.rstrip("/").rsplit("/", 1)[-1]
        return (self.checksum, name) if self.checksum else ("", self.relpath)

    @property
    def consumer(self) -> str:
        return f"{self.user}@{self.host}"

    @property
    def failed(self) -> bool:
        return self.code >= 400

    @property
    def republished(self) -> bool:
        return self.message.startswith(PUBLISHED)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> Entry:
        """Raises: MessageError: not a JSON object with this class's fields."""
        try:
            data = json.loads(line)
            return cls(**data)
        except (ValueError, TypeError) as e:
            raise MessageError(f"bad journal line: {e}") from None


def _size(notice: Notice) -> Optional[int]:
    if notice.is_removal or notice.is_link or "parts" not in notice.headers:
        return None
    try:
        size = partition.parse(notice.headers["parts"]).size
    except MessageError:
        return None
    return size if size <= MAX_SIZE else None


def entry_from_notice(notice: Notice, received: float) -> Entry:
    """The entry for a decoded report.

    Raises:
        MessageError: ``notice`` is a post, not a report.
    """
    rep = notice.report
    if rep is None:
        raise MessageError(f"not a report: {notice.relpath}")
    try:
        elapsed = float(rep.elapsed)
    except ValueError:
        elapsed = 0.0
    if not math.isfinite(elapsed):  # "inf", "nan", "1e999": no duration to show
        elapsed = 0.0
    h = notice.headers
    return Entry(
        received=received,
        relpath=notice.relpath,
        code=rep.code,
        message=h.get("message", ""),
        user=rep.user,
        host=rep.host,
        elapsed=elapsed,
        size=_size(notice),
        pubtime=notice.pubtime,
        baseurl=notice.baseurl,
        source=h.get("source", ""),
        from_cluster=h.get("from_cluster", ""),
        checksum=h.get("sum", ""),
    )


# ------------------------------------------------------------------ filters


def parse_when(text: str, now: float) -> float:
    """A point in time: ``30m``/``2h``/``1d`` ago, ``YYYYMMDDHHMMSS[.f]``, or ISO 8601 (UTC
    unless it carries an offset).

    Raises:
        ValueError: none of these forms (the text is quoted).
    """
    value = text.strip()
    m = _RELATIVE.match(value)
    if m:
        return now - float(m.group(1)) * _UNITS[m.group(2)]
    if value[:14].isdigit() and len(value) >= 14:
        try:
            return parse_time(value)
        except ValueError:
            pass
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        hint = "use 2h, 20261128220000 or 2026-11-28T22:00"
        raise ValueError(f"bad time {text!r} ({hint})") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def code_matches(code: int, patterns: Sequence[str]) -> bool:
    """``201`` matches ``201``, ``2xx``, ``2``, ``20x``; any code matches no patterns."""
    if not patterns:
        return True
    text = f"{code:03d}"
    for p in patterns:
        p = p.strip().lower()
        if p and len(p) <= 3 and all(a == b or b == "x" for a, b in zip(text, p)):
            return True
    return False


@dataclass(frozen=True)
class Filter:
    """Which entries to show: every given criterion must match."""

    path: Optional[Pattern] = None
    consumer: Optional[Pattern] = None
    codes: Tuple[str, ...] = ()
    since: Optional[float] = None
    until: Optional[float] = None

    @classmethod
    def from_options(cls, o: Options, now: float) -> Filter:
        """The filter dd_log's options ask for (``path_match``, ``consumer_match``,
        ``code``, ``since``, ``until``; times relative to ``now``).

        Raises:
            ValueError: a bad ``since``/``until`` (already checked by the option converter).
        """
        return cls(
            path=o.path_match,
            consumer=o.consumer_match,
            codes=tuple(o.code),
            since=parse_when(o.since, now) if o.since else None,
            until=parse_when(o.until, now) if o.until else None,
        )

    def __call__(self, e: Entry) -> bool:
        if self.path is not None and not self.path.search(e.relpath):
            return False
        if self.consumer is not None and not self.consumer.search(e.consumer):
            return False
        if self.since is not None and e.received < self.since:
            return False
        if self.until is not None and e.received > self.until:
            return False
        return code_matches(e.code, self.codes)


# ------------------------------------------------------------------ formatting


def human_duration(seconds: float) -> str:
    """``0.0034`` -> ``3.4ms``, ``2.5`` -> ``2.5s``, ``125`` -> ``2m05s``; ``-`` for no
    duration (infinite, not a number)."""
    if not math.isfinite(seconds):
        return "-"
    if seconds < 0:
        return f"-{human_duration(-seconds)}"
    if seconds < 1:
        return f"{seconds * 1000:.1f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_time(t: float) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in UTC."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def format_line(e: Entry) -> str:
    """One line: time, code, file, consumer, size, duration, message.

    Control characters are escaped (``escape_controls``): every field but the time was
    written by whoever published the report, and the line goes to a terminal.
    """
    size = human_size(e.size) if e.size is not None and 0 <= e.size <= MAX_SIZE else "-"
    return escape_controls(
        f"{format_time(e.received)} {e.code:03d} {e.relpath} {e.consumer} "
        f"{size} {human_duration(e.elapsed)} {e.message}"
    ).rstrip()


# ------------------------------------------------------------------ summary


@dataclass
class FileSummary:
    """Where one file went: switches, consumers that got it, open failures."""

    relpath: str
    source: str = ""
    also_as: List[str] = field(default_factory=list)
    switches: List[str] = field(default_factory=list)
    received_by: List[str] = field(default_factory=list)
    failures: Dict[str, Entry] = field(default_factory=dict)
    reports: int = 0

    def add(self, e: Entry) -> None:
        self.reports += 1
        self.source = self.source or e.source
        if e.relpath != self.relpath and e.relpath not in self.also_as:
            self.also_as.append(e.relpath)
        for switch in (e.from_cluster, e.host if e.republished else ""):
            if switch and switch not in self.switches:
                self.switches.append(switch)
        if e.failed:
            self.failures[e.consumer] = e
        elif e.code < 300 and not e.republished:
            self.failures.pop(e.consumer, None)
            if e.consumer not in self.received_by:
                self.received_by.append(e.consumer)
        else:
            self.failures.pop(e.consumer, None)


def summarize(entries: Iterable[Entry]) -> List[FileSummary]:
    """One summary per file (``Entry.file_key``: a file keeps its checksum across hops),
    in the order files were first reported; consumers include the switches' own."""
    files: Dict[Tuple[str, str], FileSummary] = {}
    for e in sorted(entries, key=lambda x: x.received):
        files.setdefault(e.file_key, FileSummary(e.relpath)).add(e)
    return list(files.values())


def format_summary(s: FileSummary) -> List[str]:
    """A few lines per file: the file, then switches, receivers and failures (control
    characters escaped, as in :func:`format_line`)."""
    lines = [f"{s.relpath} (source {s.source or '?'}, {s.reports} reports)"]
    if s.also_as:
        lines.append(f"  also as: {', '.join(s.also_as)}")
    lines.append(f"  switches: {', '.join(s.switches) or '-'}")
    lines.append(f"  received by: {', '.join(s.received_by) or '-'}")
    for consumer, e in s.failures.items():
        lines.append(f"  FAILED at {consumer}: {e.code:03d} {e.message}")
    return [escape_controls(line) for line in lines]


# ------------------------------------------------------------------ journal


class Journal:
    """Entries appended as JSON lines to one file; read back for after-the-fact questions."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, entries: Iterable[Entry]) -> None:
        """Raises: OSError: the journal cannot be written."""
        lines = [e.to_json() + "\n" for e in entries]
        if not lines:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.writelines(lines)

    def read(self) -> Iterator[Entry]:
        """Every entry in the file (none if it does not exist); bad lines are skipped
        with a warning naming the line number."""
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield Entry.from_json(line)
                except MessageError as e:
                    log.warning("%s:%d: %s", self.path, number, e)
