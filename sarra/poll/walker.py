"""Walking a remote tree through a transfer backend's listings, one directory at a time.

A listing is hostile input: a name is used only if it is one plain path component that
v02 can carry (no ``/``, not ``.`` or ``..``, no control character, valid UTF-8, at most
255 bytes); the whole path stays under 4096 bytes and the walk under ``MAX_DEPTH``
levels, so a server that invents directories for ever cannot hold the poll.  Entries
are yielded as the listing streams in (flat memory); the subdirectories met are listed
after their parent's listing has ended.  A listing that fails midway yields nothing
more from that directory nor below it, and says so in one line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator, List, Tuple

from sarra.core.errors import PathError, TransferError, escape
from sarra.core.message import check_name as carried
from sarra.fs.safefs import PATH_MAX, check_name
from sarra.transfer import Entry, Transfer

log = logging.getLogger(__name__)

__all__ = ["Found", "Walk", "MAX_DEPTH"]

#: directory levels below each polled directory that are listed
MAX_DEPTH = 32
#: subdirectories of one directory kept to be listed next (the rest are named once)
MAX_SUBDIRS = 100_000


@dataclass(frozen=True)
class Found:
    """A file met by the walk: its server path and its listing entry."""

    path: str
    entry: Entry


class Walk:
    """Iterate over the files below ``top`` (a server directory, absolute).

    After the iteration, ``listed`` counts the entries read, ``refused`` the names
    dropped, ``failed`` the directories whose listing failed.
    """

    def __init__(self, transfer: Transfer, top: str, recursive: bool = True) -> None:
        self.transfer = transfer
        self.top = top.rstrip("/") or "/"
        self.recursive = recursive
        self.listed = 0
        self.refused = 0
        self.failed = 0

    def __iter__(self) -> Iterator[Found]:
        pending: List[Tuple[str, int]] = [(self.top, 0)]
        while pending:
            directory, depth = pending.pop()
            subdirs: List[str] = []
            yield from self._one(directory, subdirs)
            if self.recursive and depth < MAX_DEPTH:
                pending.extend((d, depth + 1) for d in reversed(subdirs))
            elif subdirs and self.recursive:
                log.warning("poll: not listing below %s (deeper than %d)", directory, MAX_DEPTH)

    def _one(self, directory: str, subdirs: List[str]) -> Iterator[Found]:
        got = 0
        try:
            for entry in self.transfer.listing(directory):
                got += 1
                self.listed += 1
                path = self._path(directory, entry.name)
                if path is None:
                    continue
                if not entry.is_dir:
                    yield Found(path, entry)
                elif len(subdirs) < MAX_SUBDIRS:
                    subdirs.append(path)
        except TransferError as e:
            self.failed += 1
            subdirs.clear()
            log.warning(
                "poll: listing %s failed after %d entries (nothing more from it this time): %s",
                escape(directory, 300),
                got,
                escape(e, 300),
            )

    def _path(self, directory: str, name: str) -> str | None:
        try:
            check_name(name, "listed name")
            carried(name)
        except PathError as e:
            self.refused += 1
            log.debug("poll: name refused in %s: %s", escape(directory, 200), e)
            return None
        path = ("" if directory == "/" else directory) + "/" + name
        if len(path.encode("utf-8", "surrogateescape")) >= PATH_MAX:
            self.refused += 1
            return None
        return path
