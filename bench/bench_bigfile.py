"""One big file (default 256 MiB, ``--size 1G`` for the issue's figure).

* post: dd_post wall time vs plain hashlib MD5 over the (cached) file in this process
  (target: dd_post within 95%, i.e. hashlib/dd_post >= 0.95); v2 sr_post for reference.
* download: dd_subscribe fetch+verify+rename, timed from the publish of the post to the
  file standing under its final name (after an untimed small warm-up file), vs
  ``curl -o`` of the same URL to the same disk
  (target: curl time / dd time >= 0.95); v2 sr_subscribe for reference.
* peak RSS of each sarra process (target <= 60 MiB whatever the size).

    python3 -m bench.bench_bigfile [--size 1G] [--repeat 2] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import time
from pathlib import Path

from bench.common import EXCHANGE, Broker, bench, peak_rss_kib, table, wait_for
from sarra.config.options import size as parse_size

MIB = 1 << 20
WARM = "warm.bin"


def make_big(path: Path, nbytes: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(MIB)
    with open(path, "wb") as f:
        for i in range(nbytes // MIB):
            f.write(block[i % 251 :] + block[: i % 251])
        f.write(os.urandom(nbytes % MIB))


def md5_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(MIB):
            h.update(chunk)
    return h.hexdigest()


def download(b, amqp, who: str, posts: tuple, dest: Path, timeout: float, queues: dict) -> tuple:
    """Start a subscriber, publish ``post`` into its queue, time until ``dest`` is whole.

    Both subscribers' queues are bound to the exchange, so each holds copies of the
    other's posts of earlier rounds: purged before the start.
    A small warm-up file goes first, untimed, on both sides: what is timed is the
    download itself, not the first use of the HTTP library (sarra imports a transfer
    backend on first use of its scheme) or the first connection.
    """
    import pika

    prog = "dd_subscribe" if who == "dd" else "sr_subscribe"
    b.subscriber_conf(who, "big", dest.parent.parent)
    if who in queues:  # copies of the other side's posts of an earlier round
        amqp.purge(queues[who])
    proc = b.start(who, prog, "foreground", "big")
    queues[who] = b.wait_bound(f"q_guest.{prog}")
    (wkey, wheaders, wbody, _), (key, headers, body, want) = posts
    amqp.ch.basic_publish(EXCHANGE, wkey, wbody, pika.BasicProperties(headers=wheaders))
    wait_for(lambda: (dest.parent / WARM).is_file(), timeout, 0.005)
    t0 = time.perf_counter()
    amqp.ch.basic_publish(EXCHANGE, key, body, pika.BasicProperties(headers=headers))
    wait_for(lambda: dest.is_file() and dest.stat().st_size == want, timeout, 0.005)
    elapsed = time.perf_counter() - t0
    rss = peak_rss_kib(proc.pid)
    b.stop(proc)
    return elapsed, rss


def curl(b, out: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(["curl", "-s", "-o", str(out), f"{b.base_url}big/big.bin"], check=True)
    elapsed = time.perf_counter() - t0
    out.unlink()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="256M", help="file size (e.g. 64M, 1G)")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--repeat", type=int, default=2, help="download rounds (best kept)")
    args = ap.parse_args()
    nbytes = parse_size(args.size)

    with bench("bigfile", keep=args.keep) as b:
        b.serve_http()
        big = b.data / "big" / "big.bin"
        make_big(big, nbytes)
        md5_file(big)  # warm the page cache
        t0 = time.perf_counter()
        want_md5 = md5_file(big)
        t_hash = time.perf_counter() - t0

        warm = big.parent / WARM
        warm.write_bytes(b"warm-up\n")
        amqp = Broker(b.dd_url)
        q = amqp.queue()
        b.run("dd", "dd_post", *b.dd_post_args(), str(warm))
        method, props, body = amqp.ch.basic_get(q, auto_ack=True)
        warm_post = (method.routing_key, props.headers, body, warm.stat().st_size)
        t_post, rss_post, _ = b.run("dd", "dd_post", *b.dd_post_args(), str(big))
        method, props, body = amqp.ch.basic_get(q, auto_ack=True)
        post = (warm_post, (method.routing_key, props.headers, body, nbytes))
        b.v2_post_conf()
        t_v2post, rss_v2post, _ = b.run("v2", "sr_post", "-c", "bench", "-p", str(big))

        dests = {"dd": b.root / "dl_dd" / "big" / "big.bin",
                 "v2": b.root / "dl_v2" / "big" / "big.bin"}  # fmt: skip
        times: dict = {"curl": [], "dd": [], "v2": []}
        rss: dict = {"dd": 0, "v2": 0}
        ok = {"dd": True, "v2": True}
        queues: dict = {}
        for rnd in range(args.repeat):
            # The first big write after a big unlink is much slower on this VM (up to 2x):
            # alternate the order of dd and v2, keep each one's best round.
            times["curl"].append(curl(b, b.root / "curl.bin"))
            for who in ("dd", "v2") if rnd % 2 == 0 else ("v2", "dd"):
                t, r = download(b, amqp, who, post, dests[who], args.timeout, queues)
                times[who].append(t)
                rss[who] = max(rss[who], r)
                ok[who] = ok[who] and md5_file(dests[who]) == want_md5
                dests[who].unlink()
        amqp.close()
        t_curl, t_dd, t_v2 = min(times["curl"]), min(times["dd"]), min(times["v2"])
        rss_dd, rss_v2, ok_dd, ok_v2 = rss["dd"], rss["v2"], ok["dd"], ok["v2"]
        amqp.close()

    mb = nbytes / MIB
    rows = [["step", "seconds", "MiB/s", "peak RSS MiB", "note"]]
    rows.append(["hashlib md5 (in process)", f"{t_hash:.2f}", f"{mb / t_hash:.0f}", "", ""])
    rows.append(["dd_post", f"{t_post:.2f}", f"{mb / t_post:.0f}", f"{rss_post / 1024:.1f}", ""])
    rows.append(["sr_post (v2)", f"{t_v2post:.2f}", f"{mb / t_v2post:.0f}",
                 f"{rss_v2post / 1024:.1f}", "reference"])  # fmt: skip
    rows.append(["curl -o", f"{t_curl:.2f}", f"{mb / t_curl:.0f}", "", ""])
    rows.append(["dd_subscribe get+verify", f"{t_dd:.2f}", f"{mb / t_dd:.0f}",
                 f"{rss_dd / 1024:.1f}", "md5 ok" if ok_dd else "MD5 MISMATCH"])  # fmt: skip
    rows.append(["sr_subscribe (v2)", f"{t_v2:.2f}", f"{mb / t_v2:.0f}", f"{rss_v2 / 1024:.1f}",
                 ("md5 ok" if ok_v2 else "MD5 MISMATCH") + ", reference"])  # fmt: skip
    print(f"one file of {nbytes} bytes ({mb:.0f} MiB), page cache warm; downloads: best of "
          f"{args.repeat} rounds, dd and v2 in alternating order")  # fmt: skip
    print(table(rows))
    print(f"post:     hashlib/dd_post = {t_hash / t_post:.2f} (target >= 0.95)")
    print(f"download: curl/dd_subscribe = {t_curl / t_dd:.2f} (target >= 0.95); a verifying"
          f" download cannot beat MD5 alone: ceiling curl/md5 = {t_curl / t_hash:.2f},"
          f" dd at {t_hash / t_dd:.2f} of that")  # fmt: skip
    print(f"peak RSS: dd_post {rss_post / 1024:.1f} MiB, dd_subscribe {rss_dd / 1024:.1f} MiB"
          " (target <= 60)")  # fmt: skip


if __name__ == "__main__":
    main()
