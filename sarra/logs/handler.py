"""The daemons' log file: timed rotation that keeps fds 1 and 2 pointing at it.

Split from ``sarra.logs.setup`` so that one-shot commands, which log to the terminal,
do not import ``logging.handlers`` (~5 ms of a dd_post start-up).
"""

from __future__ import annotations

import logging.handlers
import os
import sys
from pathlib import Path


class DaemonFileHandler(logging.handlers.TimedRotatingFileHandler):
    """A timed rotating file that also carries fds 1 and 2 along on each rollover."""

    def __init__(self, path: Path, when: str, interval: int, backups: int, fds: bool) -> None:
        super().__init__(path, when=when, interval=interval, backupCount=backups, delay=False)
        self._fds = fds
        self._point_fds()

    def doRollover(self) -> None:
        super().doRollover()
        self._point_fds()

    def _point_fds(self) -> None:
        if not self._fds or self.stream is None:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        for fd in (1, 2):
            os.dup2(self.stream.fileno(), fd)
