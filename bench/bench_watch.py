"""dd_watch vs v2 sr_watch: close()->notice latency, and start-up on a big existing tree.

* latency: 200 files written 20 ms apart into the watched tree; a consumer bound to the
  post exchange timestamps each notice; latency = arrival - close() (median, p90, max),
  with missed and doubled notices counted (issue 7 target: median <= 10 ms).
* start-up: a tree of ``--n`` existing files (100,000 in the issue; default 10,000):
  with ``post_on_start`` on, time until every file is announced; with it off, time until
  a file written after start is announced (the watch is ready); peak RSS of each.

dd_watch is measured only where this tree has it (``sarra/roles/watch.py``); otherwise
its rows say "skipped" and v2 is measured alone.

    python3 -m bench.bench_watch [--files 200] [--gap 0.02] [--n 10000]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from pathlib import Path
from typing import Dict, List

from bench.common import EXCHANGE, REPO, bench, make_files, peak_rss_kib, table, wait_for


class Listener(threading.Thread):
    """Consumes every post on the exchange; records arrival times by relpath."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        import pika

        self.conn = pika.BlockingConnection(pika.URLParameters(url))
        self.ch = self.conn.channel()
        self.ch.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
        self.q = self.ch.queue_declare("", exclusive=True).method.queue
        self.ch.queue_bind(self.q, EXCHANGE, routing_key="v02.post.#")
        self.seen: Dict[str, List[float]] = {}
        self.lock = threading.Lock()
        self.stopping = False

    def run(self) -> None:
        def on(ch, method, props, body):
            now = time.perf_counter()
            rel = body.decode().split()[2].lstrip("/").replace("%20", " ").replace("%23", "#")
            with self.lock:
                self.seen.setdefault(rel, []).append(now)

        self.ch.basic_consume(self.q, on, auto_ack=True)
        while not self.stopping:
            self.conn.process_data_events(time_limit=0.05)
        self.conn.close()

    def count(self, prefix: str) -> int:
        with self.lock:
            return sum(1 for k in self.seen if k.startswith(prefix))


def available(who: str) -> bool:
    return who == "v2" or (REPO / "sarra" / "roles" / "watch.py").exists()


def watch_conf(b, who: str, name: str, path: Path, extra: str) -> None:
    url = b.dd_url if who == "dd" else b.v2_url
    b.conf(who, "watch", name,
           f"post_broker {url}\npost_exchange {EXCHANGE}\npost_base_url http://127.0.0.1:8/\n"
           f"post_base_dir {b.data}\npath {path}\n{extra}")  # fmt: skip


def latency(b, who: str, files: int, gap: float) -> dict:
    prog = "dd_watch" if who == "dd" else "sr_watch"
    tree = b.data / f"lat_{who}"
    tree.mkdir()
    watch_conf(b, who, "lat", tree, "post_on_start off\n")
    lis = Listener(b.dd_url)
    lis.start()
    proc = b.start(who, prog, "foreground", "lat")
    probe = tree / "probe.txt"
    probe.write_bytes(b"p")
    wait_for(lambda: lis.count(f"lat_{who}/probe") > 0, 60, 0.05)  # the watch is ready
    closed: Dict[str, float] = {}
    for i in range(files):
        p = tree / f"f{i:04d}.txt"
        with open(p, "wb") as f:
            f.write(b"x" * 100)
        closed[f"lat_{who}/{p.name}"] = time.perf_counter()
        time.sleep(gap)
    wait_for(lambda: lis.count(f"lat_{who}/f") >= files, 30, 0.05)
    time.sleep(1)
    b.stop(proc)
    lis.stopping = True
    lis.join(5)
    lat = [(lis.seen[k][0] - t) * 1000 for k, t in closed.items() if k in lis.seen]
    doubled = sum(1 for k in closed if len(lis.seen.get(k, [])) > 1)
    lat.sort()
    return {"median": statistics.median(lat) if lat else float("nan"),
            "p90": lat[int(len(lat) * 0.9) - 1] if lat else float("nan"),
            "max": lat[-1] if lat else float("nan"),
            "missed": files - len(lat), "doubled": doubled}  # fmt: skip


def startup(b, who: str, n: int, on: bool, tree: Path, timeout: float) -> dict:
    prog = "dd_watch" if who == "dd" else "sr_watch"
    name = f"start{int(on)}"
    watch_conf(b, who, name, tree, f"post_on_start {'on' if on else 'off'}\n")
    lis = Listener(b.dd_url)
    lis.start()
    rel = tree.relative_to(b.data).as_posix()
    t0 = time.perf_counter()
    proc = b.start(who, prog, "foreground", name)
    rss = 0
    if on:
        done = wait_for(lambda: lis.count(f"{rel}/files/") >= n, timeout, 0.05)
    else:
        marker = tree / f"marker_{who}.txt"
        done = False
        while time.perf_counter() - t0 < timeout and not done:
            marker.write_bytes(b"m")  # rewritten until the watch announces it
            done = wait_for(lambda: lis.count(f"{rel}/marker_{who}") > 0, 0.5, 0.02)
    elapsed = time.perf_counter() - t0
    rss = peak_rss_kib(proc.pid)
    b.stop(proc)
    lis.stopping = True
    lis.join(5)
    return {"seconds": elapsed if done else float("nan"), "rss": rss,
            "posted": lis.count(f"{rel}/files/")}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--gap", type=float, default=0.02)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args()
    whos = [w for w in ("dd", "v2") if available(w)]
    if "dd" not in whos:
        print("dd_watch is not available on this tree (no sarra/roles/watch.py): "
              "measuring v2 sr_watch alone")  # fmt: skip

    with bench("watch") as b:
        lat = {w: latency(b, w, args.files, args.gap) for w in whos}
        tree = b.data / "tree"
        make_files(tree, args.n, 64)
        st = {(w, on): startup(b, w, args.n, on, tree, args.timeout)
              for w in whos for on in (True, False)}  # fmt: skip

    print(f"latency close()->notice, {args.files} files {args.gap * 1000:.0f} ms apart")
    rows = [["program", "median ms", "p90 ms", "max ms", "missed", "doubled"]]
    for w in ("dd", "v2"):
        prog = "dd_watch" if w == "dd" else "sr_watch"
        r = lat.get(w)
        rows.append([prog, *(["skipped"] + [""] * 4 if r is None else [
            f"{r['median']:.1f}", f"{r['p90']:.1f}", f"{r['max']:.1f}", r["missed"],
            r["doubled"]])])  # fmt: skip
    print(table(rows))
    print(f"\nstart-up on {args.n} existing files")
    rows = [["program", "post_on_start", "seconds", "posted", "peak RSS MiB"]]
    for (w, on), r in st.items():
        rows.append(["dd_watch" if w == "dd" else "sr_watch", "on" if on else "off",
                     f"{r['seconds']:.2f}", r["posted"], f"{r['rss'] / 1024:.1f}"])  # fmt: skip
    print(table(rows))
    if "dd" in lat:
        print(f"ratio v2/dd median latency: {lat['v2']['median'] / lat['dd']['median']:.2f}x"
              " (target: dd median <= 10 ms)")  # fmt: skip


if __name__ == "__main__":
    main()
