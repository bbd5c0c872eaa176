"""Prometheus exposition of every instance's counters: ``dd metrics``, one endpoint per host.

Each daemon instance saves its counters every ``metrics_interval`` seconds
(``sarra.flow.stats``); ``dd metrics`` reads them with everything ``dd status`` knows
(instances expected and running, hung ones, retry backlogs, queue depths from the broker)
and turns them into the Prometheus text format through prometheus_client, on each scrape.
Without ``--port`` it prints the exposition once (node_exporter's textfile collector,
or a look by hand).

Why one endpoint per host collected by ``dd`` and not one per instance
(``metrics_port``):

* a switch runs tens of configs with several instances each: an endpoint per instance
  is a port plan, and a scrape config to keep in step with every ``instances`` edit; one
  per host is one target line in prometheus.yml, and a new config shows up by itself;
* a dead or hung instance cannot answer a scrape: ``dd`` still reads its pidfile and its
  last saved counters and says ``sarra_instance_up 0``, which is what an alert wants;
* the queue depth is asked of each broker once per scrape for every config, not by each
  instance on its own connection;
* no HTTP server thread in the daemons: their hot path stays the flow's (a dictionary
  bump per message and a small file every few seconds).

The price: counters are as fresh as ``metrics_interval`` (5 s by default, below any
usual scrape interval), and a counter restarts at 0 with its process, which Prometheus's
``rate()`` and ``increase()`` treat as a counter reset.

Metric and label names follow the Prometheus conventions (``sarra_..._total`` for
counters, base units ``_seconds`` and ``_bytes``); every series has the labels ``role``
(subscribe, sara...), ``config`` and, for an instance's, ``instance``.
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from sarra.core.errors import SarraError
from sarra.flow.stats import LAG_BUCKETS
from sarra.service.health import ConfigStatus, InstanceFacts

log = logging.getLogger(__name__)

CONFIG_LABELS = ("role", "config")
INSTANCE_LABELS = ("role", "config", "instance")
DEFAULT_BIND = "127.0.0.1"

#: counters of a saved ``stats.NN.json``: (metric name without _total, saved key, help)
COUNTERS: Tuple[Tuple[str, str, str], ...] = (
    ("sarra_notices_received", "received", "Notices taken from the source (retries not counted)"),
    ("sarra_notices_accepted", "ok", "Notices processed to the end (file placed or posted)"),
    ("sarra_files", "files", "Files placed (downloaded, linked, removed) or posted"),
    ("sarra_transferred_bytes", "bytes", "Bytes of the files processed"),
)
#: counters by class: (name, saved key, label, help)
CLASSED: Tuple[Tuple[str, str, str, str], ...] = (
    (
        "sarra_notices_rejected",
        "rejected_by",
        "reason",
        "Notices rejected: duplicate, filtered (accept/reject, hooks), forbidden, malformed",
    ),
    (
        "sarra_notices_failed",
        "failed_by",
        "code",
        "Failed attempts by report code (404, 499, 503...; 500: unexpected error)",
    ),
)


def _num(d: Any, key: str) -> float:
    v = d.get(key, 0) if isinstance(d, dict) else 0
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0


class SarraCollector:
    """A prometheus_client collector of every config ``rows()`` returns, read afresh at
    each scrape (``rows`` is ``Service.status_rows`` over the current configs)."""

    def __init__(self, rows: Callable[[], Sequence[ConfigStatus]]) -> None:
        self.rows = rows

    def collect(self) -> Iterator[Any]:
        rows = list(self.rows())
        yield from self._config_families(rows)
        yield from self._instance_families(rows)

    # -- per config
    def _config_families(self, rows: Sequence[ConfigStatus]) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        specs: List[Tuple[str, str, Callable[[ConfigStatus], Optional[float]]]] = [
            ("sarra_instances_expected", "Instances the config was started with", _expected),
            ("sarra_instances_running", "Instances whose process runs", lambda r: r.running),
            ("sarra_instances_hung", "Running instances whose log is idle too long", _hung),
            ("sarra_config_wanted", "1 if the config is started (dd start)", _wanted),
            ("sarra_config_broken", "1 if the config file cannot be read", _broken),
            ("sarra_queue_messages", "Messages ready in the config's broker queue", _queue),
        ]
        for name, help_, value in specs:
            fam = GaugeMetricFamily(name, help_, labels=CONFIG_LABELS)
            for r in rows:
                v = value(r)
                if v is not None:
                    fam.add_metric(_config_labels(r), v)
            yield fam

    # -- per instance
    def _instance_families(self, rows: Sequence[ConfigStatus]) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        each = [(r, i) for r in rows for i in r.instances]
        up = GaugeMetricFamily(
            "sarra_instance_up", "1 if the instance's process runs", labels=INSTANCE_LABELS
        )
        backlog = GaugeMetricFamily(
            "sarra_retry_backlog", "Messages waiting in the retry queue", labels=INSTANCE_LABELS
        )
        for r, i in each:
            up.add_metric(_labels(r, i), 1.0 if i.running else 0.0)
            backlog.add_metric(_labels(r, i), float(i.retry))
        yield up
        yield backlog
        saved = [(r, i, i.saved["now"]) for r, i in each if i.saved]
        for name, key, help_ in COUNTERS:
            fam = CounterMetricFamily(name, help_, labels=INSTANCE_LABELS)
            for r, i, now in saved:
                fam.add_metric(_labels(r, i), _num(now, key))
            yield fam
        for name, key, label, help_ in CLASSED:
            fam = CounterMetricFamily(name, help_, labels=INSTANCE_LABELS + (label,))
            for r, i, now in saved:
                by = now.get(key)
                for cls in sorted(by) if isinstance(by, dict) else ():
                    fam.add_metric(_labels(r, i) + [str(cls)[:16]], _num(by, cls))
            yield fam
        lag = HistogramMetricFamily(
            "sarra_lag_seconds",
            "Seconds from a notice's pubtime to its outcome (first attempts)",
            labels=INSTANCE_LABELS,
        )
        for r, i, now in saved:
            buckets = _buckets(now.get("lag"))
            if buckets is not None:
                lag.add_metric(_labels(r, i), buckets, sum_value=_num(now.get("lag"), "sum"))
        yield lag
        yield from self._broker_families(saved)
        yield from self._time_families(saved, GaugeMetricFamily)

    def _broker_families(self, saved: List[Tuple[ConfigStatus, InstanceFacts, Dict]]) -> Iterator:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        connected = GaugeMetricFamily(
            "sarra_broker_connected",
            "1 if the instance's broker connection was up at its last save",
            labels=INSTANCE_LABELS,
        )
        reconnects = CounterMetricFamily(
            "sarra_broker_reconnects",
            "Connections made again after the first",
            labels=INSTANCE_LABELS,
        )
        for r, i, now in saved:
            b = now.get("broker")
            if isinstance(b, dict) and b:
                connected.add_metric(_labels(r, i), 1.0 if b.get("connected") is True else 0.0)
                reconnects.add_metric(_labels(r, i), _num(b, "reconnects"))
        yield connected
        yield reconnects

    def _time_families(self, saved: List[Tuple[ConfigStatus, InstanceFacts, Dict]], gauge: Any):
        specs = (
            ("sarra_last_activity_timestamp_seconds", "last_activity", "Last message settled"),
            ("sarra_instance_start_time_seconds", "started", "When the instance's process started"),
            ("sarra_stats_saved_timestamp_seconds", "t", "When the instance last saved these"),
        )
        for name, key, help_ in specs:
            fam = gauge(name, help_ + " (seconds since the epoch)", labels=INSTANCE_LABELS)
            for r, i, now in saved:
                if _num(now, key) > 0:
                    fam.add_metric(_labels(r, i), _num(now, key))
            yield fam


def _buckets(lag: Any) -> Optional[List[Tuple[str, float]]]:
    """Cumulative ``(le, count)`` pairs of a saved lag histogram; None if of another shape
    (a file of another version with other buckets)."""
    if not isinstance(lag, dict):
        return None
    counts = lag.get("counts")
    if not isinstance(counts, list) or len(counts) != len(LAG_BUCKETS) + 1:
        return None
    out, total = [], 0.0
    for bound, n in zip([*map(str, LAG_BUCKETS), "+Inf"], counts):
        total += n if isinstance(n, (int, float)) and n > 0 else 0
        out.append((bound, total))
    return out


def _config_labels(r: ConfigStatus) -> List[str]:
    return [r.target.short, r.target.config]


def _labels(r: ConfigStatus, i: InstanceFacts) -> List[str]:
    return [r.target.short, r.target.config, str(i.n)]


def _expected(r: ConfigStatus) -> float:
    return float(r.expected)


def _hung(r: ConfigStatus) -> float:
    return float(len(r.hung))


def _wanted(r: ConfigStatus) -> float:
    return 1.0 if r.wanted else 0.0


def _broken(r: ConfigStatus) -> float:
    return 1.0 if r.error else 0.0


def _queue(r: ConfigStatus) -> Optional[float]:
    return None if r.queue is None else float(r.queue)


# ---------------------------------------------------------------- exposition
def registry_of(rows: Callable[[], Sequence[ConfigStatus]]) -> Any:
    """A prometheus_client registry holding only sarra's collector (no process metrics
    of the ``dd`` process itself: they would describe the collector, not the switch)."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(SarraCollector(rows))  # type: ignore[arg-type]
    return registry


def exposition(rows: Callable[[], Sequence[ConfigStatus]]) -> str:
    """The text format (version 0.0.4) of one collection."""
    from prometheus_client import generate_latest

    return generate_latest(registry_of(rows)).decode("utf-8")


class _QuietHandler(WSGIRequestHandler):
    """No line on stderr per scrape (wsgiref logs every request), and a client that
    sends nothing is dropped after ``timeout`` seconds: scrapes are answered one at a
    time, so a silent connection must not hold the endpoint."""

    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class _Server(WSGIServer):
    address_family = socket.AF_INET


class _Server6(WSGIServer):
    address_family = socket.AF_INET6


def make_endpoint(
    rows: Callable[[], Sequence[ConfigStatus]], bind: str = DEFAULT_BIND, port: int = 0
) -> WSGIServer:
    """An HTTP server answering ``/metrics`` (any path) with the exposition, bound to
    ``bind`` (loopback by default: put a reverse proxy with TLS in front to expose it).
    ``port`` 0 picks a free port (``server.server_port``).

    Raises:
        OSError: the address cannot be bound.
    """
    from prometheus_client import make_wsgi_app

    cls = _Server6 if ":" in bind else _Server
    server = make_server(
        bind, port, make_wsgi_app(registry_of(rows)), server_class=cls, handler_class=_QuietHandler
    )
    server.timeout = 0.5
    return server


def serve(server: WSGIServer, stop: Callable[[], bool]) -> None:
    """Answer scrapes one at a time until ``stop()``; one scrape's collection is not
    shared with another's (no lock needed, and each sees the files as they are)."""
    try:
        while not stop():
            server.handle_request()
    finally:
        server.server_close()


def run(
    rows: Callable[[], Sequence[ConfigStatus]],
    bind: str,
    port: Optional[int],
    out: Callable[[str], None] = print,
) -> int:
    """``dd metrics``: print the exposition once, or with ``port`` serve it until SIGTERM
    (or Ctrl-C).  Returns the exit status (0).

    Raises:
        SarraError: the address cannot be bound.
    """
    if port is None:
        out(exposition(rows).rstrip("\n"))
        return 0
    from sarra.service.signals import SignalReceiver

    try:
        server = make_endpoint(rows, bind, port)
    except OSError as e:
        raise SarraError(f"cannot listen on {bind}:{port}: {e}") from e
    host = f"[{bind}]" if ":" in bind else bind
    out(f"serving metrics on http://{host}:{server.server_port}/metrics")
    sys.stdout.flush()
    with SignalReceiver() as rx:
        serve(server, lambda: rx.stop_requested)
    return 0
