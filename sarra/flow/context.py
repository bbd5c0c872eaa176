"""The services a role is built from: options, paths, credentials, broker, transfers.

``Context`` is created by ``cli`` for one process (one instance of one config) and
passed explicitly to the role; nothing here is global.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import urlparse

from sarra.config.credentials import Credentials
from sarra.config.loader import Options
from sarra.config.paths import Paths, short_name
from sarra.core.delivery import Delivery
from sarra.core.errors import ConfigError, SarraError
from sarra.core.redaction import redact_url
from sarra.hooks import HookSet
from sarra.logs.progress import Progress
from sarra.logs.units import human_rate, human_size

log = logging.getLogger(__name__)


class Context:
    """Everything one running instance needs, built once."""

    def __init__(
        self,
        program: str,
        options: Options,
        paths: Paths,
        *,
        instance: int = 1,
        stop: Callable[[], bool] = lambda: False,
        interactive: bool = False,
    ) -> None:
        self.program = program
        self.options = options
        self.paths = paths
        self.instance = instance
        self.stop = stop
        self.interactive = interactive
        self.credentials = Credentials.load(paths.credentials_file())
        self._closers: list = []
        self._policy: Any = None
        self._hooks: Optional[HookSet] = None
        self._bandwidth: Any = None

    @property
    def role(self) -> str:
        """The program's short name (``dd_sara`` -> ``sara``): ``program`` is as called."""
        return short_name(self.program)

    @property
    def config(self) -> str:
        return self.options.config or "_cmdline"

    @property
    def state_dir(self) -> Path:
        d = self.paths.state(self.program, self.config)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def broker(
        self, url: Optional[str], what: str = "broker", give_up_after: Optional[float] = None
    ) -> Any:
        """A connected ``Broker`` for ``url`` (password from credentials.conf).

        ``give_up_after``: seconds of failed connection attempts after which a one-shot
        command stops trying (daemons retry for ever).

        Raises:
            ConfigError: no URL.  AccessRefused: login refused.
            BrokerError: not connected within ``give_up_after`` seconds.
        """
        from sarra.broker.connection import Broker
        from sarra.core.errors import BrokerError, ConnectionLost

        if not url:
            raise ConfigError(f"no {what} configured (option {what})")
        o = self.options
        deadline = [time.monotonic() + give_up_after if give_up_after else None]

        def stop() -> bool:
            late = deadline[0] is not None and time.monotonic() > deadline[0]
            return late or self.stop()

        b = Broker(
            self.credentials.resolve(url),
            heartbeat=int(o.heartbeat),  # 0: off, as the table says
            prefetch=o.prefetch,
            name=f"{self.program}/{self.config}",
            stop=stop,
            tls_ca=o.broker_ca,
            tls_verify=o.broker_tls_verify,
        )
        try:
            b.connect()
        except ConnectionLost as e:
            if self.stop():
                raise
            raise BrokerError(
                f"cannot connect to {describe_url(url)} ({what}) within {give_up_after:.0f} s"
            ) from e
        deadline[0] = None
        self._closers.append(b.close)
        return b

    def broker_in_background(
        self,
        url: Optional[str],
        what: str = "broker",
        give_up_after: Optional[float] = None,
        then: Callable[[Any], None] = lambda b: None,
    ) -> BackgroundBroker:
        """``broker()`` (then ``then(broker)``) in a thread, for a one-shot command that
        has its own work to start on: importing pika and the AMQP handshake overlap it.

        Raises:
            ConfigError: no URL (at once; connection errors come from ``get()``).
        """
        if not url:
            raise ConfigError(f"no {what} configured (option {what})")

        def connect() -> Any:
            b = self.broker(url, what, give_up_after)
            then(b)
            return b

        return BackgroundBroker(connect)

    def brokers(self) -> tuple:
        """(consuming broker, posting broker): one connection when they are the same."""
        o = self.options
        broker = self.broker(o.broker)
        if o.post_broker and o.post_broker != o.broker:
            return broker, self.broker(o.post_broker, "post_broker")
        return broker, broker

    def retry_queue(self) -> Any:
        """This instance's on-disk retry queue."""
        from sarra.flow.retry import RetryQueue

        o = self.options
        return RetryQueue(
            self.state_dir / f"retry.{self.instance:02d}", delay=o.retry_delay, ttl=o.retry_ttl
        )

    def dedup_cache(self) -> Any:
        """The config's duplicate cache (shared by its instances), or None if off."""
        from sarra.flow.dedup import DedupCache

        window = self.options.suppress_duplicates
        return DedupCache(self.state_dir / "dedup.sqlite", window) if window else None

    def run_flow(self, flow: Any) -> int:
        """Run a daemon's flow, saving its counters where ``dd status`` reads them."""
        from sarra.flow.inhand import InHand

        flow.stats_file = self.state_dir / f"stats.{self.instance:02d}.json"
        flow.stats.every = self.options.metrics_interval
        flow.stats.broker = connection_of(flow)
        flow.inhand = InHand(self.state_dir / "inhand")  # shared by the instances
        flow.run()
        return 0

    def reset_queue(self, broker: Any, queue: str) -> None:
        """``reset``: the first instance deletes the queue (and what it holds) at start,
        so it is declared afresh; the others must not delete what it already receives."""
        if self.options.reset and self.instance == 1:
            log.warning("reset: deleting queue %s and its messages", queue)
            broker.delete_queue(queue)

    def forget_queue(self, queue: str) -> None:
        """``cleanup``: delete the queue on the broker and the config's local state."""
        from sarra.flow.consumer import forget_state

        self.broker(self.options.broker).delete_queue(queue)
        forget_state(self.state_dir)

    def hooks(self, locate: Optional[Callable[[Delivery], None]] = None) -> HookSet:
        """The plugins the config names, found in ``<config_dir>/plugins`` and among
        sarra's (``sarra.hooks.loading``), built once; ``locate`` tells the plugins that
        read or change where a file goes (roles that download pass their ``Locator``).

        Raises:
            ConfigError: a plugin cannot be found or built (``file:line``).
        """
        from sarra.hooks.loading import load, plugin_dirs

        hooks = getattr(self, "_hooks", None)
        if hooks is None:  # built once per process: ``foreground`` builds them first
            dirs = plugin_dirs(self.paths)
            hooks = self._hooks = load(self.options, plugin_dirs=dirs, instance=self.instance)
        if locate is not None:
            hooks.place_with(locate)
        return hooks

    def downloader(
        self, broker: Any, hooks: HookSet, locate: Callable[[Delivery], None], assembler: Any = None
    ) -> Any:
        """The download work step (subscribe, sara): whole files and, through the
        assembler, blocks of partitioned files, sharing one transfer pool."""
        from sarra.flow.assembly import Assembler, part_hooks
        from sarra.flow.download import Downloader

        transfers = self.transfers()
        progress = self.progress(broker)
        if assembler is None:
            assembler = Assembler(
                self.options,
                transfers=transfers,
                progress=progress,
                after_part=part_hooks(hooks),
                after_file=file_hooks(hooks, discard=self.options.discard),
            )
        return Downloader(
            self.options,
            locate=locate,
            transfers=transfers,
            progress=progress,
            after_file=file_hooks(hooks, discard=self.options.discard),
            assembler=assembler,
        )

    def work_threads(
        self, broker: Any, hooks: HookSet, locate: Callable[[Delivery], None], then: Any = None
    ) -> Any:
        """``threads N`` > 1: N download work steps, each with its own transfer pool, for
        ``Flow(threads=...)``; None with ``threads 1``.  The threads never touch the
        broker (heartbeats come from the flow's thread) nor draw progress on the
        terminal; their ``on_file`` hooks run one at a time.  ``then(delivery)`` runs
        after each download, on its thread (``sarra.flow.repost.LocalCopy``)."""
        n = self.options.threads
        if n <= 1:
            return None
        from sarra.flow.download import Downloader
        from sarra.flow.parallel import WorkThreads
        from sarra.flow.repost import followed_by

        after_file = file_hooks(hooks, threading.Lock(), discard=self.options.discard)
        works = [
            followed_by(
                Downloader(
                    self.options,
                    locate=locate,
                    transfers=self.transfers(),
                    progress=Progress(),
                    after_file=after_file,
                ),
                then,
            )
            for _ in range(n)
        ]
        threads = WorkThreads(works, keepalive=broker.keepalive)
        self._closers.append(threads.close)
        return threads

    def transfers(self, *, total: bool = True, policy: bool = True) -> Any:
        """A transfer pool with the download limits of the options, the bandwidth
        limits (:meth:`bandwidth`; ``total`` False: without the config's total) and,
        with ``policy``, where one applies, the SSRF policy (see :meth:`fetch_policy`)."""
        from sarra.transfer.limits import Limits
        from sarra.transfer.pool import TransferPool

        o = self.options
        limits = Limits(max_size=o.download_max_size, min_rate=o.timeout_min_rate, stop=self.stop)
        pool = TransferPool(
            credentials=self.credentials.lookup,
            timeout=float(o.timeout or 30),
            options={"redirect_hosts": o.redirect_hosts},
            limits=limits,
            policy=self.fetch_policy() if policy else None,
            bandwidth=self.bandwidth(),
            total=total,
        )
        self._closers.append(pool.close_all)
        return pool

    def bandwidth(self) -> Any:
        """The bandwidth budgets of this process (``sarra.transfer.bandwidth``), built
        once and shared by its pools and threads; None when no limit is set."""
        o = self.options
        if not (o.bandwidth or o.bandwidth_per_host or o.source_bandwidth):
            return None
        if self._bandwidth is None:
            from sarra.transfer.bandwidth import Bandwidth, shared_budgets

            self._bandwidth = Bandwidth(
                config_file=self.state_dir / "bandwidth",
                shared_dir=shared_budgets(self.paths.state_dir),
                total=o.bandwidth,
                per_host=o.bandwidth_per_host,
                quotas=o.source_bandwidth,
                by_source=self.role == "sara",
            )
        return self._bandwidth

    def source(self, broker: Any, queue: str) -> Any:
        """The flow's source: ``queue`` on ``broker``, with the host's share of the
        config's total learned from the broker and, where sources have quotas or a
        fair share, their messages held back while they are over it
        (``sarra.flow.sharing``)."""
        from sarra.flow.source import BrokerSource

        source = BrokerSource(broker, queue)
        bandwidth = self.bandwidth()
        if bandwidth is None:
            return source
        from sarra.flow.sharing import SharedSource

        o = self.options
        return SharedSource(
            source,
            bandwidth,
            instances=o.instances,
            by_source=self.role == "sara",
            from_exchange=bool(o.source_from_exchange),
        )

    def fetch_policy(self) -> Any:
        """The SSRF policy (``sarra.core.fetchpolicy``): always for dd_sara ingesting sources'
        posts (``source_from_exchange``), else only where ``source_hosts`` is set (a
        subscriber fetching from its own network is legitimate).  None: no policy."""
        o = self.options
        lines = o.source_hosts
        ingest = self.role == "sara" and o.source_from_exchange
        if not lines and not ingest:
            return None
        if self._policy is None:
            from sarra.core.fetchpolicy import FetchPolicy
            from sarra.transfer.netguard import own_addresses

            self._policy = FetchPolicy(lines, own_addresses())
            if not lines:
                log.warning(
                    "no source_hosts lines: every source's post will be refused (403) until "
                    "the hosts each source may name are listed (dd_sara(8); "
                    "'source_hosts * *' allows any public host)"
                )
        return self._policy

    def host(self, url: Optional[str]) -> str:
        return (urlparse(url).hostname or "localhost") if url else "localhost"

    def progress(self, broker: Any = None) -> Progress:
        """Progress of transfers: broker heartbeats, and a line on stderr when it is a
        terminal (``foreground`` and one-shot commands, see ``cli``)."""
        return Progress(
            keepalive=broker.keepalive if broker is not None else None,
            stream=sys.stderr if self.interactive else None,
        )

    def close(self) -> None:
        for close in reversed(self._closers):
            try:
                close()
            except Exception as e:  # noqa: BLE001 - closing must go on for the others
                log.debug("error while closing: %s", e)
        self._closers.clear()


class BackgroundBroker:
    """A broker being connected by a thread; used like the broker once connected.

    Any attribute access waits for the connection and raises the error the connection
    ended with (``BrokerError``, ``AccessRefused``...), so a caller's first publish is
    where a refused login or an unreachable broker is reported.
    """

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._broker: Any = None
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, args=(connect,), daemon=True)
        self._thread.name = "connect"
        self._thread.start()

    def _run(self, connect: Callable[[], Any]) -> None:
        try:
            self._broker = connect()
        except BaseException as e:  # noqa: BLE001 - handed to the caller by get()
            self._error = e

    def failed(self) -> bool:
        """True once the connection attempt has ended in an error (never waits)."""
        return self._error is not None and not self._thread.is_alive()

    def connecting(self) -> bool:
        """True while the thread is still at work (never waits)."""
        return self._thread.is_alive()

    def get(self) -> Any:
        """The connected broker (waits for the thread).  Raises its error, if any."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._broker

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


def file_hooks(
    hooks: HookSet, lock: Any = None, discard: bool = False
) -> Callable[[Delivery], None]:
    """``on_file`` runner: a failing hook is logged with its name; the file stays.

    ``lock``: held while the hooks run (work threads share it: user hooks are not
    expected to be thread-safe).  ``discard``: the file is deleted once they ran (v2's
    download-and-discard: a subscriber that feeds a program through its hooks).
    """

    def run(d: Delivery) -> None:
        size = d.size
        log.info(
            "%s %s (%s, %s)",
            d.report[1].lower() if d.report else "placed",
            d.local_path,
            human_size(size),
            human_rate(size, d.elapsed),
        )
        if hooks.has("on_file"):
            try:
                if lock is None:
                    hooks.emit("on_file", d)
                else:
                    with lock:
                        hooks.emit("on_file", d)
            except SarraError as e:  # a HookError, or a path a plugin's view refused
                log.error("%s (file %s is in place)", e, d.local_path)
        if discard:
            discard_file(d)

    return run


def discard_file(d: Delivery) -> None:
    """Delete ``d``'s file, reached without following links below its tree's root; a
    failure is logged (the message is done: its file was in place and its hooks ran)."""
    from sarra.fs.safefs import Place, remove_name, walk

    place = d.place if d.place is not None else Place.of(d.local_path)
    try:
        fd = walk(place.root, place.dir_parts, create=False)
        try:
            remove_name(fd, place.name)
        finally:
            os.close(fd)
    except (OSError, SarraError) as e:
        log.error("discard: cannot delete %s: %s", d.local_path, e)
        return
    log.info("discarded %s", d.local_path)


def connection_of(flow: Any) -> Any:
    """The broker connection whose state and reconnects ``dd metrics`` shows: the one
    consumed from, else the one posted to (dd_watch); None for neither."""
    from sarra.flow.sinks import NoticePublisher
    from sarra.flow.source import BrokerSource

    if isinstance(flow.source, BrokerSource):
        return flow.source.broker
    if isinstance(flow.publisher, NoticePublisher):
        return flow.publisher.broker
    return None


def describe_url(url: Optional[str]) -> str:
    return redact_url(url) if url else "(none)"
