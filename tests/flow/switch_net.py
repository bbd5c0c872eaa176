"""A small network of switches on the local RabbitMQ, for the dd_sara flow tests.

Each switch is its own vhost (``t_sara_<tag>_<name>``) with its own data tree served by
its own HTTP server on loopback.  Broker users (``<role>-<tag>``: user names cannot hold
``_``, see ``sarra.config.options.user_name``) are made through the
management API (fast) and deleted afterwards; commands run as real processes
(``python -m sarra.cli ...``) with HOME/XDG pointing into the test's tmp dir.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from functools import partial
from pathlib import Path
from typing import Callable, Dict, List, Optional
from urllib.parse import quote

import pika
import requests

from sarra.core import message
from tests.fixtures.servers import HttpServer, _HttpServer, _RangeHandler
from tests.fixtures.waiting import wait_for

API = "http://127.0.0.1:15672/api"
AUTH = ("guest", "guest")
REPO = Path(__file__).resolve().parents[2]
PREFIX = os.environ.get("SARRA_TEST_VHOST_PREFIX", "t_sara")


def api(method: str, path: str, **kw) -> requests.Response:
    r = requests.request(method, API + path, auth=AUTH, timeout=30, **kw)
    if method != "DELETE":
        r.raise_for_status()
    return r


class Serve:
    """Static HTTP (with ranges) of ``root`` on loopback."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.box = HttpServer(root=root)
        self.server = _HttpServer(("127.0.0.1", 0), partial(_RangeHandler, directory=str(root)))
        self.server.box = self.box
        self.box.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return self.box.url

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Tap:
    """A queue bound to an exchange, read with basic_get: what went where."""

    def __init__(self, url: str, exchange: str, key: str = "#") -> None:
        params = pika.URLParameters(url + "?heartbeat=0")
        self.conn = pika.BlockingConnection(params)
        self.ch = self.conn.channel()
        self.ch.exchange_declare(exchange, "topic", durable=True)
        self.q = f"q_tap.{exchange}.{uuid.uuid4().hex[:6]}"
        self.ch.queue_declare(self.q, auto_delete=False, durable=False)
        self.ch.queue_bind(self.q, exchange, key)
        self.got: List[message.Notice] = []

    def drain(self) -> List[message.Notice]:
        while True:
            m, props, body = self.ch.basic_get(self.q, auto_ack=True)
            if m is None:
                return self.got
            self.got.append(message.decode(m.routing_key, props.headers or {}, body))

    def wait(self, pred: Callable[[List[message.Notice]], bool], timeout: float, what: str):
        return wait_for(lambda: pred(self.drain()) and self.got, timeout, what)

    def close(self) -> None:
        try:
            self.conn.close()
        except pika.exceptions.AMQPError:
            pass


class Net:
    """Vhosts, users, homes, servers and processes of one test; ``close`` (or the end of
    a ``with`` block) undoes all."""

    def __init__(self, tmp: Path, switches: str) -> None:
        self.tmp = tmp
        self.tag = uuid.uuid4().hex[:6]
        self.vhosts: Dict[str, str] = {s: f"{PREFIX}_{self.tag}_{s}" for s in switches}
        self.users: Dict[str, str] = {}
        self.procs: List[subprocess.Popen] = []
        self.servers: List[Serve] = []
        self.taps: List[Tap] = []
        self.home = tmp / "home"
        for v in self.vhosts.values():
            api("PUT", f"/vhosts/{quote(v, safe='')}")
            self._grant("guest", v)
        self.env = dict(os.environ, HOME=str(self.home), PYTHONPATH=str(REPO),
                        XDG_CONFIG_HOME=str(self.home / "config"),
                        XDG_CACHE_HOME=str(self.home / "cache"),
                        XDG_STATE_HOME=str(self.home / "state"))  # fmt: skip

    def _grant(self, user: str, vhost: str) -> None:
        perms = {"configure": ".*", "write": ".*", "read": ".*"}
        api("PUT", f"/permissions/{quote(vhost, safe='')}/{user}", json=perms)

    def user(self, role: str) -> str:
        """Broker user ``<role>-<tag>`` with full rights on every switch of the net."""
        if role not in self.users:
            name = f"{role}-{self.tag}"
            api("PUT", f"/users/{name}", json={"password": "pw-" + self.tag, "tags": ""})
            for v in self.vhosts.values():
                self._grant(name, v)
            self.users[role] = name
        return self.users[role]

    def url(self, switch: str, role: Optional[str] = None) -> str:
        user = self.user(role) if role else "guest"
        pw = "pw-" + self.tag if role else "guest"
        return f"amqp://{user}:{pw}@localhost/{quote(self.vhosts[switch], safe='')}"

    def serve(self, root: Path) -> Serve:
        s = Serve(root)
        self.servers.append(s)
        return s

    def tap(self, switch: str, exchange: str, key: str = "#") -> Tap:
        t = Tap(self.url(switch), exchange, key)
        self.taps.append(t)
        return t

    def config(self, program: str, name: str, text: str) -> None:
        d = self.home / "config" / "sarra" / program
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{name}.conf").write_text(text)

    def cmd(self, program: str, *args: str) -> List[str]:
        return [sys.executable, "-m", "sarra.cli", program, *args]

    def run(self, program: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(self.cmd(program, *args), env=self.env, capture_output=True,
                              text=True, timeout=timeout)  # fmt: skip

    def foreground(self, program: str, conf: str) -> subprocess.Popen:
        log = open(self.tmp / f"{program}_{conf}.out", "ab")
        p = subprocess.Popen(self.cmd(program, "foreground", conf), env=self.env, stdout=log,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # fmt: skip
        self.procs.append(p)
        return p

    def consumers(self, switch: str, queue: str) -> int:
        r = requests.get(f"{API}/queues/{quote(self.vhosts[switch], safe='')}/{queue}",
                         auth=AUTH, timeout=10)  # fmt: skip
        return int(r.json().get("consumers", 0)) if r.status_code == 200 else 0

    def messages(self, switch: str, queue: str) -> int:
        """Messages in ``queue``, ready or unacknowledged (-1 until the broker knows it)."""
        r = requests.get(f"{API}/queues/{quote(self.vhosts[switch], safe='')}/{queue}",
                         auth=AUTH, timeout=10)  # fmt: skip
        return int(r.json().get("messages", -1)) if r.status_code == 200 else -1

    def wait_consuming(self, switch: str, queue: str, timeout: float = 30) -> None:
        wait_for(lambda: self.consumers(switch, queue) > 0, timeout, f"a consumer on {queue}")

    def logs(self) -> str:
        return "\n".join(
            f"==== {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.tmp.glob("*.out"))
        )

    def __enter__(self) -> Net:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for t in self.taps:
            t.close()
        for s in self.servers:
            s.close()
        for v in self.vhosts.values():
            api("DELETE", f"/vhosts/{quote(v, safe='')}")
        for u in self.users.values():
            api("DELETE", f"/users/{u}")
