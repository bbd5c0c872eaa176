"""dd_post: announce files (or their blocks) to an exchange, like rsync or scp.

One-shot: every path named on the command line, in ``path`` options or on stdin
(``-pipe``) is walked, read once (checksums of every block in one pass) and posted
in confirmed batches.  The exit status is non-zero, and each file is named, if
anything could not be read or was not confirmed by the broker.
"""

from __future__ import annotations

import logging
import sys
from typing import Iterable, Iterator, List, Sequence

from sarra.delivery import FAILED, Delivery
from sarra.errors import PathError
from sarra.flow import Flow
from sarra.posting import NoticeMaker, walk
from sarra.publish import NoticePublisher
from sarra.runtime import Context

log = logging.getLogger(__name__)

PROGRAM = "dd_post"
DEFAULTS: dict = {}


class FileSource:
    """Deliveries made from local paths, produced lazily batch by batch."""

    def __init__(self, paths: Iterable[str], maker: NoticeMaker, follow_symlinks: bool) -> None:
        self.paths = self._files(paths, follow_symlinks)
        self.maker = maker
        self.done = False
        self.errors: List[str] = []
        self.posted = 0

    def _files(self, paths: Iterable[str], follow: bool) -> Iterator[str]:
        for p in paths:
            try:
                yield from walk(p, follow)
            except PathError as e:
                self._error(str(e))

    def _error(self, text: str) -> None:
        log.error("%s", text)
        self.errors.append(text)

    def gather(self, max_count: int, timeout: float) -> List[Delivery]:
        out: List[Delivery] = []
        while len(out) < max_count:
            path = next(self.paths, None)
            if path is None:
                self.done = True
                break
            try:
                notices = self.maker.for_path(path)
            except FileNotFoundError:
                self._error(f"{path}: no such file")
                continue
            except (OSError, PathError) as e:
                self._error(f"{path}: {getattr(e, 'strerror', None) or e}")
                continue
            out.extend(Delivery(n, post_notice=n) for n in notices)
        return out

    def settle(self, d: Delivery) -> None:
        if d.outcome == FAILED:
            self._error(f"{d.describe()}: {d.reason}")
        else:
            self.posted += 1


def stdin_paths() -> Iterator[str]:
    for line in sys.stdin:
        line = line.rstrip("\n")
        if line:
            yield line


def run(ctx: Context, paths: Sequence[str] = ()) -> int:
    o = ctx.options
    targets: Iterable[str] = list(paths) + list(o.path or ())
    if o.pipe:
        targets = stdin_paths()
    elif not targets:
        log.error("nothing to post: name files or directories (or use -pipe)")
        return 2
    url = o.post_broker
    broker = ctx.broker(url, "post_broker")
    exchange = o.post_exchange or f"xs_{ctx.user(url)}"
    if o.post_exchange_suffix:
        exchange += f"_{o.post_exchange_suffix}"
    broker.declare_exchange(exchange)
    maker = NoticeMaker(o, broker_user=ctx.user(url), broker_host=ctx.host(url))
    source = FileSource(targets, maker, bool(o.follow_symlinks))
    flow = Flow(
        source=source,
        publisher=NoticePublisher(broker, exchange),
        batch=o.batch,
        idle=0.0,
        stop=ctx.stop,
    )
    flow.run()
    log.info("posted %d notices to %s", source.posted, exchange)
    if source.errors:
        log.error("%d path(s) not posted", len(source.errors))
        return 1
    return 0
