"""Directory listings as servers send them: entries with what they say about each file.

Owns :class:`Entry` (a name, whether it is a directory, the size and modification time
when the listing gives them, and the text that identifies this version of the file),
and the parsers of the listings that are not already structured: an HTML index page
(:class:`IndexParser`: nginx and Apache autoindex, or any page of links), and FTP
``MLSD`` facts and ``LIST`` lines (:func:`mlsd_entry`, :func:`list_entry`).

Listings come from servers, so they are hostile input: the parsers never build a path,
they only return names (a name with a ``/`` or a parent link is dropped), every text
kept is cut short, and the HTML parser is fed in chunks and hands its entries over as
they complete, so a listing of any length is parsed in bounded memory.  Checking the
names themselves (length, control characters) is for the caller, which knows where
they will be used.
"""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Iterator, List, Optional
from urllib.parse import unquote, urlsplit

__all__ = ["Entry", "IndexParser", "list_entry", "mlsd_entry"]

#: characters of a listing's text kept per entry (what identifies a file's version)
MAX_LINE = 200

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
# nginx "16-Nov-2023 10:20", Apache "2023-11-16 10:20", both optionally with seconds
_NGINX_TIME = re.compile(r"\b(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{1,2}):(\d{2})(?::(\d{2}))?\b")
_ISO_TIME = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?\b")
_TRAILING_SIZE = re.compile(r"(?:^|\s)(\d{1,18})\s*$")


@dataclass(frozen=True)
class Entry:
    """One name of a directory listing.

    ``size`` and ``mtime`` (seconds since the epoch, UTC) are None when the listing does
    not say; ``line`` is what identifies this version of the file (size and time, or
    the listing's own text): a file whose ``line`` changed has changed.
    """

    name: str
    is_dir: bool = False
    size: Optional[int] = None
    mtime: Optional[float] = None
    line: str = ""


def _clock(year: int, month: int, day: int, hour: int, minute: int, second: int) -> float:
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))


def _text_time(text: str) -> Optional[float]:
    """The modification time an index page writes next to a link (server time, taken as
    UTC), or None."""
    m = _NGINX_TIME.search(text)
    if m is not None and m[2].lower() in _MONTHS:
        day, month, year = int(m[1]), _MONTHS[m[2].lower()], int(m[3])
        return _valid(year, month, day, int(m[4]), int(m[5]), int(m[6] or 0))
    m = _ISO_TIME.search(text)
    if m is not None:
        return _valid(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6] or 0))
    return None


def _valid(year: int, month: int, day: int, hour: int, minute: int, second: int) -> Optional[float]:
    if not (1970 <= year <= 9999 and 1 <= month <= 12 and 1 <= day <= 31):
        return None
    if hour > 23 or minute > 59 or second > 60:
        return None
    return _clock(year, month, day, hour, minute, second)


def _squeeze(text: str) -> str:
    return " ".join(text.split())[:MAX_LINE]


class IndexParser(HTMLParser):
    """The links of an HTML directory index, each with the text that follows it.

    ``feed`` text in pieces, then take the completed entries with :meth:`take` (the
    last one completes at :meth:`close`).  A link is kept when it names something in
    ``directory`` itself (relative, or absolute below it; no other host, no query, no
    parent): ``name/`` is a directory.  The text after a link, up to the next one, is
    the entry's ``line``; a time in it (nginx ``16-Nov-2023 10:20``, Apache
    ``2023-11-16 10:20``) is its ``mtime`` and a plain number ending it (nginx writes
    sizes in bytes) its ``size``.  Apache's rounded sizes (``1.2K``) are no size: the
    text still changes when the file does.
    """

    def __init__(self, directory: str) -> None:
        super().__init__(convert_charrefs=True)
        self.directory = directory.rstrip("/") + "/"
        self._done: List[Entry] = []
        self._name: Optional[str] = None
        self._is_dir = False
        self._text: List[str] = []
        self._text_len = 0
        self._in_link = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "a":
            self._finish()
            href = next((v for k, v in attrs if k == "href" and v), None)
            found = self._name_of(href) if href else None
            if found is not None:
                self._name, self._is_dir = found
            self._in_link = True
        elif tag in ("tr", "li", "br", "hr", "table"):
            self._finish()  # the row of a link ends its text

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._in_link = False

    def handle_data(self, data: str) -> None:
        if self._name is None or self._in_link or self._text_len > MAX_LINE:
            return
        self._text.append(data[: MAX_LINE + 1])
        self._text_len += len(data)

    def close(self) -> None:
        super().close()
        self._finish()

    def take(self) -> List[Entry]:
        """The entries completed so far (each once)."""
        done, self._done = self._done, []
        return done

    def _finish(self) -> None:
        if self._name is None:
            return
        line = _squeeze("".join(self._text))
        size = None
        if not self._is_dir:
            m = _TRAILING_SIZE.search(line)
            size = int(m[1]) if m is not None else None
        self._done.append(Entry(self._name, self._is_dir, size, _text_time(line), line))
        self._name, self._text, self._text_len = None, [], 0

    def _name_of(self, href: str) -> Optional[tuple]:
        """``(name, is_dir)`` of a link to something in the directory, else None."""
        target = urlsplit(href)
        if target.scheme or target.netloc or target.query or not target.path:
            return None
        path = unquote(target.path, errors="surrogateescape")
        if path.startswith("/"):
            if not path.startswith(self.directory):
                return None
            path = path[len(self.directory) :]
        is_dir = path.endswith("/")
        name = path[:-1] if is_dir else path
        if name.startswith("./"):
            name = name[2:]
        if not name or "/" in name or name in (".", ".."):
            return None
        return name, is_dir


def mlsd_entry(line: str) -> Optional[Entry]:
    """An ``MLSD`` line (``type=file;size=12;modify=20240101120000; name``), or None for
    the directory itself, its parent, links and lines that do not parse (RFC 3659)."""
    facts_text, sep, name = line.rstrip("\r\n").partition(" ")
    if not sep or not name or "/" in name:
        return None
    facts = {}
    for fact in facts_text.split(";"):
        key, eq, value = fact.partition("=")
        if eq:
            facts[key.strip().lower()] = value.strip()
    kind = facts.get("type", "").lower()
    if kind not in ("file", "dir"):
        return None  # cdir, pdir, OS.unix=slink...
    size = facts.get("size", "")
    modify = facts.get("modify", "")
    mtime = None
    if len(modify) >= 14 and modify[:14].isdigit():
        d = modify
        mtime = _valid(int(d[:4]), int(d[4:6]), int(d[6:8]), int(d[8:10]), int(d[10:12]),
                       int(d[12:14]))  # fmt: skip
    return Entry(
        name,
        is_dir=kind == "dir",
        size=int(size) if size.isdigit() and len(size) <= 18 else None,
        mtime=mtime,
        line=_squeeze(f"{size} {modify}"),
    )


_LIST = re.compile(
    r"^([-dlbcps])[-rwxsStT]{9}\S*\s+\d+\s+\S+\s+\S+\s+(\d{1,18})\s+"
    r"(\w{3}\s+\d{1,2}\s+(?:\d{1,2}:\d{2}|\d{4}))\s(.+)$"
)


def list_entry(line: str, now: Optional[float] = None) -> Optional[Entry]:
    """A Unix ``ls -l`` style ``LIST`` line, or None (links, devices, a ``total`` line,
    anything else).  The time is kept as text (``line``); ``mtime`` only when the line
    gives a year or the time is of the last twelve months."""
    m = _LIST.match(line.rstrip("\r\n")[:1000])
    if m is None or m[1] not in "-d":
        return None
    name = m[4]
    if "/" in name or name in (".", ".."):
        return None
    return Entry(
        name,
        is_dir=m[1] == "d",
        size=int(m[2]),
        mtime=_list_time(m[3], time.time() if now is None else now),
        line=_squeeze(f"{m[2]} {m[3]}"),
    )


def _list_time(text: str, now: float) -> Optional[float]:
    words = text.split()
    month = _MONTHS.get(words[0].lower())
    if month is None:
        return None
    day = int(words[1])
    if ":" in words[2]:
        hour, minute = (int(x) for x in words[2].split(":"))
        year = time.gmtime(now).tm_year
        when = _valid(year, month, day, hour, minute, 0)
        if when is not None and when > now + 86400:  # "Dec 31 23:59" seen in January
            when = _valid(year - 1, month, day, hour, minute, 0)
        return when
    return _valid(int(words[2]), month, day, 0, 0, 0)


def index_entries(parser: IndexParser, pieces: Iterator[str]) -> Iterator[Entry]:
    """Feed ``pieces`` of an index page to ``parser``, yielding entries as they complete."""
    for piece in pieces:
        parser.feed(piece)
        yield from parser.take()
    parser.close()
    yield from parser.take()
