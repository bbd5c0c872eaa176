"""Trigger scripts: an executable run for ``on_file`` or ``on_part``.

The local path is the last argument; the message fields are in ``SARRA_*`` environment
variables.  Header names come from the notice (hostile): each becomes a variable name of
letters, digits and ``_`` only, so a header cannot set ``PATH`` or ``LD_PRELOAD``.
"""

from __future__ import annotations

import logging
import os
import shlex
from typing import TYPE_CHECKING, Dict, Optional

from sarra.core.errors import ConfigError, HookError
from sarra.hooks.base import Hook

if TYPE_CHECKING:  # pragma: no cover
    from sarra.core.delivery import Delivery

log = logging.getLogger(__name__)


def script_env(delivery: Delivery) -> Dict[str, str]:
    """Environment for a trigger script: the message fields as ``SARRA_*`` variables."""
    n = delivery.notice
    env = dict(os.environ)
    env.update(
        SARRA_LOCAL_PATH=str(delivery.local_path or ""),
        SARRA_BASEURL=n.baseurl,
        SARRA_RELPATH=n.relpath,
        SARRA_URL=n.url,
        SARRA_PUBTIME=n.pubtime,
        SARRA_TOPIC=n.topic,
    )
    for key, value in n.headers.items():
        safe = "".join(c if c.isalnum() else "_" for c in key).upper()
        env[f"SARRA_{safe}"] = value
    return env


class ScriptHook(Hook):
    """Runs ``command`` (an executable, possibly with arguments) with the local path
    appended, for one event (``on_file`` or ``on_part``).  A non-zero exit is a failure.
    """

    def __init__(self, command: str, event: str, timeout: Optional[float] = None) -> None:
        super().__init__()
        self.argv = shlex.split(command)
        if not self.argv:
            raise ConfigError(f"{event}: empty script command")
        self.event = event
        self.timeout = timeout
        self.name = f"{event} {command}"

    def handles(self, event: str) -> bool:
        return event == self.event

    def _run(self, delivery: Delivery) -> None:
        import subprocess  # here: commands without scripts need not pay for it

        argv = [*self.argv, str(delivery.local_path)]
        try:
            done = subprocess.run(
                argv,
                env=script_env(delivery),
                timeout=self.timeout,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as e:
            raise HookError(f"{self.name}: cannot run: {e}") from e
        for line in done.stdout.decode(errors="replace").splitlines():
            log.info("%s: %s", self.argv[0], line)
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip().splitlines()
            tail = err[-1] if err else ""
            raise HookError(f"{self.name}: exit status {done.returncode} {tail}".rstrip())

    def on_file(self, delivery: Delivery) -> None:
        if self.event == "on_file":
            self._run(delivery)

    def on_part(self, delivery: Delivery) -> None:
        if self.event == "on_part":
            self._run(delivery)
