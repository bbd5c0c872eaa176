"""dd_post: announce files (or their blocks) to an exchange, like rsync or scp.

One-shot: every path named on the command line, in ``path`` options or on stdin
(``-pipe``) is walked, read once (checksums of every block in one pass) and posted
in confirmed batches.  The exit status is non-zero, and each file is named, if
anything could not be read or was not confirmed by the broker.

Two other modes announce what is no longer there (spec 8.1, 8.4):

* ``--remove`` (``-rm``): every named path is announced as removed (``R``), whether or
  not it still exists; directories are not walked (one ``R`` for the path).
* ``--moved_from OLD`` (``-mv``): the one named path (file, link or directory) was
  moved from OLD: an ``R`` of the old path with ``newname``, then the new path with
  ``oldname``, for every file below it; a moved directory ends with the ``R`` of the
  old directory itself.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Callable, Dict, Iterable, Iterator, List, Sequence

from sarra.config.credentials import broker_user
from sarra.config.loader import Options
from sarra.core import message
from sarra.core.delivery import FAILED, Delivery
from sarra.core.errors import ConfigError, ConnectionLost, PathError
from sarra.core.message import Notice
from sarra.flow.context import Context
from sarra.flow.engine import Flow
from sarra.flow.sinks import NoticePublisher
from sarra.post.notices import NoticeMaker, walk
from sarra.post.split import split_paths

log = logging.getLogger(__name__)

PROGRAM = "dd_post"
DEFAULTS: dict = {}
EARLY_BATCHES = 20
#: posts that may await their confirms while the next files are read
CONFIRM_WINDOW = 5000
#: files past which the work is shared with a second process (sarra.post.split)
SPLIT_AFTER = 256


class FileSource:
    """Deliveries made from local paths, produced lazily batch by batch.

    ``make(path)`` returns the notices of one path (default: ``maker.for_path``);
    ``walk_dirs`` False takes the paths as given instead of walking directories.
    """

    def __init__(
        self,
        paths: Iterable[str],
        maker: NoticeMaker,
        follow_symlinks: bool,
        make: Callable[[str], List[Notice]] | None = None,
        walk_dirs: bool = True,
    ) -> None:
        self.paths = self._files(paths, follow_symlinks) if walk_dirs else iter(paths)
        self.maker = maker
        self.make = make or maker.for_path
        self.done = False
        self.errors: List[str] = []
        self.posted = 0
        self.unsettled: Dict[int, Delivery] = {}
        #: checked before each path: True stops the gathering (e.g. no broker after all)
        self.halt: Callable[[], bool] = lambda: False
        #: True while nothing could be published yet: a batch may then grow (to
        #: ``EARLY_BATCHES`` batches) instead of waiting for the broker
        self.early: Callable[[], bool] = lambda: False

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
        limit = max_count
        while len(out) < limit or (limit < max_count * EARLY_BATCHES and self.early()):
            if len(out) >= limit:
                limit += max_count
            path = None if self.halt() else next(self.paths, None)
            if path is None:
                self.done = True
                break
            try:
                notices = self.make(path)
            except FileNotFoundError:
                self._error(f"{path}: no such file")
                continue
            except PathError as e:
                self._error(str(e))
                continue
            except OSError as e:
                self._error(f"{path}: {e.strerror or e}")
                continue
            out.extend(Delivery(n, post_notice=n) for n in notices)
        self.unsettled.update((id(d), d) for d in out)
        return out

    def settle(self, d: Delivery) -> None:
        """Count a posted delivery; name a failed one."""
        self.unsettled.pop(id(d), None)
        if d.outcome == FAILED:
            self._error(d.reason if d.describe() in d.reason else f"{d.describe()}: {d.reason}")
        else:
            self.posted += 1

    def late_failure(self, d: Delivery, reason: str) -> None:
        """A post turned out unconfirmed (``NoticePublisher`` window): one of the batch
        in hand fails (settled next, or named by unconfirmed() if its batch is
        abandoned); one settled earlier is taken back from the count."""
        if id(d) in self.unsettled:
            d.fail(reason, code=503)
            return
        self.posted -= 1
        self._error(reason)

    def unconfirmed(self) -> List[str]:
        """Paths of deliveries never settled (their batch was lost with the connection)."""
        names = [d.describe() for d in self.unsettled.values()]
        for name in names:
            self._error(f"{name}: not posted (broker connection lost)")
        self.unsettled.clear()
        return names


def moved_notices(maker: NoticeMaker, old: str, new: str, follow: bool) -> Iterator[Notice]:
    """Spec 8.4 pairs for ``new`` (a file, link or directory) moved from ``old``.

    Raises:
        PathError: ``new`` does not exist or a path is outside post_base_dir.
    """
    if not os.path.lexists(new):
        raise PathError(f"{new}: no such file (it is the new name of the move)")
    if not os.path.isdir(new) or os.path.islink(new):
        yield from maker.rename_pair(old, new)
        return
    for path in walk(new, follow):
        yield from maker.rename_pair(os.path.join(old, os.path.relpath(path, new)), path)
    yield maker.removal(old, {"newname": maker.relpath(new)})


def _source(o: Options, targets: Iterable[str], maker: NoticeMaker) -> FileSource:
    follow = o.follow_symlinks
    if o.remove:
        return FileSource(targets, maker, follow, lambda p: [maker.removal(p)], walk_dirs=False)
    old = o.moved_from
    if old:
        names = list(targets)
        if len(names) != 1:
            raise ConfigError("moved_from: name exactly one path, the new name")
        return FileSource(
            names, maker, follow, lambda p: list(moved_notices(maker, old, p, follow)), False
        )
    return FileSource(targets, maker, follow)


def stdin_paths() -> Iterator[str]:
    for line in sys.stdin:
        line = line.rstrip("\n")
        if line:
            yield line


def run(ctx: Context, paths: Sequence[str] = ()) -> int:
    o = ctx.options
    targets: Iterable[str] = list(paths) + list(o.path)
    if o.pipe:
        targets = stdin_paths()
    elif not targets:
        log.error("nothing to post: name files or directories (or use -pipe)")
        return 2
    url = o.post_broker
    exchange = o.post_exchange or f"xs_{broker_user(url)}"
    if o.post_exchange_suffix:
        exchange += f"_{o.post_exchange_suffix}"
    maker = NoticeMaker(o, broker_user=broker_user(url), broker_host=ctx.host(url))
    source = _source(o, targets, maker)
    helper = None
    if not (o.pipe or o.remove or o.moved_from):  # a tree or many files: two processes
        source.paths, helper = split_paths(source.paths, SPLIT_AFTER, _import_broker)
    if helper is not None and helper.is_helper:
        try:
            _post(ctx, source, exchange)
            source.unconfirmed()
        except Exception as e:  # noqa: BLE001 - the parent meets it too and says it once
            source.errors.append(str(e))
        for path in source.paths:  # dealt to it but never read (it stopped): named
            source.errors.append(f"{path}: not posted (the helper process stopped)")
        helper.report(source.posted, source.errors, 1 if source.errors else 0)
    try:
        _post(ctx, source, exchange)
    finally:
        if helper is not None:
            posted, errors = helper.result(stop=ctx.stop())
            source.posted += posted
            source.errors.extend(errors)
    source.unconfirmed()
    log.info("posted %d notices to %s", source.posted, exchange)
    if source.errors:
        log.error("%d path(s) not posted", len(source.errors))
        return 1
    return 0


def _import_broker() -> None:
    import sarra.broker.connection  # noqa: F401 - imported once, before the fork, for both processes


def _post(ctx: Context, source: FileSource, exchange: str) -> None:
    """Connect (in the background), post every path of ``source``, wait for confirms."""
    o = ctx.options
    # files are read and summed while the broker connection is made (pika's import and
    # the AMQP handshake are a third of a small post's time); a connection error stops
    # the reading and is raised by the first publish
    broker = ctx.broker_in_background(
        o.post_broker,
        "post_broker",
        float(o.timeout or 30),
        then=lambda b: b.declare_exchange(exchange),
    )
    source.halt = broker.failed
    source.early = broker.connecting
    # a batch does not wait for its confirms (persistent posts are confirmed once the
    # broker has them on disk): the next files are read meanwhile; finish() waits
    publisher = NoticePublisher(
        broker,
        exchange,
        window=CONFIRM_WINDOW,
        late=source.late_failure,
        formats=message.post_formats(o.post_format, o.post_topic_prefix),
    )
    flow = Flow(source=source, publisher=publisher, batch=o.batch, idle=0.0, stop=ctx.stop)
    flow.run()
    try:
        publisher.finish()
    except ConnectionLost:
        pass  # each unconfirmed post was handed to source.late_failure
