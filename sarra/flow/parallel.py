"""Several files of one batch fetched at once, by a few threads (option ``threads``).

A small file's download is mostly waiting: for the server's reply, the disk, the
broker.  With ``threads N`` (N > 1) a subscriber hands the *work* step of a batch to N
threads, each with its own transfers (connections), so that one file's waits overlap
the others' work.  Everything else stays on the flow's thread, in order: selection,
duplicate claims, ``on_message`` hooks before; posting, reports, the retry queue and
acknowledgements after the whole batch is done (the rule of ``sarra.flow.engine`` holds: a
message is acknowledged only once its outcome is durable).

Only batches of plain whole files go to threads (:func:`chains`); a batch holding a
removal, a link, a rename or a block of a partitioned file is worked in order, on the
flow's thread, as with ``threads 1``.  Files with the same name (basename) stay in one
chain, worked in batch order, so that two versions of a file, or the same file under
``flatten``, are never written at the same time.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Callable, Dict, List, Optional, Sequence

from sarra.core import partition
from sarra.core.delivery import Delivery
from sarra.core.errors import MessageError
from sarra.core.message import split_sum

log = logging.getLogger(__name__)

Work = Callable[[Delivery], None]


def chains(batch: Sequence[Delivery]) -> Optional[List[List[Delivery]]]:
    """The batch cut into chains that may run side by side, or None: work it in order.

    None unless every notice is a plain whole file (no ``R``/``L``/directory event, no
    ``oldname``/``newname``/``rename``, no block of a partitioned file).  Deliveries
    whose relpaths end in the same name share a chain, in batch order.
    """
    by_name: Dict[str, List[Delivery]] = {}
    for d in batch:
        h = d.notice.headers
        if "oldname" in h or "newname" in h or "rename" in h:
            return None
        method, _ = split_sum(h.get("sum", ""))
        if method in ("R", "L", "m", "r"):
            return None
        parts = h.get("parts")
        if parts:
            try:
                if not partition.parse(parts).is_whole:
                    return None
            except MessageError:
                return None  # worked in order, where the error is reported
        name = os.path.basename(d.notice.relpath.rstrip("/"))
        by_name.setdefault(name, []).append(d)
    return list(by_name.values())


class WorkThreads:
    """``len(works)`` threads, each owning one work callable (its own connections).

    ``keepalive`` is called on the caller's thread about once a second while the
    threads work (broker heartbeats: a connection is never touched by the threads).
    """

    def __init__(self, works: Sequence[Work], keepalive: Callable[[], None]) -> None:
        self.size = len(works)
        self._free: queue.SimpleQueue[Work] = queue.SimpleQueue()
        for w in works:
            self._free.put(w)
        self._keepalive = keepalive
        self._pool = ThreadPoolExecutor(self.size, thread_name_prefix="work")

    def run(
        self,
        groups: Sequence[Sequence[Delivery]],
        process: Callable[[Delivery, Work], None],
        stop: Callable[[], bool],
    ) -> List[Delivery]:
        """Run ``process(d, work)`` for every delivery; return those left undone because
        a stop was requested (each chain finishes the delivery in hand only).

        An unexpected exception in a thread (a bug) is raised here once every chain
        has ended.
        """
        skipped: List[Delivery] = []
        lock = threading.Lock()

        def run_chain(chain: Sequence[Delivery]) -> None:
            work = self._free.get()
            try:
                for i, d in enumerate(chain):
                    if stop():
                        with lock:
                            skipped.extend(chain[i:])
                        return
                    process(d, work)
            finally:
                self._free.put(work)

        pending = {self._pool.submit(run_chain, c) for c in groups}
        futures: List[Future] = list(pending)
        while pending:
            done, pending = wait(pending, timeout=1.0, return_when=FIRST_EXCEPTION)
            if any(f.exception() is not None for f in done):
                wait(pending)  # let the other chains end before raising
                break
            if pending:
                self._keepalive()
        for f in futures:
            f.result()
        return skipped

    def close(self) -> None:
        self._pool.shutdown(wait=True)
