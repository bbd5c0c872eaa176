"""dd_subscribe shows transfer progress on a terminal, and only there.

``dd_subscribe foreground`` runs with its stderr on a pseudo-terminal (so it is a tty,
as for a user at a shell) while it downloads a large file from the loopback HTTP
server; a second subscriber runs with its output in a log file, as a daemon's is.
``throttle`` makes each download last a few seconds, long enough for several redraws.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
import threading
from pathlib import Path

import pytest

from tests.fixtures.waiting import wait_for
from tests.flow.conftest import count_files, md5_of

pytestmark = [pytest.mark.flow]

BIG = 32 * 1024 * 1024
PROGRESS = re.compile(
    r"big\.bin  [\d.]+ (?:Bytes|KiB|MiB) / 32\.0 MiB  (\d+)%  [\d.]+ [KM]iB/s  ETA \d+:\d\d"
)
LOGGED = re.compile(r"downloaded \S*/big\.bin \(32\.0 MiB, [\d.]+ [KM]iB/s\)")


def subscribe_conf(fe, name: str, dst: Path) -> None:
    fe.config(
        "subscribe", name,
        f"exchange xs_guest\ndirectory {dst}\nthrottle 12M\naccept .*big\\.bin$\n",
    )  # fmt: skip
    fe.run("dd_subscribe", "declare", name)


def foreground_on_a_terminal(fe, config: str, dst: Path) -> str:
    """Run ``dd_subscribe foreground config`` on a 120-column pty until ``dst`` holds one
    file; return everything it wrote to the terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        fe.argv("dd_subscribe", "foreground", config), env=fe.env, cwd=fe.root,
        stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
    )  # fmt: skip
    fe.procs.append(proc)
    os.close(slave)
    out: list[bytes] = []

    def drain() -> None:  # a full pty would block the subscriber
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                return
            if not data:
                return
            out.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        arrived = wait_for(lambda: count_files(dst) >= 1 or proc.poll() is not None, 90, fail=False)
        rc = fe.terminate(proc)
        reader.join(30)
    finally:
        os.close(master)
    text = b"".join(out).decode(errors="replace")
    assert arrived and count_files(dst) == 1, text[-4000:]
    assert rc == 0 and "Traceback" not in text, text[-4000:]
    return text


def test_terminal_shows_progress_with_eta_and_a_log_file_does_not(flowenv, http_server):
    fe, www = flowenv, http_server.root
    big = www / "big.bin"
    with open(big, "wb") as f:
        for _ in range(BIG >> 22):
            f.write(os.urandom(1 << 22))
    tty_dst, log_dst = fe.root / "tty", fe.root / "log"
    subscribe_conf(fe, "tty", tty_dst)
    subscribe_conf(fe, "log", log_dst)
    fe.post("-u", http_server.url, "-pbd", str(www), str(big))

    screen = foreground_on_a_terminal(fe, "tty", tty_dst)
    percents = [int(p) for p in PROGRESS.findall(screen)]
    assert len(percents) >= 2, screen[-4000:]
    assert percents == sorted(percents) and 0 <= percents[0] < 100
    # the line is blanked before the file's log line, which starts clean
    assert re.search(r"\r +\r\d\d:\d\d:\d\d INFO " + LOGGED.pattern, screen), screen[-4000:]
    assert md5_of(tty_dst / "big.bin") == md5_of(big)

    proc = fe.foreground("log")
    assert wait_for(lambda: count_files(log_dst) >= 1 or proc.poll() is not None, 90, fail=False)
    assert fe.terminate(proc) == 0
    log = fe.log_text(proc)
    assert count_files(log_dst) == 1, log[-4000:]
    assert len(LOGGED.findall(log)) == 1, log[-4000:]
    assert "ETA" not in log and "\r" not in log and not PROGRESS.search(log), log[-4000:]
    assert md5_of(log_dst / "big.bin") == md5_of(big)
