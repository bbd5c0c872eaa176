"""The pipeline every command runs: gather -> filter -> work -> post -> report -> settle.

``Flow`` knows nothing of pika, HTTP or files: it is composed by a role from a
*source* (the broker, or local files), a *work* step (download, or nothing), a
*publisher* (downstream posts), a *reporter* (report messages back to sources) and
other *sinks* (dd_log's printer: each batch, whole, before it is acknowledged).

The rule that keeps messages from being lost lives in ``_settle``: a broker message is
acknowledged only once its outcome is durable: file in place *and* downstream post
confirmed (OK), decision logged (REJECTED), or failure written to the on-disk retry
queue (FAILED).  If the broker connection drops mid-batch, nothing of that batch is
acknowledged; the broker redelivers it, and the work, being idempotent, finds it done.

Nothing that goes wrong with one message stops the loop: every step that runs for one
message (filter, ``on_message`` hooks, work, ``on_post`` hooks) maps any exception to
that message's outcome (``sarra.flow.boundary``: by errno for an ``OSError``; an unexpected
error is parked and given up after a few attempts), and a message that was in hand when
the process died several times in a row is given up (``sarra.flow.inhand``).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, Optional, Protocol, Sequence

from sarra.core import message
from sarra.core.delivery import FAILED, OK, REJECTED, Delivery
from sarra.core.errors import ConnectionLost, MessageError, SarraError, escape
from sarra.flow.boundary import MAX_FAULTS, outcome_of
from sarra.flow.source import BrokerSource
from sarra.flow.stats import Stats
from sarra.hooks import HookSet

if TYPE_CHECKING:  # imported where used: dd_post needs none (start-up time)
    from sarra.flow.dedup import DedupCache
    from sarra.flow.inhand import InHand
    from sarra.flow.parallel import WorkThreads
    from sarra.flow.retry import RetryQueue

log = logging.getLogger(__name__)

#: the longest pause after a failure the retry queue could not keep (seconds): well
#: inside a broker heartbeat, and the broker connection is kept alive meanwhile
HOLD_MAX = 16.0

__all__ = ["BrokerSource", "Flow", "Sink", "Source", "Stats"]


class Source(Protocol):
    """Where deliveries come from (a broker queue, or files named by the user)."""

    done: bool

    def gather(self, max_count: int, timeout: float) -> List[Delivery]: ...

    def settle(self, delivery: Delivery) -> None: ...


class Sink(Protocol):
    """Publishes what the batch produced (downstream posts, or reports)."""

    def publish(self, deliveries: Sequence[Delivery]) -> None: ...


class Flow:
    """One instance's run loop.  See the module docstring for the order of steps.

    ``select(delivery)`` returns False to reject a message (accept/reject masks);
    ``work(delivery)`` sets the outcome or raises (any ``Exception``: ``sarra.flow.boundary``
    maps it to an outcome).  Each of ``sinks`` is handed every batch, whole, once its
    outcomes are decided and before any of it is acknowledged; a sink that raises voids
    the batch (nothing of it acknowledged: the broker keeps it) and ends the run, since
    what it could not keep (stdout closed, disk full) must not be acknowledged.
    ``idle_exit``: stop once the source gave nothing for that many seconds (one-shot
    consumers: dd_log without ``follow``); None runs until a stop is requested.
    """

    def __init__(
        self,
        *,
        source: Source,
        select: Callable[[Delivery], bool] = lambda d: True,
        work: Optional[Callable[[Delivery], None]] = None,
        publisher: Optional[Sink] = None,
        reporter: Optional[Sink] = None,
        sinks: Sequence[Sink] = (),
        hooks: Optional[HookSet] = None,
        retry: Optional[RetryQueue] = None,
        dedup: Optional[DedupCache] = None,
        dedup_basis: str = "path",
        batch: int = 100,
        idle: float = 1.0,
        housekeeping: float = 300.0,
        idle_exit: Optional[float] = None,
        stop: Callable[[], bool] = lambda: False,
        threads: Optional[WorkThreads] = None,
    ) -> None:
        self.source = source
        self.select = select
        self.work = work
        self.publisher = publisher
        self.reporter = reporter
        self.sinks = list(sinks)
        self.hooks = hooks or HookSet()
        self.retry = retry
        self.dedup = dedup
        self.dedup_basis = dedup_basis
        self.batch = batch
        self.idle = idle
        self.idle_exit = idle_exit
        self.housekeeping_every = housekeeping
        self.stop = stop
        #: the work step of batches of whole files on several threads (``threads``)
        self.threads = threads
        self.stats = Stats()
        #: where housekeeping saves the counters (``dd status``); None: nowhere
        self.stats_file: Optional[Path] = None
        #: markers of the messages in hand (``sarra.flow.inhand``); None: not kept
        self.inhand: Optional[InHand] = None
        #: seconds to wait before the next batch: a failure the retry queue could not keep
        #: (disk full) went back to the broker, which hands it straight back (see _pause)
        self.hold = 0.0
        self._next_hold = 1.0
        self.sleep: Callable[[float], None] = time.sleep
        self.clock: Callable[[], float] = time.monotonic

    # ------------------------------------------------------------------ run loop
    def run(self) -> int:
        """Loop until a stop is requested, a one-shot source is exhausted or the source
        was idle for ``idle_exit`` seconds.

        Returns the number of deliveries that ended FAILED.
        """
        self.hooks.safe_emit("on_start")
        last_input = self.clock()
        next_housekeeping = last_input + self.housekeeping_every
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
                if handled:
                    last_input = self.clock()
                elif self.idle_exit is not None and self.clock() - last_input >= self.idle_exit:
                    break
                if self.hold:
                    self._pause()
                if self.clock() >= next_housekeeping:
                    self._safe_housekeeping()
                    next_housekeeping = self.clock() + self.housekeeping_every
                self.stats.tick(self.stats_file)  # for dd status/metrics/check
            ended = True
        finally:
            if ended:  # not when an error is on its way out: it is the one to report
                self._finish_sinks()
                if self.inhand is not None:  # else a marker may name what killed us
                    self.inhand.close()
            self.hooks.safe_emit("on_stop")
            if self.stats_file is not None:
                self.stats.save(self.stats_file, time.time())
        return self.stats.failed

    def _pause(self) -> None:
        """Wait ``hold`` seconds in short slices, keeping the broker connection alive and
        answering a stop request at once."""
        slices, self.hold = math.ceil(self.hold / 0.25), 0.0
        keepalive = getattr(self.source, "keepalive", None)
        for _ in range(slices):
            if self.stop():
                return
            self.sleep(0.25)
            if keepalive is not None:
                keepalive()

    def _finish_sinks(self) -> None:
        """Wait for what the sinks still expect (confirms, dd_log's summary)."""
        for sink in [self.publisher, self.reporter, *self.sinks]:
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
            Exception: whatever a sink raised (see ``sinks``); the batch is void too.
        """
        batch = self._gather()
        if not batch:
            return 0
        try:
            groups = None
            if self.threads is not None and self.work is not None and len(batch) > 1:
                from sarra.flow.parallel import chains

                groups = chains(batch)
            if groups is None:
                for i, d in enumerate(batch):
                    if i and self.stop():
                        batch = self._leave(batch, batch[i:])
                        break
                    self._admit_and_work(d)
            else:
                batch = self._work_on_threads(batch)
            self._post(batch)
            if self.reporter is not None:
                self._report(batch)
            for sink in self.sinks:
                sink.publish(batch)
        except Exception:  # nothing of the batch is acknowledged: the broker keeps it
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
            batch.extend(self.retry.deliveries(max(1, self.batch // 2)))
        timeout = 0.0 if batch else self.idle
        batch.extend(self.source.gather(self.batch - len(batch), timeout))
        return batch

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
            if self._begin(d):
                if self._admit(d):
                    admitted.append(d)
                self._end(d)
        from sarra.flow.parallel import chains

        groups = chains(admitted) or []
        skipped = self.threads.run(groups, self._work_in_hand, self.stop)
        return self._leave(batch, skipped) if skipped else batch

    # ------------------------------------------------------------------ steps
    def _admit_and_work(self, d: Delivery) -> None:
        """Admit, then work ``d``, with it marked in hand (``sarra.flow.inhand``).  The marker
        stays if anything goes through (a ``SystemExit`` in a hook is a crash too)."""
        if not self._begin(d):
            return
        if self._admit(d) and self.work is not None:
            self._work(d, self.work)
        self._end(d)

    def _work_in_hand(self, d: Delivery, work: Callable[[Delivery], None]) -> None:
        """The work step on a thread, with ``d`` marked in hand."""
        if self.inhand is not None:
            self.inhand.begin(d)
        self._work(d, work)
        self._end(d)

    def _begin(self, d: Delivery) -> bool:
        """Mark ``d`` in hand; False if it was given up (``InHand.take``)."""
        return self.inhand is None or self.inhand.take(d)

    def _end(self, d: Delivery) -> None:
        if self.inhand is not None:
            self.inhand.end(d)

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
                if d.outcome is None:  # else the hook decided (a retry, say)
                    d.reject("rejected by on_message hook")
                return False
            if self.work is None:
                d.ok(201, "Published")
                d.post_notice = d.post_notice or d.notice
                return False
            return True
        except Exception as e:  # noqa: BLE001 - the error boundary (sarra.flow.boundary)
            outcome_of(d, e, "filter")
            return False

    def _work(self, d: Delivery, work: Callable[[Delivery], None]) -> None:
        """Run the work step; always sets an outcome (any error mapped to one by
        ``sarra.flow.boundary``; only ``ConnectionLost`` goes through)."""
        try:
            work(d)
        except Exception as e:  # noqa: BLE001 - the error boundary (sarra.flow.boundary)
            outcome_of(d, e, "work")
        if d.outcome is None:
            d.fail("work step set no outcome", code=503)

    def _claim(self, d: Delivery) -> bool:
        if self.dedup is None:
            return True
        from sarra.flow.dedup import fingerprint, owner_of

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
            if not self._on_post(d):
                continue
            ready.append(d)
        if not ready:
            return
        try:
            self.publisher.publish(ready)
        except SarraError:
            raise  # ConnectionLost (the batch is void), AccessRefused (a config error)
        except Exception as e:  # noqa: BLE001 - a bug: these posts are not known to be out
            log.error("posting a batch failed: %s", escape(repr(e), 300), exc_info=e)
            for d in ready:
                d.fail(f"post failed: {type(e).__name__}", code=500)
                d.unexpected = True

    def _report(self, batch: Sequence[Delivery]) -> None:
        """Reports never change an outcome: a bug in making them is logged, not fatal."""
        assert self.reporter is not None
        try:
            self.reporter.publish(batch)
        except SarraError:
            raise
        except Exception as e:  # noqa: BLE001 - see the docstring
            log.error("reports of a batch not sent: %s", escape(repr(e), 300), exc_info=e)

    def _on_post(self, d: Delivery) -> bool:
        """Run the ``on_post`` hooks of ``d`` (marked in hand); False if one failed."""
        if not self.hooks.has("on_post"):
            return True
        if self.inhand is not None:
            self.inhand.begin(d)
        try:
            self.hooks.emit("on_post", d)
        except Exception as e:  # noqa: BLE001 - the error boundary (sarra.flow.boundary)
            outcome_of(d, e, "on_post")
        self._end(d)
        return d.outcome == OK and d.post_notice is not None  # None: a hook said not to

    def _abandon(self, batch: Sequence[Delivery]) -> None:
        for d in batch:
            if d.dedup_key and self.dedup is not None:
                self.dedup.release(d.dedup_key, d.dedup_owner)

    def _settle(self, d: Delivery) -> None:
        """The one place that decides what happens to a message after its batch."""
        self.stats.count(d)
        if self.inhand is not None:
            self.inhand.forget(d)
        if d.outcome != OK and d.dedup_key and self.dedup is not None:
            self.dedup.release(d.dedup_key, d.dedup_owner)
        if d.outcome == REJECTED:
            level = logging.DEBUG if d.quiet else logging.INFO  # the masks' routine rejections
            log.log(level, "rejected %s: %s", d.describe(), escape(d.reason, 300))
        elif d.outcome == FAILED:
            if not self._keep_for_retry(d):
                return  # not acknowledged: the broker will redeliver it
        elif d.retry is not None and self.retry is not None:
            self.retry.remove(d.retry)
        self.source.settle(d)

    def _keep_for_retry(self, d: Delivery) -> bool:
        """Write a failure to the retry queue.  False if it could not be kept safely.

        A message that met ``MAX_FAULTS`` unexpected errors is given up (reported,
        acknowledged): a bug or a broken hook must not hold it, nor the daemon, for ever.
        """
        if d.received is None and d.retry is None:
            return True  # a local source settles its own failures (exit status, retry)
        faults = d.faults + 1 if d.unexpected else d.faults
        reason = escape(d.reason, 300)
        if self.retry is None or d.permanent or faults >= MAX_FAULTS:
            if d.unexpected and self.retry is not None:
                log.error(
                    "giving up on %s after %d unexpected errors: %s", d.describe(), faults, reason
                )
            else:
                log.error("failed %s: %s", d.describe(), reason)
            if d.retry is not None and self.retry is not None:
                self.retry.remove(d.retry)
            return True
        try:
            wire = message.encode_local(d.notice)  # as received: v02, or v03 if need be
            kept = self.retry.put(
                wire.topic,
                wire.headers,
                wire.body.decode("utf-8", "surrogateescape"),
                d.reason,
                previous=d.retry,
                faults=faults,
            )
        except OSError as e:
            log.error(
                "cannot write retry entry for %s (%s); leaving it to the broker",
                d.describe(),
                escape(e, 300),
            )
            if d.received is not None and hasattr(self.source, "requeue"):
                self.source.requeue(d)
            self.hold, self._next_hold = self._next_hold, min(self._next_hold * 2, HOLD_MAX)
            return False
        except (MessageError, ValueError) as e:  # cannot be kept: never to come back
            log.error("failed %s: %s (cannot be retried: %s)", d.describe(), reason, escape(e))
            return True
        self._next_hold = 1.0
        if kept:
            log.warning(
                "failed %s (attempt %d, will retry): %s", d.describe(), d.attempts + 1, reason
            )
        else:
            log.error("giving up on %s after retry_ttl: %s", d.describe(), reason)
        return True

    def _safe_housekeeping(self) -> None:
        """Housekeeping that fails (a disk error in a cache) is logged; the daemon goes on."""
        try:
            self.housekeeping()
        except Exception as e:  # noqa: BLE001 - no message depends on it
            log.error("housekeeping failed: %s", escape(repr(e), 300), exc_info=e)

    def housekeeping(self) -> None:
        if self.dedup is not None:
            self.dedup.expire()
        if self.inhand is not None:
            self.inhand.expire()
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
