"""What each speed trick behind a seam gains: its code path with and without the trick.

A micro-benchmark per trick, not a whole command: 2,000 confirmed publishes (batched on
pika's internals vs ``BlockingChannel.confirm_delivery``), the same batches with and
without corked frames, 2,000 acks (queued vs ``BlockingChannel.basic_ack``), the import
of ``sarra.broker.connection`` (without vs with pika's asyncio adapter) and 2,000 GETs
of 1 KiB (straight to the adapter's pool vs ``Session.request``).  Each pair runs
``--rounds`` times, alternating which goes first; medians are printed with the gain,
(public - trick) / public.  A trick that gains under ~5% should be dropped.

    python3 -m bench.bench_seams [--n 2000] [--rounds 5] [--only confirms,cork,acks,import,http]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, List, Tuple

from bench.common import REPO, rmq, table, wait_for
from sarra.broker import pika_seam
from sarra.broker.connection import Broker, Outgoing
from sarra.core.seams import FORCE_ENV, Choice
from sarra.transfer import for_url, requests_seam

PRIVATE, PUBLIC = Choice(True, "bench"), Choice(False, "bench")


def _broker(url: str, queue: str) -> Broker:
    b = Broker(url, prefetch=100)
    b.connect()
    b.declare_exchange("xs_bench")
    b.declare_queue(queue)
    b.bind(queue, "xs_bench", "#")
    return b


def publish(url: str, n: int, choice: Choice, cork: bool = True) -> float:
    """Seconds for ``n`` persistent 1 KiB posts in confirmed batches of 100."""
    pika_seam.CHANNEL = choice
    real = pika_seam.corked
    if not cork:
        pika_seam.corked = lambda conn: contextlib.nullcontext()  # type: ignore[assignment]
    q = f"q_{uuid.uuid4().hex[:8]}"
    b = _broker(url, q)
    msgs = [Outgoing("xs_bench", "k", {"n": str(i)}, b"x" * 1024) for i in range(n)]
    try:
        t0 = time.perf_counter()
        for i in range(0, n, 100):
            assert b.publish_batch(msgs[i : i + 100]) == []
        return time.perf_counter() - t0
    finally:
        pika_seam.corked = real  # type: ignore[assignment]
        b.delete_queue(q)
        b.close()


def acks(url: str, n: int, choice: Choice) -> float:
    """Seconds to get and ack ``n`` messages (one flush per batch, as the flow does)."""
    q = f"q_{uuid.uuid4().hex[:8]}"
    pika_seam.CHANNEL = PRIVATE
    b = _broker(url, q)
    b.publish_batch([Outgoing("xs_bench", "k", {}, b"x" * 1024) for _ in range(n)])
    b.close()
    pika_seam.CHANNEL = choice
    b = _broker(url, q)
    b.consume(q)
    try:
        t0, got = time.perf_counter(), 0
        while got < n:
            batch = b.get(100, 5.0)
            for r in batch:
                b.ack(r)
            b.flush()
            got += len(batch)
        return time.perf_counter() - t0
    finally:
        b.delete_queue(q)
        b.close()


def import_time(forced: bool) -> float:
    """CPU seconds of a fresh interpreter that imports sarra.broker.connection (CPU, not
    wall time: the 2 cores here are shared with the broker and whatever else runs)."""
    env = {k: v for k, v in os.environ.items() if k != FORCE_ENV}
    env.update(PYTHONPATH=str(REPO), **({FORCE_ENV: "1"} if forced else {}))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", "import sarra.broker.connection"], env=env, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def gets(url: str, n: int, choice: Choice) -> float:
    """CPU seconds of this process for ``n`` GETs of 1 KiB over one keep-alive session."""
    requests_seam.ADAPTER = choice
    with for_url(url) as t:
        c0 = time.process_time()
        for i in range(n):
            t.get(f"/f{i % 200}", _Sink())
        return time.process_time() - c0


class _Sink:
    def write(self, data: bytes) -> int:
        return len(data)


def http_server(root: Path) -> Tuple[subprocess.Popen, str]:
    from tests.fixtures.servers import free_port

    for i in range(200):
        (root / f"f{i}").write_bytes(os.urandom(1024))
    port = free_port()
    code = (
        "import sys; from functools import partial; from pathlib import Path;"
        "from tests.fixtures.servers import _RangeHandler, _HttpServer, HttpServer;"
        "H = partial(_RangeHandler, directory=sys.argv[1]);"
        "s = _HttpServer(('127.0.0.1', int(sys.argv[2])), H);"
        "s.box = HttpServer(root=Path(sys.argv[1])); s.serve_forever()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(root), str(port)],
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )

    def up() -> bool:
        import socket

        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
            return True
        return False

    if not wait_for(up, 10):
        sys.exit("HTTP server did not start")
    return proc, f"http://127.0.0.1:{port}/"


def pairs(rounds: int, trick: Callable[[], float], public: Callable[[], float]) -> List[str]:
    got: Dict[str, List[float]] = {"trick": [], "public": []}
    for k in range(rounds):
        order = [("trick", trick), ("public", public)]
        for name, fn in order if k % 2 == 0 else order[::-1]:
            got[name].append(fn())
    a, b = statistics.median(got["trick"]), statistics.median(got["public"])
    return [f"{a:.3f}", f"{b:.3f}", f"{b / a:.2f}x", f"{(b - a) / b * 100:.0f}%"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default="confirms,cork,acks,import,http")
    args = ap.parse_args()
    only, n = args.only.split(","), args.n
    vhost = f"{os.environ.get('SARRA_BENCH_VHOST_PREFIX', 't')}_seams_{uuid.uuid4().hex[:6]}"
    rmq.add_vhost(vhost)
    url = rmq.amqp_url(vhost)
    rows = [["trick (median s)", "with", "public", "public/with", "gain"]]
    try:
        if "confirms" in only:
            rows.append([f"{n} confirmed posts, batched vs one by one",
                         *pairs(args.rounds, lambda: publish(url, n, PRIVATE),
                                lambda: publish(url, n, PUBLIC))])  # fmt: skip
        if "cork" in only:
            rows.append([f"{n} batched posts, corked vs not",
                         *pairs(args.rounds, lambda: publish(url, n, PRIVATE),
                                lambda: publish(url, n, PRIVATE, cork=False))])  # fmt: skip
        if "acks" in only:
            rows.append([f"{n} acks, queued vs basic_ack",
                         *pairs(args.rounds, lambda: acks(url, n, PRIVATE),
                                lambda: acks(url, n, PUBLIC))])  # fmt: skip
        if "import" in only:
            rows.append(["import sarra.broker.connection, CPU s",
                         *pairs(4 * args.rounds, lambda: import_time(False),
                                lambda: import_time(True))])  # fmt: skip
        if "http" in only:
            with tempfile.TemporaryDirectory() as tmp:
                proc, base = http_server(Path(tmp))
                try:
                    rows.append([f"{n} GETs of 1 KiB, client CPU s",
                                 *pairs(args.rounds, lambda: gets(base, n, PRIVATE),
                                        lambda: gets(base, n, PUBLIC))])  # fmt: skip
                finally:
                    proc.terminate()
                    proc.wait(10)
    finally:
        rmq.delete_vhost(vhost)
    print(table(rows))


if __name__ == "__main__":
    main()
