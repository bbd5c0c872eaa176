"""Inline content (v03 ``content``): a small file's bytes carried in its own notice,
written by the subscriber without a fetch (doc/v03.rst, note 10).

:func:`inline_transfer` hands the download step a transfer-like object that serves those
bytes through the same inflight write, size and checksum checks and rename as a fetch,
and only when they match the notice: their size that of ``parts``, their checksum the
announced md5/sha512.  Otherwise (or for a malformed ``content``) it says why and
returns None, and the file is fetched as usual: a notice whose inline bytes lie costs a
download, never a wrong file.
"""

from __future__ import annotations

import logging
from typing import Any, BinaryIO, Callable, Optional, Sequence

from sarra.core import checksum, message, partition
from sarra.core.errors import MessageError, escape

log = logging.getLogger(__name__)


class InlineTransfer:
    """Serves one notice's inline bytes with ``Transfer.get``'s signature."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def get(
        self,
        remote_path: str,
        dest: BinaryIO,
        *,
        offset: int = 0,
        length: Optional[int] = None,
        limit: Optional[int] = None,
        sums: Sequence[Any] = (),
        progress: Optional[Callable[[int], Any]] = None,
        throttle: int = 0,
    ) -> int:
        data = self.data[offset : None if length is None else offset + length]
        dest.write(data)
        for s in sums:
            s.update(data)
        if progress is not None:
            progress(len(data))
        return len(data)


def inline_transfer(notice: message.Notice) -> Optional[InlineTransfer]:
    """The inline bytes of ``notice`` as a transfer, None to fetch the file instead."""
    try:
        data = message.inline_data(notice)
        if data is None:
            return None
        parts = notice.headers.get("parts")
        if parts and partition.parse(parts).size != len(data):
            raise MessageError(f"{len(data)} bytes inline, {partition.parse(parts).size} announced")
        method, value = message.split_sum(notice.headers.get("sum", ""))
        if method in ("d", "s"):
            c = checksum.new(method)
            c.update(data)
            if c.value() != value:
                raise MessageError("inline bytes do not match the announced checksum")
    except MessageError as e:
        log.warning("%s: inline content not used, fetching: %s", escape(notice.relpath, 200), e)
        return None
    return InlineTransfer(data)
