"""dd_post vs v2 sr_post: one call posting N small files (default 2,000 x 1 KiB).

Both post the same directory to the same exchange on a private vhost; a queue bound
with ``#`` counts the messages that really arrived.  Wall time includes each
program's start-up (a user's view of "one call").  Prints messages/s and the ratio
(target: dd_post >= 4x sr_post).  Each program also posts a single file, to measure its
fixed cost (start-up, connect); the "marginal" rate excludes it:
(N - 1) / (wall(N files) - wall(1 file)).

    python3 -m bench.bench_post [--n 2000] [--size 1024] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.common import Broker, bench, broker_cpu_seconds, make_files, table, wait_for


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    with bench("post") as b:
        b.port = 8  # never fetched: posts only name the URL
        make_files(b.data, args.n, args.size)
        one = make_files(b.data, 1, args.size, sub="one")[0]
        b.v2_post_conf()
        amqp = Broker(b.dd_url)
        q = amqp.queue()
        results: dict = {"dd_post": [], "sr_post": []}
        fixed: dict = {"dd_post": [], "sr_post": []}
        broker_cpu: dict = {"dd_post": [], "sr_post": []}
        for _ in range(args.repeat):
            for who, prog in (("dd", "dd_post"), ("v2", "sr_post")):
                for path, want, into in ((b.data / "files", args.n, results), (one, 1, fixed)):
                    argv = [*b.dd_post_args(), str(path)] if who == "dd" else [
                        "-c", "bench", "-p", str(path)]  # fmt: skip
                    amqp.purge(q)
                    time.sleep(0.2)  # let the broker settle before its CPU is read
                    cpu0 = broker_cpu_seconds()
                    wall, rss, _ = b.run(who, prog, *argv)
                    wait_for(lambda w=want: amqp.count(q) >= w, 10, 0.1)
                    time.sleep(0.3)  # the broker goes on writing after its confirms
                    if into is results:
                        broker_cpu[prog].append(broker_cpu_seconds() - cpu0)
                    into[prog].append((wall, amqp.count(q), rss))
        amqp.close()

    rows = [["program", "messages", "wall s", "1-file wall s", "msg/s", "marginal msg/s",
             "peak RSS MiB"]]  # fmt: skip
    rate, marginal = {}, {}
    for prog, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        wall1 = statistics.median(r[0] for r in fixed[prog])
        got = min(r[1] for r in runs)
        rate[prog] = got / wall
        marginal[prog] = (got - 1) / max(wall - wall1, 1e-6)
        rss = max(r[2] for r in runs) / 1024
        rows.append([prog, got, f"{wall:.3f}", f"{wall1:.3f}", f"{rate[prog]:.0f}",
                     f"{marginal[prog]:.0f}", f"{rss:.1f}"])  # fmt: skip
    print(f"{args.n} files x {args.size} B; median of {args.repeat} runs; one call per run")
    print(table(rows))
    print(f"ratio dd_post/sr_post, msg/s of one call: {rate['dd_post'] / rate['sr_post']:.2f}x"
          " (target >= 4x)")  # fmt: skip
    print(f"ratio dd_post/sr_post, marginal msg/s:   "
          f"{marginal['dd_post'] / marginal['sr_post']:.2f}x")  # fmt: skip
    cpu = {p: statistics.median(v) for p, v in broker_cpu.items()}
    print(f"RabbitMQ CPU per run (median, s): dd_post {cpu['dd_post']:.2f}, sr_post"
          f" {cpu['sr_post']:.2f}: it shares the cores with the poster")  # fmt: skip


if __name__ == "__main__":
    main()
