"""Multi-stream benchmark: one file over an emulated long link, 1 vs N dd_subscribe instances.

    PYTHONPATH=. python bench/multistream.py [--size 128M] [--blocksize 4M] \
        [--delay 0.025] [--window 262144] [--streams 1,4]

Needs the local RabbitMQ (guest/guest) and ``rabbitmqctl`` (a private vhost is created
and deleted).  For each stream count it:

1. serves a random file with a Range-capable HTTP server on 127.0.0.1, reached only
   through ``bench/delayproxy.py`` (one-way delay, per-connection window cap);
2. starts ``dd_subscribe`` with ``instances N`` (``prefetch 1``, so blocks spread over
   the instances; each instance keeps one HTTP connection);
3. posts the file with ``dd_post --blocksize`` and times until ``on_file`` fires;
4. checks the received file's MD5 and prints the throughput.

The last line gives the ratio of the largest stream count to 1 stream.  Use
``--size 1G`` for the manual run described in bench/README.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20
_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files, HTTP/1.1 keep-alive, single ``bytes=a-b`` ranges answered with 206."""

    protocol_version = "HTTP/1.1"

    def send_head(self) -> Any:
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404)
            return None
        size = os.path.getsize(path)
        start, end = 0, size - 1
        m = _RANGE.match(self.headers.get("Range", ""))
        if m:
            start, end = int(m[1]), min(int(m[2] or size - 1), size - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        f = open(path, "rb")  # noqa: SIM115 - closed by the base class after copyfile
        f.seek(start)
        self.remaining = end - start + 1
        return f

    def copyfile(self, source: Any, outputfile: Any) -> None:
        while self.remaining > 0:
            buf = source.read(min(MIB, self.remaining))
            if not buf:
                break
            outputfile.write(buf)
            self.remaining -= len(buf)

    def log_message(self, *args: Any) -> None:
        pass


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(4 * MIB), b""):
            h.update(chunk)
    return h.hexdigest()


class Bench:
    def __init__(self, a: argparse.Namespace, work: Path) -> None:
        self.a, self.work = a, work
        self.vhost = f"{a.vhost_prefix}_{uuid.uuid4().hex[:6]}"
        self.broker = f"amqp://guest:guest@localhost/{self.vhost}"
        self.www = work / "www"
        self.www.mkdir()
        self.src = self.www / "big.bin"
        self.env = dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            HOME=str(work / "home"),
            XDG_CONFIG_HOME=str(work / "home/config"),
            XDG_CACHE_HOME=str(work / "home/cache"),
        )

    def cli(self, *args: str) -> None:
        r = subprocess.run(
            [sys.executable, "-m", "sarra.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(args[:2])} failed: {r.stderr[-2000:]}")

    def make_file(self) -> None:
        with open(self.src, "wb") as f:
            left = self.a.size
            while left:
                n = min(left, 8 * MIB)
                f.write(os.urandom(n))
                left -= n

    def run_once(self, streams: int, url: str) -> float:
        name = f"ms{streams}"
        dl = self.work / f"dl{streams}"
        fired = self.work / f"fired{streams}"
        conf = Path(self.env["XDG_CONFIG_HOME"]) / f"sarra/subscribe/{name}.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(
            f"broker {self.broker}\nexchange xbench{streams}\ndirectory {dl}\n"
            f"instances {streams}\nprefetch 1\nbatch 1\nreport_back off\n"
            f"on_file /bin/sh -c 'echo done > {fired}'\naccept .*\n"
        )
        self.cli("dd_subscribe", "declare", name)
        self.cli("dd_subscribe", "start", name)
        time.sleep(3)  # instances connect and consume
        try:
            t0 = time.monotonic()
            self.cli(
                "dd_post", "-pb", self.broker, "-pe", f"xbench{streams}", "-u", url,
                "-pbd", str(self.www), "--blocksize", str(self.a.blocksize), str(self.src),
            )  # fmt: skip
            while not fired.exists():
                if time.monotonic() - t0 > self.a.timeout:
                    raise SystemExit(f"{streams} stream(s): timed out")
                time.sleep(0.05)
            elapsed = time.monotonic() - t0
        finally:
            self.cli("dd_subscribe", "stop", name)
        if md5(dl / "big.bin") != md5(self.src):
            raise SystemExit(f"{streams} stream(s): received file differs")
        return elapsed


def parse_size(text: str) -> int:
    from sarra.config.options import size

    return size(text)


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description="1 vs N dd_subscribe instances over a long link")
    p.add_argument("--size", type=parse_size, default=128 * MIB, help="file size (128M)")
    p.add_argument("--blocksize", type=parse_size, default=4 * MIB, help="block size (4M)")
    p.add_argument("--delay", type=float, default=0.025, help="one-way delay (s)")
    p.add_argument("--window", type=int, default=262144, help="per-connection window (bytes)")
    p.add_argument("--streams", default="1,4", help="instance counts to compare (1,4)")
    p.add_argument("--timeout", type=float, default=1800, help="give up after (s)")
    p.add_argument("--vhost-prefix", default="sarra_bench", help="vhost name prefix")
    a = p.parse_args(argv)
    streams = [int(s) for s in a.streams.split(",")]
    work = Path(tempfile.mkdtemp(prefix="sarra-multistream-"))
    bench = Bench(a, work)
    bench.make_file()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(bench.www)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = free_port()
    proxy = subprocess.Popen(
        [sys.executable, str(ROOT / "bench/delayproxy.py"), str(port),
         str(server.server_address[1]), "--delay", str(a.delay), "--window", str(a.window)]
    )  # fmt: skip
    rabbitmqctl("add_vhost", bench.vhost)
    rabbitmqctl("set_permissions", "-p", bench.vhost, "guest", ".*", ".*", ".*")
    results: Dict[int, float] = {}
    try:
        time.sleep(0.5)
        print(
            f"file {a.size / MIB:.0f} MiB, blocks {a.blocksize / MIB:g} MiB, one-way delay "
            f"{a.delay * 1000:.0f} ms, window {a.window // 1024} KiB per connection"
        )
        for n in streams:
            dt = bench.run_once(n, f"http://127.0.0.1:{port}/")
            results[n] = a.size / MIB / dt
            print(f"{n} stream(s): {dt:.2f} s, {results[n]:.1f} MiB/s", flush=True)
    finally:
        proxy.terminate()
        proxy.wait(10)
        server.shutdown()
        rabbitmqctl("delete_vhost", bench.vhost)
        shutil.rmtree(work, ignore_errors=True)
    if 1 in results and len(results) > 1:
        top = max(results)
        print(f"ratio {top} streams / 1 stream: {results[top] / results[1]:.2f}x")


if __name__ == "__main__":
    main()
