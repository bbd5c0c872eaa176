"""The pipeline every command runs: gather -> filter -> work -> post -> report -> settle.

``Flow`` knows nothing of pika, HTTP or files: it is composed by a role from a
*source* (the broker, or local files), a *work* step (download, or nothing), a
*publisher* (downstream posts) and a *reporter* (report messages back to sources).

The rule that keeps messages from being lost lives in ``_settle``: a broker message is
acknowledged only once its outcome is durable: file in place *and* downstream post
confirmed (OK), decision logged (REJECTED), or failure written to the on-disk retry
queue (FAILED).  If the broker connection drops mid-batch, nothing of that batch is
acknowledged; the broker redelivers it, and the work, being idempotent, finds it done.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Protocol, Sequence

from sarra import message
from sarra.delivery import FAILED, OK, REJECTED, Delivery
from sarra.errors import (
    ConnectionLost,
    HookError,
    MessageError,
    PathError,
    SarraError,
    TransferError,
)
from sarra.hooks import HookSet

if TYPE_CHECKING:  # imported where used: dd_post needs none (start-up time)
    from sarra.dedup import DedupCache
    from sarra.parallel import WorkThreads
    from sarra.retry import RetryQueue

log = logging.getLogger(__name__)


class Source(Protocol):
    """Where deliveries come from (a broker queue, or files named by the user)."""

    done: bool

    def gather(self, max_count: int, timeout: float) -> List[Delivery]: ...

    def settle(self, delivery: Delivery) -> None: ...


class Sink(Protocol):
    """Publishes what the batch produced (downstream posts, or reports)."""

    def publish(self, deliveries: Sequence[Delivery]) -> None: ...


@dataclass
class Stats:
    """Counters since start, for the periodic log line and ``dd status``."""

    ok: int = 0
    rejected: int = 0
    failed: int = 0
    bytes: int = 0
    last_activity: float = 0.0
    by_reason: Dict[str, int] = field(default_factory=dict)

    def save(self, path: Path, now: float) -> None:
        """Write the counters with those of the previous save, atomically, for ``dd status``
        (messages and bytes in the last interval)."""
        prev: Dict[str, float] = {}
        try:
            prev = json.loads(path.read_text()).get("now", {})
        except (OSError, ValueError):
            pass
        data = {
            "now": {
                "t": now,
                "ok": self.ok,
                "rejected": self.rejected,
                "failed": self.failed,
                "bytes": self.bytes,
                "last_activity": self.last_activity,
            },
            "prev": prev,
        }
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(data))
            os.replace(tmp, path)
        except OSError as e:
            log.debug("cannot save statistics to %s: %s", path, e)

    def count(self, d: Delivery) -> None:
        self.last_activity = time.time()
        if d.outcome == OK:
            self.ok += 1
            self.bytes += d.size
        elif d.outcome == REJECTED:
            self.rejected += 1
        else:
            self.failed += 1


class Flow:
    """One instance's run loop.  See the module docstring for the order of steps.

    ``select(delivery)`` returns False to reject a message (accept/reject masks);
    ``work(delivery)`` sets the outcome or raises a ``SarraError``.
    """

    def __init__(
        self,
        *,
        source: Source,
        select: Callable[[Delivery], bool] = lambda d: True,
        work: Optional[Callable[[Delivery], None]] = None,
        publisher: Optional[Sink] = None,
        reporter: Optional[Sink] = None,
        hooks: Optional[HookSet] = None,
        retry: Optional[RetryQueue] = None,
        dedup: Optional[DedupCache] = None,
        dedup_basis: str = "path",
        batch: int = 100,
        idle: float = 1.0,
        housekeeping: float = 300.0,
        stop: Callable[[], bool] = lambda: False,
        threads: Optional[WorkThreads] = None,
    ) -> None:
        self.source = source
        self.select = select
        self.work = work
        self.publisher = publisher
        self.reporter = reporter
        self.hooks = hooks or HookSet()
        self.retry = retry
        self.dedup = dedup
        self.dedup_basis = dedup_basis
        self.batch = batch
        self.idle = idle
        self.housekeeping_every = housekeeping
        self.stop = stop
        #: the work step of batches of whole files on several threads (``threads``)
        self.threads = threads
        self.stats = Stats()
        #: where housekeeping saves the counters (``dd status``); None: nowhere
        self.stats_file: Optional[Path] = None

    # ------------------------------------------------------------------ run loop
    def run(self) -> int:
        """Loop until a stop is requested or a one-shot source is exhausted.

        Returns the number of deliveries that ended FAILED.
        """
        self.hooks.safe_emit("on_start")
        next_housekeeping = time.monotonic() + self.housekeeping_every
        ended = False
        try:
            while not self.stop():
                try:
                    handled = self.run_once()
                except ConnectionLost as e:
                    log.warning(
                        "broker connection lost (%s); unacknowledged messages will be redelivered",
                        e,
                    )
                    continue
                if getattr(self.source, "done", False) and handled == 0:
                    break
                if time.monotonic() >= next_housekeeping:
                    self.housekeeping()
                    next_housekeeping = time.monotonic() + self.housekeeping_every
            ended = True
        finally:
            if ended:  # not when an error is on its way out: it is the one to report
                self._finish_sinks()
            self.hooks.safe_emit("on_stop")
            if self.stats_file is not None:
                self.stats.save(self.stats_file, time.time())
        return self.stats.failed

    def _finish_sinks(self) -> None:
        """Wait for what the publisher and reporter still expect confirms for."""
        for sink in (self.publisher, self.reporter):
            finish = getattr(sink, "finish", None)
            if finish is None:
                continue
            try:
                finish()
            except SarraError as e:
                log.warning("at stop: %s", e)

    def run_once(self) -> int:
        """Gather one batch and carry it through every step.  Returns its size.

        Raises:
            ConnectionLost: the batch is void; nothing of it was acknowledged.
        """
        batch = self._gather()
        if not batch:
            return 0
        try:
            groups = None
            if self.threads is not None and self.work is not None and len(batch) > 1:
                from sarra.parallel import chains

                groups = chains(batch)
            if groups is None:
                for i, d in enumerate(batch):
                    if i and self.stop():
                        batch = self._leave(batch, batch[i:])
                        break
                    if self._admit(d) and self.work is not None:
                        self._work(d, self.work)
            else:
                batch = self._work_on_threads(batch)
            self._post(batch)
            if self.reporter is not None:
                self.reporter.publish(batch)
        except ConnectionLost:
            self._abandon(batch)
            raise
        self._complete_claims(batch)
        for d in batch:
            self._settle(d)
        flush = getattr(self.source, "flush", None)
        if flush is not None:
            flush()
        return len(batch)

    def _gather(self) -> List[Delivery]:
        batch: List[Delivery] = []
        if self.retry is not None:
            batch.extend(self._due_retries(max(1, self.batch // 2)))
        timeout = 0.0 if batch else self.idle
        batch.extend(self.source.gather(self.batch - len(batch), timeout))
        return batch

    def _due_retries(self, n: int) -> List[Delivery]:
        out = []
        assert self.retry is not None
        for entry in self.retry.due(n):
            try:
                notice = message.decode(entry.topic, entry.headers, entry.body)
            except MessageError as e:
                log.error("retry queue: dropping undecodable entry: %s", e)
                self.retry.remove(entry)
                continue
            out.append(Delivery(notice, retry=entry, attempts=entry.attempts))
        return out

    def _leave(self, batch: List[Delivery], left: Sequence[Delivery]) -> List[Delivery]:
        """Stop requested: the deliveries not started stay unacknowledged (or in the retry
        queue) and come back after the restart.  Returns the rest of the batch."""
        log.info("stop requested: leaving %d messages for redelivery", len(left))
        self._abandon(left)
        gone = {id(d) for d in left}
        return [d for d in batch if id(d) not in gone]

    def _work_on_threads(self, batch: List[Delivery]) -> List[Delivery]:
        """Admit in order on this thread, then work the admitted on the threads."""
        assert self.threads is not None
        admitted = []
        for i, d in enumerate(batch):
            if i and self.stop():
                return self._leave(batch, batch[i:])
            if self._admit(d):
                admitted.append(d)
        from sarra.parallel import chains

        groups = chains(admitted) or []
        skipped = self.threads.run(groups, self._work, self.stop)
        return self._leave(batch, skipped) if skipped else batch

    # ------------------------------------------------------------------ steps
    def _admit(self, d: Delivery) -> bool:
        """Filter, deduplicate, run ``on_message`` hooks: True if the work step is due.

        Without a work step (a shovel), an admitted delivery is OK at once.
        """
        try:
            if not self.select(d):
                if d.outcome is None:
                    d.reject("rejected by accept/reject masks")
                return False
            if not self._claim(d):
                d.reject("duplicate", code=304, text="Not modified1")
                return False
            if not self.hooks.accepts(d):
                d.reject("rejected by on_message hook")
                return False
            if self.work is None:
                d.ok(201, "Published")
                d.post_notice = d.post_notice or d.notice
                return False
            return True
        except Exception as e:  # noqa: BLE001 - the same mapping as the work step's
            self._outcome_of(d, e)
            return False

    def _work(self, d: Delivery, work: Callable[[Delivery], None]) -> None:
        """Run the work step; always sets an outcome (``SarraError`` mapped to one)."""
        try:
            work(d)
        except Exception as e:  # noqa: BLE001 - re-raised unless a SarraError
            self._outcome_of(d, e)
        if d.outcome is None:
            d.fail("work step set no outcome", code=503)

    @staticmethod
    def _outcome_of(d: Delivery, e: Exception) -> None:
        """Map a step's error to the delivery's outcome; other errors propagate."""
        if isinstance(e, ConnectionLost):
            raise e
        if isinstance(e, PathError):
            d.reject(str(e), code=403, text=f"Forbidden : {e}")
        elif isinstance(e, MessageError):
            d.reject(str(e), code=417, text="Expectation Failed : malformed message")
        elif isinstance(e, TransferError):
            d.fail(str(e), code=e.code, permanent=e.permanent)
        elif isinstance(e, HookError):
            d.fail(str(e), code=503)
        else:
            raise e

    def _claim(self, d: Delivery) -> bool:
        if self.dedup is None:
            return True
        from sarra.dedup import fingerprint, owner_of

        key, owner = fingerprint(d.notice, self.dedup_basis), owner_of(d.notice)
        redelivered = bool(getattr(d.received, "redelivered", False))
        if not self.dedup.claim(key, owner, redelivered):
            return False
        d.dedup_key, d.dedup_owner = key, owner
        return True

    def _complete_claims(self, batch: Sequence[Delivery]) -> None:
        """Mark completed work in the duplicate cache before anything is acknowledged."""
        if self.dedup is not None:
            for d in batch:
                if d.outcome == OK and d.dedup_key:
                    self.dedup.done(d.dedup_key)

    def _post(self, batch: Sequence[Delivery]) -> None:
        if self.publisher is None:
            return
        ready = []
        for d in batch:
            if d.outcome != OK or d.post_notice is None:
                continue
            try:
                self.hooks.emit("on_post", d)
            except HookError as e:
                d.fail(str(e), code=503)
                continue
            ready.append(d)
        if ready:
            self.publisher.publish(ready)

    def _abandon(self, batch: Sequence[Delivery]) -> None:
        for d in batch:
            if d.dedup_key and self.dedup is not None:
                self.dedup.release(d.dedup_key, d.dedup_owner)

    def _settle(self, d: Delivery) -> None:
        """The one place that decides what happens to a message after its batch."""
        self.stats.count(d)
        if d.outcome != OK and d.dedup_key and self.dedup is not None:
            self.dedup.release(d.dedup_key, d.dedup_owner)
        if d.outcome == REJECTED:
            log.info("rejected %s: %s", d.describe(), d.reason)
        elif d.outcome == FAILED:
            if not self._keep_for_retry(d):
                return  # not acknowledged: the broker will redeliver it
        elif d.retry is not None and self.retry is not None:
            self.retry.remove(d.retry)
        self.source.settle(d)

    def _keep_for_retry(self, d: Delivery) -> bool:
        """Write a failure to the retry queue.  False if it could not be kept safely."""
        if d.received is None and d.retry is None:
            return True  # a local source settles its own failures (exit status, retry)
        if self.retry is None or d.permanent:
            log.error("failed %s: %s", d.describe(), d.reason)
            if d.retry is not None and self.retry is not None:
                self.retry.remove(d.retry)
            return True
        wire = message.encode(d.notice)
        try:
            kept = self.retry.put(
                wire.topic, wire.headers, wire.body.decode("utf-8"), d.reason, previous=d.retry
            )
        except OSError as e:
            log.error(
                "cannot write retry entry for %s (%s); leaving it to the broker", d.describe(), e
            )
            if d.received is not None and hasattr(self.source, "requeue"):
                self.source.requeue(d)
            return False
        if kept:
            log.warning(
                "failed %s (attempt %d, will retry): %s", d.describe(), d.attempts + 1, d.reason
            )
        else:
            log.error("giving up on %s after retry_ttl: %s", d.describe(), d.reason)
        return True

    def housekeeping(self) -> None:
        if self.dedup is not None:
            self.dedup.expire()
        self.hooks.safe_emit("on_housekeeping")
        s = self.stats
        if self.stats_file is not None:
            s.save(self.stats_file, time.time())
        log.info(
            "housekeeping: %d ok, %d rejected, %d failed, %d bytes; retry backlog %d",
            s.ok,
            s.rejected,
            s.failed,
            s.bytes,
            len(self.retry) if self.retry else 0,
        )


class BrokerSource:
    """Deliveries from a broker queue.  Undecodable messages are dropped here.

    ``broker`` is a ``sarra.broker.Broker`` (already consuming).
    """

    done = False

    def __init__(self, broker: Any, queue: str = "") -> None:
        self.broker = broker
        self.queue = queue

    def gather(self, max_count: int, timeout: float) -> List[Delivery]:
        out = []
        for r in self.broker.get(max_count, timeout):
            try:
                notice = message.decode(r.routing_key, r.headers, r.body)
            except message.IgnoredMessage as e:
                log.debug("ignoring %s: %s", r.routing_key, e)
                self.broker.ack(r)
                continue
            except MessageError as e:
                log.error("dropping undecodable message (topic %r): %s", r.routing_key[:80], e)
                self.broker.nack(r, requeue=False)
                continue
            out.append(Delivery(notice, received=r))
        return out

    def settle(self, d: Delivery) -> None:
        if d.received is not None:
            self.broker.ack(d.received)

    def flush(self) -> None:
        """Send the batch's acks in one go."""
        self.broker.flush()

    def requeue(self, d: Delivery) -> None:
        if d.received is not None:
            self.broker.nack(d.received, requeue=True)
