"""dd_post of many files on two processes: one walks and deals the paths, both post.

Posting a small file is a few dozen microseconds of Python (read, sum, encode, hand to
pika) on one core; a second process doubles the rate on a machine with two cores or
more.  When the walk yields more than ``first`` files, :func:`split_paths` forks once,
before any broker connection or thread exists.  The parent keeps walking and deals the
paths, every second one to the *helper* through a pipe (NUL-separated, so any name
passes); each process posts its share on its own connection, with the same options and
the same checks.  At the end the helper sends its counts and errors back through a
second pipe and exits; the parent reports for both, in one exit status.

Nothing is dropped silently: if the helper dies, the parent says how many paths it had
handed over, and exits non-zero.  Paths are dealt only after the walk yielded them, so
both processes post from one listing of each directory.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from itertools import chain, islice
from typing import Callable, Iterator, List, Optional, Tuple

log = logging.getLogger(__name__)

#: paths dealt at a time: half to the helper, half kept
CHUNK = 64


class Helper:
    """The other side of a split, seen from the parent (``pid`` > 0) or the helper."""

    def __init__(self, pid: int, result_fd: int, paths_fd: int = -1) -> None:
        self.pid = pid
        self._result_fd = result_fd
        self._paths = os.fdopen(paths_fd, "wb") if paths_fd >= 0 else None
        self.dealt = 0

    @property
    def is_helper(self) -> bool:
        return self.pid == 0

    # ------------------------------------------------------------------ parent side
    def deal(self, paths: Iterator[str]) -> Iterator[str]:
        """Yield the parent's share of ``paths``, writing the helper's to its pipe."""
        try:
            while True:
                block = list(islice(paths, 2 * CHUNK))
                if not block:
                    return
                mine, theirs = block[0::2], block[1::2]
                if self._paths is not None:
                    try:
                        self._paths.write(b"".join(os.fsencode(p) + b"\0" for p in theirs))
                        self._paths.flush()
                        self.dealt += len(theirs)
                        theirs = []
                    except OSError as e:  # the helper is gone: post its share here
                        log.debug("posting helper process gone (%s); going on alone", e)
                        self._close_paths()
                yield from mine
                yield from theirs
        finally:
            self._close_paths()

    def _close_paths(self) -> None:
        if self._paths is not None:
            try:
                self._paths.close()
            except OSError:
                pass
            self._paths = None

    def result(self, stop: bool = False) -> Tuple[int, List[str]]:
        """Wait for the helper; return how many notices it posted and its errors.

        ``stop``: a stop was requested; the helper is told to stop too.
        """
        self._close_paths()  # end of the paths: the helper finishes what it holds
        if stop:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        with os.fdopen(self._result_fd, "rb") as f:
            data = f.read()
        _, status = os.waitpid(self.pid, 0)
        try:
            got = json.loads(data)
            return int(got["posted"]), [str(e) for e in got["errors"]]
        except (ValueError, KeyError, TypeError):
            code = os.waitstatus_to_exitcode(status)
            return 0, [
                f"posting helper process ended ({code}) without a report: some of the "
                f"{self.dealt} paths handed to it may not be posted"
            ]

    # ------------------------------------------------------------------ helper side
    def report(self, posted: int, errors: List[str], code: int) -> None:
        """Send the counts to the parent and end this process (never returns)."""
        try:
            with os.fdopen(self._result_fd, "wb") as f:
                f.write(json.dumps({"posted": posted, "errors": errors}).encode())
        finally:
            logging.shutdown()
            os._exit(code)


def split_paths(
    paths: Iterator[str], first: int, before_fork: Callable[[], None] = lambda: None
) -> Tuple[Iterator[str], Optional[Helper]]:
    """Fork a helper when ``paths`` yields more than ``first`` paths (and there are two
    cores or more); return this process's paths and the :class:`Helper`, or
    ``(paths, None)`` when not split.  Call before any thread or connection exists;
    ``before_fork`` runs just before the fork (imports both processes need).
    """
    head = list(islice(paths, first + 1))
    rest = chain(head, paths)
    if len(head) <= first or (os.cpu_count() or 1) < 2:
        return rest, None
    before_fork()
    paths_r, paths_w = os.pipe()
    result_r, result_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the helper: reads its paths from the pipe
        os.close(paths_w)
        os.close(result_r)
        return _read_paths(paths_r), Helper(0, result_w)
    os.close(paths_r)
    os.close(result_w)
    helper = Helper(pid, result_r, paths_w)
    return helper.deal(rest), helper


def _read_paths(fd: int) -> Iterator[str]:
    with os.fdopen(fd, "rb") as f:
        tail = b""
        while True:
            data = f.read1(1 << 16)
            if not data:
                return
            *names, tail = (tail + data).split(b"\0")
            for name in names:
                yield os.fsdecode(name)
