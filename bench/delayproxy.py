"""A long-haul link on loopback: a TCP proxy that delays bytes and caps the window.

    python bench/delayproxy.py LISTEN_PORT UPSTREAM_PORT [--delay S] [--window BYTES]

Every connection to 127.0.0.1:LISTEN_PORT is relayed to 127.0.0.1:UPSTREAM_PORT.  Each
direction is delayed by ``--delay`` seconds (one way; the round trip is twice that), and
with ``--window`` at most that many bytes per connection and direction are "in flight"
(sent but not yet acknowledged one round trip later), like a TCP receive window.  One
stream then moves at most window/RTT bytes per second, which is what makes several
streams faster than one on a real long link.  Connecting costs one round trip.

No root, no network namespace, no netem: everything stays on 127.0.0.1.  It models
delay and window only (no loss, reordering or congestion control).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import List, Optional, Tuple


class _Pipe:
    """One direction of one connection: read, hold for ``delay``, write."""

    def __init__(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        delay: float,
        window: int,
    ) -> None:
        self.src, self.dst, self.delay, self.window = src, dst, delay, window
        self.in_flight = 0
        self.acked = asyncio.Event()
        self.queue: asyncio.Queue[Tuple[float, Optional[bytes]]] = asyncio.Queue()

    def _ack(self, n: int) -> None:
        self.in_flight -= n
        self.acked.set()

    async def _deliver(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, data = await self.queue.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            if data is None:
                if self.dst.can_write_eof():
                    self.dst.write_eof()
                return
            self.dst.write(data)
            await self.dst.drain()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        sender = asyncio.create_task(self._deliver())
        try:
            while True:
                while self.window and self.in_flight >= self.window:
                    self.acked.clear()
                    await self.acked.wait()
                room = self.window - self.in_flight if self.window else 1 << 16
                data = await self.src.read(min(1 << 16, room))
                self.queue.put_nowait((loop.time() + self.delay, data or None))
                if not data:
                    break
                if self.window:
                    self.in_flight += len(data)
                    loop.call_later(2 * self.delay, self._ack, len(data))
            await sender
        except (ConnectionError, asyncio.CancelledError):
            sender.cancel()


async def _handle(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    upstream: int,
    delay: float,
    window: int,
) -> None:
    await asyncio.sleep(2 * delay)  # the handshake's round trip
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
    except OSError:
        writer.close()
        return
    await asyncio.gather(
        _Pipe(reader, up_writer, delay, window).run(),
        _Pipe(up_reader, writer, delay, window).run(),
        return_exceptions=True,
    )
    for w in (writer, up_writer):
        w.close()


async def serve(port: int, upstream: int, delay: float, window: int) -> None:
    """Run the proxy until cancelled."""
    server = await asyncio.start_server(
        lambda r, w: _handle(r, w, upstream, delay, window), "127.0.0.1", port
    )
    async with server:
        await server.serve_forever()


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("port", type=int, help="port to listen on (127.0.0.1)")
    p.add_argument("upstream", type=int, help="port to relay to (127.0.0.1)")
    p.add_argument("--delay", type=float, default=0.025, help="one-way delay, seconds")
    p.add_argument("--window", type=int, default=262144, help="bytes in flight (0: no cap)")
    a = p.parse_args(argv)
    try:
        asyncio.run(serve(a.port, a.upstream, a.delay, a.window))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
