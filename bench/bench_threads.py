"""dd_subscribe ``threads 1`` vs ``threads 4`` (and v2) over a link with latency.

N small files (default 300 x 1 KiB) are posted once per consumer; the HTTP server sits
behind bench/delayproxy.py (default 25 ms each way, so a GET costs at least one 50 ms
round trip).  Each consumer is started alone and timed until all N files are in place.

    python3 -m bench.bench_threads [--n 300] [--delay 0.025] [--threads 4]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from bench.bench_subscribe import timed_consume
from bench.common import REPO, Broker, bench, make_files, table, wait_for


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--delay", type=float, default=0.025)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()

    with bench("threads") as b:
        b.serve_http()
        from tests.fixtures.servers import free_port

        proxy_port = free_port()
        proxy = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "delayproxy.py"), str(proxy_port),
             str(b.port), "--delay", str(args.delay)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        b.procs.append(proxy)
        import socket

        def up() -> bool:
            try:
                socket.create_connection(("127.0.0.1", proxy_port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_for(up, 10)
        b.port = proxy_port  # posts name the proxy: every GET crosses the slow link
        make_files(b.data, args.n, args.size)
        runs = [("dd", "dd_subscribe", "threads 1"),
                ("dd", "dd_subscribe", f"threads {args.threads}"),
                ("v2", "sr_subscribe", "")]  # fmt: skip
        amqp = Broker(b.dd_url)
        res = []
        for k, (who, prog, extra) in enumerate(runs):
            directory = b.root / f"dl_{k}"
            b.subscriber_conf(who, "bench", directory, extra + "\n")
            proc = b.start(who, prog, "foreground", "bench")
            q = b.wait_bound(f"q_guest.{prog}")
            b.stop(proc)
            amqp.purge(q)
            b.run("dd", "dd_post", *b.dd_post_args(), str(b.data / "files"))
            r = timed_consume(b, who, prog, directory, args.n, 600)
            res.append((f"{prog} {extra}".strip(), r))
            b.run(who, prog, "cleanup", "bench")
        amqp.close()

    rows = [["consumer", "files", "total s", "files/s", "CPU s"]]
    for name, r in res:
        rows.append([name, r["files"], f"{r['total']:.2f}", f"{r['files'] / r['total']:.1f}",
                     f"{r['cpu']:.2f}"])  # fmt: skip
    print(f"{args.n} files x {args.size} B over HTTP behind a {args.delay * 1000:.0f} ms"
          " (one way) delay proxy")  # fmt: skip
    print(table(rows))
    one, many, v2 = (r["total"] for _, r in res)
    print(f"threads {args.threads} / threads 1: {one / many:.2f}x faster; vs v2: {v2 / many:.2f}x")


if __name__ == "__main__":
    main()
