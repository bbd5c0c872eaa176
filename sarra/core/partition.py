"""The v02 ``parts`` header and the block plan of a file (spec section 7).

Pure arithmetic: nothing here reads files.  ``Parts`` is one block of a file (or the
whole file, method ``1``); ``plan`` splits a size into blocks the way dd producers
announce them; ``part_suffix``/``parse_part_name`` handle the ``.Part`` file names of
spec 7.6.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Tuple

from sarra.core.errors import MessageError

#: The threshold T of the automatic block size rule (spec 7.2).
AUTO_T = 50 * 1024 * 1024

METHODS = ("1", "i", "p")

_SUFFIX_RE = re.compile(r"^(?P<base>.+)\.(\d+)\.(\d+)\.(\d+)\.(\d+)\.(?P<flag>[^.]+)\.Part$")


@dataclass(frozen=True)
class Parts:
    """One post's share of a file: ``method,bsz,count,rem,n``.

    ``rem`` is kept as received; ``length`` and ``size`` interpret ``rem == 0`` on the
    last block as a full block (spec 7.4, 17.1), whatever the producer meant.
    """

    method: str
    bsz: int
    count: int
    rem: int
    n: int

    @property
    def is_whole(self) -> bool:
        return self.method == "1"

    @property
    def is_last(self) -> bool:
        return self.n == self.count - 1

    @property
    def offset(self) -> int:
        return 0 if self.is_whole else self.n * self.bsz

    @property
    def length(self) -> int:
        if self.is_whole:
            return self.bsz
        return self.rem if (self.is_last and self.rem > 0) else self.bsz

    @property
    def size(self) -> int:
        """Size of the whole file."""
        if self.is_whole:
            return self.bsz
        return (self.count - 1) * self.bsz + (self.rem if self.rem > 0 else self.bsz)

    def header(self) -> str:
        return f"{self.method},{self.bsz},{self.count},{self.rem},{self.n}"

    def with_method(self, method: str) -> Parts:
        return Parts(method, self.bsz, self.count, self.rem, self.n)

    def __str__(self) -> str:
        return self.header()


def parse(value: str) -> Parts:
    """Parse a ``parts`` header (2 to 5 fields; missing ones are ``count=1,rem=0,n=0``).

    Raises:
        MessageError: unknown method, non-integer or negative fields, ``n >= count``,
            ``rem > bsz``.
    """
    fields = value.strip().split(",")
    if not 2 <= len(fields) <= 5:
        raise MessageError(f"bad parts header {value!r}: expected 2 to 5 fields")
    method = fields[0]
    if method not in METHODS:
        raise MessageError(f"bad parts header {value!r}: unknown method {method!r}")
    try:
        nums = [int(f) for f in fields[1:]]
    except ValueError:
        raise MessageError(f"bad parts header {value!r}: non-integer field") from None
    nums += [1, 0, 0][len(nums) - 1 :]
    bsz, count, rem, n = nums
    if min(nums) < 0 or count < 1:
        raise MessageError(f"bad parts header {value!r}: negative or zero count")
    if n >= count:
        raise MessageError(f"bad parts header {value!r}: block {n} >= count {count}")
    if rem > bsz:
        raise MessageError(f"bad parts header {value!r}: remainder {rem} > block size {bsz}")
    if method != "1" and bsz == 0:
        raise MessageError(f"bad parts header {value!r}: zero block size")
    return Parts(method, bsz, count, rem, n)


def auto_blocksize(size: int) -> int:
    """The automatic block size of spec 7.2 (v2 ``blocksize 0``)."""
    if size > 100 * AUTO_T:
        return 10 * AUTO_T
    if size > 10 * AUTO_T:
        return (size + 9) // 10
    if size > AUTO_T:
        return (size + 2) // 3
    return size


def block_size_for(size: int, blocksize: int) -> int:
    """Resolve the ``blocksize`` option (0 automatic, 1 whole file, else bytes)."""
    if blocksize == 0:
        return auto_blocksize(size)
    if blocksize == 1:
        return size
    return blocksize


def plan(size: int, blocksize: int = 1) -> List[Parts]:
    """The posts announcing a file of ``size`` bytes.

    A file is split only when ``0 < bsz < size``.  The last block of a file whose size
    is an exact multiple of ``bsz`` carries ``rem = bsz`` (spec 17.1), never a
    zero-length block.
    """
    if size < 0:
        raise ValueError(f"negative size {size}")
    bsz = block_size_for(size, blocksize)
    if not 0 < bsz < size:
        return [Parts("1", size, 1, 0, 0)]
    count = -(-size // bsz)
    rem = size % bsz or bsz
    return [Parts("i", bsz, count, rem, n) for n in range(count)]


def part_suffix(parts: Parts, sumflag: str) -> str:
    """``.bsz.count.rem.n.<sumflag>.Part`` (spec 7.6)."""
    return f".{parts.bsz}.{parts.count}.{parts.rem}.{parts.n}.{sumflag}.Part"


def parse_part_name(name: str) -> Optional[Tuple[str, Parts, str]]:
    """Split a part file name into (original name, Parts with method ``p``, sum flag).

    Returns None when ``name`` is not a well-formed part file name.
    """
    m = _SUFFIX_RE.match(name)
    if not m:
        return None
    bsz, count, rem, n = (int(m.group(i)) for i in range(2, 6))
    if n >= count or rem > bsz or bsz == 0:
        return None
    return m.group("base"), Parts("p", bsz, count, rem, n), m.group("flag")
