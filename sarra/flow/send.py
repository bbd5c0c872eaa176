"""The work step of dd_sender: deliver a notice's file to a remote server, whole or not at all.

The file is read from the local tree (``base_dir`` + relpath, through ``sarra.fs.safefs``:
nothing outside ``base_dir`` is read, whatever the relpath says) or, without
``base_dir``, fetched from the notice's URL into an unnamed spool file and verified
(size and checksum) first.  It is then written on ``destination`` under its inflight
name (``inflight``: ``.tmp`` suffix, ``.`` prefix or a ``tmp/`` sub-directory), given
its mode and time there, and renamed to its final name: the remote side never sees a
half-written file under the final name.  Only then does the delivery end OK, so the
flow acknowledges it (and posts the delivered copy) after the rename succeeded.  A
failure removes the inflight file where it can; a transfer killed midway leaves it to
be overwritten by the next attempt.

Where it goes (:class:`RemoteLocator`): the destination's directory, then
``directory`` (of the accept line that chose the notice; variables such as
``${YYYYMMDD}`` and ``${SOURCE}`` allowed), then the relpath placed by ``mirror``,
``strip`` and ``flatten`` as for dd_subscribe.  Every component that comes from a notice
is checked as the local placement checks it (no ``..``, no empty or over-long name) and
may hold no control character (an FTP command line ends at one), so no notice can make
the sender write outside the destination's directory.  Remote directories are made as
needed and remembered.  ``R`` notices remove the remote file (``events`` with
``delete``); links and blocks of partitioned files are not sent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Tuple
from urllib.parse import urlsplit

from sarra.core import checksum, partition
from sarra.core.delivery import Delivery
from sarra.core.errors import MessageError, PathError, TransferError
from sarra.core.message import Notice, parse_time, post_topic, split_sum
from sarra.core.redaction import public_url, redact_url
from sarra.flow.download import check_file_source, verify
from sarra.fs.placement import message_values, relative_target, split_directory
from sarra.fs.safefs import Dirs, check_name, check_relative, open_regular
from sarra.logs.progress import Progress
from sarra.logs.units import human_rate, human_size
from sarra.transfer import Transfer, remote_base, remote_path

log = logging.getLogger(__name__)

__all__ = ["RemoteLocator", "Sender", "inflight_path"]

#: remote directories remembered as made; past this the memory starts again
MAX_MADE = 10_000
VERIFIABLE = ("d", "s")


def inflight_path(final: str, inflight: Any) -> str:
    """The remote name ``final`` is written under before its rename.

    ``.tmp`` (a suffix), ``.`` (a prefix), ``tmp/`` (a sub-directory of the file's own),
    None (``NONE``: the final name itself); a number (dd_watch's minimum age) means
    ``.tmp`` here.
    """
    if inflight is None:
        return final
    if not isinstance(inflight, str) or not inflight:
        inflight = ".tmp"
    directory, _, name = final.rpartition("/")
    if inflight.endswith("/"):
        return f"{directory}/{inflight.strip('/')}/{name}"
    if inflight == ".":
        return f"{directory}/.{name}"
    return final + inflight


class RemoteLocator:
    """The server path a delivery goes to below ``root`` (the destination's directory).

    The part of ``directory`` before any per-message variable comes from the
    configuration; everything after it, and the relpath, is checked component by
    component (``check_relative``, and no control character).

    Raises (when called):
        PathError: a component that is not one plain name, or a path too long.
    """

    def __init__(self, options: Any, root: str) -> None:
        self.o = options
        self.root = root if root.endswith("/") else root + "/"

    def __call__(self, d: Delivery) -> str:
        src = d.mask if d.mask is not None else self.o
        directory = str(src.directory or ".")
        below = ""
        if "$" in directory:
            directory, below = split_directory(directory, message_values(d.notice))
        rel = relative_target(
            d.notice, mirror=bool(src.mirror), strip=src.strip or 0, flatten=src.flatten or "/"
        )
        parts = check_relative(f"{below}/{rel}" if below else rel)
        if not parts:
            raise PathError(f"unusable path {d.notice.relpath!r}")
        for p in parts:
            check_name(p, "remote path component")  # no control character either
        head = "/".join(p for p in directory.split("/") if p not in ("", "."))
        return self.root + (head + "/" if head else "") + "/".join(parts)


class Sender:
    """Callable work step: sets the delivery's outcome or raises (the flow's boundary maps
    errors to outcomes: a transient ``TransferError`` to the retry queue, a permanent one
    to a report and an acknowledgement).

    ``destination`` and ``fetch`` are transfer pools (``sarra.transfer.pool``): one
    open connection to the destination, kept and reused across files; ``spool`` is the
    directory fetched files wait in; ``post_base_url`` (None: no posting) is the URL
    the delivered copy is announced under, its relpath taken below ``post_base_dir``
    (else below the destination's directory).
    """

    def __init__(
        self,
        options: Any,
        *,
        destination: Any,
        fetch: Any,
        spool: Path,
        progress: Optional[Progress] = None,
        post_base_url: Optional[str] = None,
    ) -> None:
        o = self.o = options
        self.url = o.destination
        self.root = remote_base(self.url)
        self.origin = urlsplit(redact_url(self.url))._replace(path="", query="").geturl()
        self.locate = RemoteLocator(o, self.root)
        self.destination = destination
        self.fetch = fetch
        self.spool = spool
        self.progress = progress if progress is not None else Progress()
        self.post_base_url = public_url(post_base_url, "post_base_url") if post_base_url else None
        base_dir = o.post_base_dir
        self.post_base_dir = "/" + base_dir.strip("/") + "/" if base_dir else None
        self.prefix = o.post_topic_prefix or "v02.post"
        self.base_dir = os.path.abspath(os.path.expanduser(o.base_dir)) if o.base_dir else None
        self.events = set(o.events or ())
        self.made: set[str] = set()
        self.dirs = Dirs()
        self._refused: set[str] = set()  # attributes the server refused (warned once)

    def __call__(self, d: Delivery) -> None:
        method, _ = split_sum(d.notice.headers.get("sum", ""))
        if method == "R":
            self._remove(d)
        elif method == "L":
            d.reject("links are not sent")
        elif method in ("m", "r"):
            d.reject(f"directory event {method} ignored")
        else:
            self._send(d)

    # ---------------------------------------------------------------- files
    def _send(self, d: Delivery) -> None:
        n = d.notice
        parts_hdr = n.headers.get("parts")
        parts = partition.parse(parts_hdr) if parts_hdr else None
        if parts is not None and not parts.is_whole:
            raise TransferError(
                "blocks of partitioned files are not sent (post or relay whole files)",
                permanent=True,
            )
        final = self.locate(d)
        tmp = inflight_path(final, self.o.inflight)
        dest = self.destination.get(self.url)
        with self._source(d, parts.size if parts is not None else None) as f:
            sent, sums = self._put(dest, f, tmp, d)
            try:
                self._attributes(dest, tmp, n)
                if tmp != final:
                    self._rename(dest, tmp, final)
            except BaseException:
                self._discard(dest, tmp)
                raise
        d.size = sent
        d.ok(201, "Sent")
        log.info(
            "sent %s to %s (%s, %s)",
            d.describe(),
            self.origin + final,
            human_size(sent),
            human_rate(sent, d.elapsed),
        )
        if self.post_base_url is not None:
            d.post_notice = self._delivered(d.notice, final, sums)

    @contextlib.contextmanager
    def _source(self, d: Delivery, size: Optional[int]) -> Iterator[Any]:
        """The bytes to send: a file open at their start.  A fetched file is verified
        (size and checksum) before it is handed over."""
        if self.base_dir is not None:
            fd = self._open_local(d.notice.relpath)
            with os.fdopen(fd, "rb") as f:
                yield f
            return
        n = d.notice
        check_file_source(self.o, n.baseurl, n.relpath)
        method, value = split_sum(n.headers.get("sum", ""))
        algo = method if method in VERIFIABLE else (value if method == "z" else None)
        sums = [checksum.new(algo)] if algo in VERIFIABLE else []
        self.spool.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=self.spool, prefix="fetch.") as f:
            transfer = self.fetch.get(n.baseurl)
            self.progress.start(n.relpath.rsplit("/", 1)[-1], size)
            try:
                got = transfer.get(
                    remote_path(n.baseurl, n.relpath),
                    f,
                    limit=size,
                    sums=sums,
                    progress=self.progress.add,
                    throttle=int(self.o.throttle or 0),
                )
            finally:
                self.progress.done()
            verify(d, got, size, sums)
            f.seek(0)
            yield f

    def _open_local(self, relpath: str) -> int:
        """An fd of ``base_dir``/``relpath``, opened without following a link out of it.

        Raises:
            PathError: a bad relpath, a link out of the tree, not a regular file.
            TransferError: the file is not there (permanent, 404).
        """
        assert self.base_dir is not None
        parts = check_relative(relpath.lstrip("/"))
        if not parts:
            raise PathError(f"unusable path {relpath!r}")
        try:
            dir_fd = self.dirs.open(self.base_dir, "/".join(parts[:-1]), create=False)
            return open_regular(dir_fd, parts[-1], os.O_RDONLY, single_link=False)
        except (FileNotFoundError, NotADirectoryError) as e:
            raise TransferError(f"{relpath}: not in base_dir", permanent=True, code=404) from e
        except OSError:
            self.dirs.close()  # a kept directory may be the cause: walk again next time
            raise

    def _put(self, dest: Transfer, f: Any, tmp: str, d: Delivery) -> Tuple[int, list]:
        """Send ``f`` to ``tmp``, directories made first; returns the bytes sent and the
        checksum computed on the way (of the announced method).  A permanent failure is
        tried once more with the directories made again (removed on the server since)."""
        method, value = split_sum(d.notice.headers.get("sum", ""))
        algo = method if method in VERIFIABLE else (value if method == "z" else None)
        start = f.tell()
        size = os.fstat(f.fileno()).st_size - start
        for attempt in (1, 2):
            self._mkdirs(dest, tmp.rpartition("/")[0], again=attempt > 1)
            sums = [checksum.new(algo)] if algo in VERIFIABLE else []
            f.seek(start)
            self.progress.start(d.notice.relpath.rsplit("/", 1)[-1], size)
            try:
                sent = dest.put(
                    f,
                    tmp,
                    sums=sums,
                    progress=self.progress.add,
                    throttle=int(self.o.throttle or 0),
                )
                return sent, sums
            except TransferError as e:
                self._discard(dest, tmp)
                if not e.permanent or attempt == 2:
                    raise
            finally:
                self.progress.done()
        raise AssertionError("unreachable")

    def _mkdirs(self, dest: Transfer, directory: str, again: bool = False) -> None:
        """Make ``directory`` and its parents below the destination's directory."""
        if again:
            self.made.clear()
        if directory in self.made or not directory.startswith(self.root):
            return
        if len(self.made) >= MAX_MADE:
            self.made.clear()
        path = self.root.rstrip("/")
        for part in directory[len(self.root) :].split("/"):
            if not part:
                continue
            path = f"{path}/{part}"
            if path not in self.made:
                dest.mkdir(path)
                self.made.add(path)

    def _attributes(self, dest: Transfer, path: str, n: Notice) -> None:
        """Mode (announced, else ``chmod``) and time (``preserve_time``) of the sent file;
        a server that refuses is named once and the file is still delivered."""
        h = n.headers
        mode = self.o.chmod
        if self.o.preserve_mode and h.get("mode"):
            try:
                mode = int(h["mode"], 8) & 0o777
            except ValueError:
                log.debug("ignoring bad mode header %r", h["mode"][:20])
        self._try("chmod", lambda: dest.chmod(path, mode))
        if self.o.preserve_time and h.get("mtime"):
            try:
                mtime = parse_time(h["mtime"])
            except MessageError:
                return
            self._try("setting times", lambda: dest.utime(path, mtime))

    def _try(self, what: str, step: Callable[[], None]) -> None:
        try:
            step()
        except TransferError as e:
            if not e.permanent:
                raise
            if what not in self._refused:
                self._refused.add(what)
                log.warning(
                    "%s refused by the destination (%s): files are sent without it", what, e
                )

    def _rename(self, dest: Transfer, tmp: str, final: str) -> None:
        """``tmp`` -> ``final``; a server that will not rename onto an existing name (some
        FTP servers) has the old file removed first."""
        try:
            dest.rename(tmp, final)
        except TransferError as e:
            if not e.permanent:
                raise
            try:
                dest.delete(final)
            except TransferError:
                raise e from None
            dest.rename(tmp, final)

    def _discard(self, dest: Transfer, tmp: str) -> None:
        """Remove what a failed attempt left under the inflight name, if the server lets us."""
        try:
            dest.delete(tmp)
        except TransferError as e:
            log.debug("could not remove %s after a failed send: %s", tmp, e)

    def _delivered(self, n: Notice, final: str, sums: list) -> Notice:
        """The notice of the delivered copy: ``post_base_url`` + its path there."""
        assert self.post_base_url is not None
        if self.post_base_dir and final.startswith(self.post_base_dir):
            rel = final[len(self.post_base_dir) :]
        else:
            rel = final[len(self.root) :] if final.startswith(self.root) else final.lstrip("/")
        changes: dict = {"rename": None}
        method, _ = split_sum(n.headers.get("sum", ""))
        if sums and method not in ("n", "0"):
            changes["sum"] = sums[0].header()
        topic = post_topic(rel, self.prefix)
        return (
            n.replace(baseurl=self.post_base_url, relpath=rel, topic=topic)
            .with_headers(changes)
            .relayable()
        )

    # ---------------------------------------------------------------- removals
    def _remove(self, d: Delivery) -> None:
        if "delete" not in self.events:
            d.reject("removal ignored (events exclude delete)")
            return
        final = self.locate(d)
        dest = self.destination.get(self.url)
        try:
            dest.delete(final)
        except TransferError as e:
            if not e.permanent or self._exists(dest, final):
                raise
        log.info("removed %s", final)
        d.ok(201, "removed")
        if self.post_base_url is not None:
            d.post_notice = self._delivered(d.notice, final, [])

    def _exists(self, dest: Transfer, path: str) -> bool:
        try:
            dest.stat(path)
        except TransferError as e:
            if e.permanent:
                return False
            raise
        return True
