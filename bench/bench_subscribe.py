"""dd_subscribe vs v2 sr_subscribe: N small files over HTTP from loopback (default 2,000 x 1 KiB).

Both consumers' queues are declared first, then one dd_post fills both with the same
N posts; each consumer is then started alone (one instance) and timed until all N files
stand under their final names.  "total" counts from process start; "steady" from the
first file to the last.  Prints files/s and ratios (target: dd_subscribe >= 3x).

    python3 -m bench.bench_subscribe [--n 2000] [--size 1024] [--conf 'prefetch 100']

SARRA_BENCH_PYSPY=/path/to/py-spy samples each consumer (/tmp/pyspy.<program>.txt,
collapsed stacks); py-spy is a developer's tool, not a dependency.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench.common import (
    Broker,
    bench,
    count_files,
    cpu_seconds,
    make_files,
    peak_rss_kib,
    table,
)


def timed_consume(b, who: str, program: str, directory, n: int, timeout: float) -> dict:
    t0 = time.perf_counter()
    proc = b.start(who, program, "foreground", "bench")
    spy = os.environ.get("SARRA_BENCH_PYSPY")  # a py-spy binary: sample the consumer
    if spy:
        out = f"/tmp/pyspy.{program}.txt"
        subprocess.Popen([spy, "record", "-r", "500", "-f", "raw", "-o", out, "--nonblocking",
                          "--pid", str(proc.pid)], stdout=subprocess.DEVNULL)  # fmt: skip
    first = last = None
    rss = 0
    while time.perf_counter() - t0 < timeout:
        got = count_files(directory)
        now = time.perf_counter()
        if got and first is None:
            first = now
        rss = max(rss, peak_rss_kib(proc.pid))
        if got >= n:
            last = now
            break
        time.sleep(0.02)
    cpu = cpu_seconds(proc.pid)
    b.stop(proc)
    if last is None or first is None:
        print(f"WARNING: {program} placed {count_files(directory)}/{n} files", file=sys.stderr)
        last = time.perf_counter()
        first = first or last
    return {"total": last - t0, "steady": last - first, "files": count_files(directory),
            "rss": rss, "cpu": cpu}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--conf", action="append", default=[],
                    help="extra config line for both subscribers, e.g. 'prefetch 100'")  # fmt: skip
    args = ap.parse_args()

    with bench("subscribe") as b:
        b.serve_http()
        make_files(b.data, args.n, args.size)
        dirs = {"dd": b.root / "dl_dd", "v2": b.root / "dl_v2"}
        progs = {"dd": "dd_subscribe", "v2": "sr_subscribe"}
        amqp = Broker(b.dd_url)
        queues = {}
        for who, prog in progs.items():
            b.subscriber_conf(who, "bench", dirs[who], "".join(f"{c}\n" for c in args.conf))
            proc = b.start(who, prog, "foreground", "bench")  # declares and binds its queue
            queues[who] = b.wait_bound(f"q_guest.{prog}")
            b.stop(proc)
        b.run("dd", "dd_post", *b.dd_post_args(), str(b.data / "files"))
        for q in queues.values():
            if amqp.count(q) != args.n:
                sys.exit(f"queue {q} holds {amqp.count(q)} posts, expected {args.n}")
        amqp.close()
        res = {w: timed_consume(b, w, progs[w], dirs[w], args.n, args.timeout) for w in progs}

    rows = [["program", "files", "total s", "files/s total", "steady s", "files/s steady",
             "CPU s", "peak RSS MiB"]]  # fmt: skip
    for who, r in res.items():
        rows.append([progs[who], r["files"], f"{r['total']:.2f}",
                     f"{r['files'] / r['total']:.0f}", f"{r['steady']:.2f}",
                     f"{(r['files'] - 1) / max(r['steady'], 1e-6):.0f}", f"{r['cpu']:.2f}",
                     f"{r['rss'] / 1024:.1f}"])  # fmt: skip
    print(f"{args.n} files x {args.size} B over HTTP (loopback range server), one instance each"
          + (f"; config: {', '.join(args.conf)}" if args.conf else ""))  # fmt: skip
    print(table(rows))
    dd, v2 = res["dd"], res["v2"]
    print(f"ratio dd/v2 files/s, total:  {v2['total'] / dd['total']:.2f}x (target >= 3x)")
    print(f"ratio dd/v2 files/s, steady: {max(v2['steady'], 1e-6) / max(dd['steady'], 1e-6):.2f}x")
    print(f"ratio v2/dd CPU seconds:     {v2['cpu'] / max(dd['cpu'], 1e-6):.2f}x")


if __name__ == "__main__":
    main()
