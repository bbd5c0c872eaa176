"""Shared pieces of the side-by-side benchmarks (sarra vs MetPX-Sarracenia v2).

Owns: finding the v2 venv (``tools/v2env``), a throw-away vhost ``/t_interop_bench_*``
(prefix from ``$SARRA_BENCH_VHOST_PREFIX``; v2 and sarra address it as spec 10.6 says),
byte-compiling sarra as an install would, separate HOME/XDG directories for v2 and
sarra, a range HTTP server in its own process, test files, a pika helper for queues
and raw publishing, process peak memory (``VmHWM``) and a table printer.

Run a benchmark from the repository root: ``python3 -m bench.bench_post`` (see README).
Nothing here asserts timings: the scripts print figures and ratios.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures import rabbit as rmq  # noqa: E402

EXCHANGE = "xs_guest"


def v2bin() -> Optional[Path]:
    """The v2 venv's bin directory, or None when ``tools/v2env`` has not been run."""
    env = Path(os.environ.get("SARRA_V2ENV") or REPO / ".v2env")
    if (env / ".v2env-complete").exists() and (env / "bin" / "sr_subscribe").exists():
        return env / "bin"
    return None


def require_v2() -> Path:
    found = v2bin()
    if found is None:
        sys.exit("MetPX-Sarracenia v2 venv missing: run tools/v2env first")
    return found


def wait_for(check: Callable[[], object], timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return bool(check())


def peak_rss_kib(pid: int) -> int:
    """VmHWM (peak resident set) of a live process, KiB; 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process so far (0 if it is gone).

    On a shared, loaded machine wall times swing by +-30%; CPU time much less.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_cpu_seconds() -> float:
    """CPU seconds used so far by the local RabbitMQ node (beam.smp); 0 if not found.

    The broker shares this machine's cores with both sides: its CPU per run shows how
    much of a wall time is the broker's own work (routing, writing persistent messages).
    """
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"beam.smp" in cmd and b"rabbit" in cmd:
            return cpu_seconds(int(pid))
    return 0.0


def make_files(root: Path, n: int, size: int, sub: str = "files") -> List[Path]:
    """``n`` files of ``size`` distinct bytes each under ``root/sub``."""
    d = root / sub
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = d / f"f{i:06d}.dat"
        p.write_bytes((f"{i:08d}" * (size // 8 + 1)).encode()[:size])
        out.append(p)
    return out


class Broker:
    """A pika connection to the bench vhost for declaring, counting and raw publishing."""

    def __init__(self, url: str) -> None:
        import pika

        self.conn = pika.BlockingConnection(pika.URLParameters(url))
        self.ch = self.conn.channel()
        self.ch.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)

    def queue(self, name: str = "", key: str = "#") -> str:
        q = self.ch.queue_declare(name, exclusive=not name, durable=bool(name)).method.queue
        self.ch.queue_bind(q, EXCHANGE, routing_key=key)
        return q

    def count(self, queue: str) -> int:
        return self.ch.queue_declare(queue, passive=True).method.message_count

    def purge(self, queue: str) -> None:
        self.ch.queue_purge(queue)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


class Bench:
    """One benchmark run: vhost, directories, HTTP server, commands for both sides."""

    def __init__(self, root: Path, vhost: str, v2: Optional[Path]) -> None:
        self.root, self.vhost, self.v2 = root, vhost, v2
        self.data = root / "www"
        self.data.mkdir()
        self.port = 0
        self.procs: List[subprocess.Popen] = []
        self.dd_bin = BENCHENV / "bin"

    @property
    def v2_url(self) -> str:
        return f"amqp://guest:guest@localhost/{self.vhost.lstrip('/')}"

    @property
    def dd_url(self) -> str:
        return rmq.amqp_url(self.vhost)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def env(self, who: str) -> Dict[str, str]:
        home = self.root / f"home_{who}"
        env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
        env.update(XDG_CACHE_HOME=str(home / ".cache"), XDG_DATA_HOME=str(home / ".local"))
        env.pop("PYTHONPATH", None)  # each side runs from its own installed venv
        return env

    def conf(self, who: str, kind: str, name: str, text: str) -> None:
        path = self.root / f"home_{who}" / ".config" / "sarra" / kind / f"{name}.conf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def command(self, who: str, program: str, *args: str) -> List[str]:
        if who == "dd":
            prof = os.environ.get("SARRA_BENCH_PROFILE")  # cProfile output prefix
            if prof and program != "dd_post":
                out = f"{prof}.{program}.{len(self.procs)}.prof"
                return [str(self.dd_bin / "python"), "-m", "cProfile", "-o", out,
                        "-m", "sarra.cli", program, *args]  # fmt: skip
            return [str(self.dd_bin / program), *args]
        assert self.v2 is not None
        return [str(self.v2 / program), *args]

    def run(self, who: str, program: str, *args: str) -> Tuple[float, int, str]:
        """Run to completion: (wall seconds, peak RSS KiB of that process, output)."""
        log = self.root / f"{who}_{program}_{len(self.procs)}_{time.monotonic_ns()}.log"
        with open(log, "wb") as out:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                self.command(who, program, *args), env=self.env(who), cwd=self.root,
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
            _, status, usage = os.wait4(proc.pid, 0)
            elapsed = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        text = log.read_text(errors="replace")
        if proc.returncode != 0:
            print(f"WARNING: {program} exited {proc.returncode}; log {log}", file=sys.stderr)
        return elapsed, int(usage.ru_maxrss), text

    def start(self, who: str, program: str, *args: str) -> subprocess.Popen:
        log = self.root / f"{who}_{program}_{len(self.procs)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                self.command(who, program, *args), env=self.env(who), cwd=self.root,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def serve_http(self) -> None:
        """Start the loopback range HTTP server (tests' handler) in its own process.

        TCP_NODELAY on, as real web servers do: without it, the handler's separate writes
        of headers and body meet the client's delayed ACK on keep-alive connections and
        every small file costs ~40 ms (only keep-alive clients such as requests pay it).
        """
        from tests.fixtures.servers import free_port

        self.port = free_port()
        code = (
            "import sys; from functools import partial; from pathlib import Path;"
            "from tests.fixtures.servers import _RangeHandler, _HttpServer, HttpServer;"
            "H = type('H', (_RangeHandler,), {'disable_nagle_algorithm': True});"
            "s = _HttpServer(('127.0.0.1', int(sys.argv[2])), partial(H, directory=sys.argv[1]));"
            "s.box = HttpServer(root=Path(sys.argv[1])); s.serve_forever()"
        )
        env = dict(os.environ, PYTHONPATH=str(REPO))
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(self.data), str(self.port)], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.procs.append(proc)
        import socket

        def up() -> bool:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return True
            return False

        if not wait_for(up, 10):
            sys.exit("range HTTP server did not start")

    def bound(self, prefix: str) -> Optional[str]:
        out = rmq.rabbitmqctl(
            "list_bindings", "-p", self.vhost, "source_name", "destination_name",
            "--no-table-headers",
        )  # fmt: skip
        for line in out.splitlines():
            src, _, dest = line.partition("\t")
            if src == EXCHANGE and dest.startswith(prefix):
                return dest
        return None

    def wait_bound(self, prefix: str, timeout: float = 30) -> str:
        found: List[str] = []
        ok = wait_for(lambda: found.append(self.bound(prefix) or "") or found[-1], timeout, 0.3)
        if not ok:
            sys.exit(f"no queue {prefix}* bound to {EXCHANGE} after {timeout} s")
        return found[-1]

    def subscriber_conf(self, who: str, name: str, directory: Path, extra: str = "") -> None:
        url = self.dd_url if who == "dd" else self.v2_url
        self.conf(
            who, "subscribe", name,
            f"broker {url}\nexchange {EXCHANGE}\ntopic_prefix v02.post\nsubtopic #\n"
            f"directory {directory}\nmirror True\naccept .*\n{extra}",
        )  # fmt: skip

    def dd_post_args(self) -> List[str]:
        return ["-pb", self.dd_url, "-pe", EXCHANGE, "-u", self.base_url, "-pbd", str(self.data)]

    def v2_post_conf(self, name: str = "bench", extra: str = "") -> None:
        self.conf(
            "v2", "post", name,
            f"post_broker {self.v2_url}\npost_exchange {EXCHANGE}\n"
            f"post_base_url {self.base_url}\npost_base_dir {self.data}\n{extra}",
        )  # fmt: skip


BENCHENV = Path(os.environ.get("SARRA_BENCHENV") or REPO / ".benchenv")


def install_sarra() -> Path:
    """Install this checkout into its own venv, as a user would (``pip install .``).

    v2 runs from a pip-installed venv; sarra runs the same way, so neither side pays for
    a development setup (an editable install's import hook costs ~10 ms per start, and
    with PYTHONDONTWRITEBYTECODE, as on the test machines, a source tree compiles every
    module at every start).  The venv is made once; later runs reinstall sarra only.
    Returns the venv's bin directory.
    """
    pip = BENCHENV / "bin" / "pip"
    if not pip.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCHENV)], check=True)
        subprocess.run([str(pip), "install", "-q", "--disable-pip-version-check", str(REPO)],
                       check=True)  # fmt: skip
    else:
        subprocess.run(
            [str(pip), "install", "-q", "--disable-pip-version-check", "--no-deps",
             "--force-reinstall", str(REPO)],
            check=True, env=dict(os.environ, PYTHONDONTWRITEBYTECODE=""),
        )  # fmt: skip
    shutil.rmtree(REPO / "build", ignore_errors=True)  # pip builds in the tree
    return BENCHENV / "bin"


@contextlib.contextmanager
def bench(name: str, need_v2: bool = True, keep: bool = False) -> Iterator[Bench]:
    """A Bench with a fresh vhost and temp dir; everything removed afterwards."""
    rmq.check_rabbit()
    v2 = require_v2() if need_v2 else v2bin()
    prefix = os.environ.get("SARRA_BENCH_VHOST_PREFIX", "t_interop_bench")
    vhost = f"/{prefix.strip('/')}_{uuid.uuid4().hex[:8]}"
    b_bin = install_sarra()
    rmq.add_vhost(vhost)
    root = Path(tempfile.mkdtemp(prefix=f"sarra-{name}-"))
    b = Bench(root, vhost, v2)
    b.dd_bin = b_bin
    try:
        yield b
    finally:
        for proc in reversed(b.procs):
            b.stop(proc)
        rmq.delete_vhost(vhost)
        if keep:
            print(f"(kept {root})")
        else:
            shutil.rmtree(root, ignore_errors=True)


def table(rows: Sequence[Sequence[object]]) -> str:
    """Plain aligned text table; first row is the header."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def count_files(directory: Path) -> int:
    """Regular files under ``directory`` whose names are final (no inflight names)."""
    n = 0
    for _dirpath, _dirs, files in os.walk(directory):
        n += sum(1 for f in files if not f.startswith(".") and not f.endswith(".tmp"))
    return n
