"""Where sarra keeps configuration, state and logs, in user mode and in system mode.

Owns the program short names (``dd_subscribe`` -> ``subscribe``) and the layout:

* ``<config_dir>/default.conf``, ``<config_dir>/credentials.conf``,
  ``<config_dir>/<program>/<config>.conf``
* ``<state_dir>/<program>/<config>/`` per-config state (pidfiles ``iNN.pid``, saved queue
  names, retry queues)
* ``<log_dir>/<program>_<config>_<NN>.log`` one log per instance

User mode follows XDG through appdirs (``~/.config/sarra``, ``~/.cache/sarra``, logs in
``~/.cache/sarra/log``); system mode uses ``/etc/sarra``, ``/var/lib/sarra`` and
``/var/log/sarra`` for packaged services.  Nothing here touches the file system.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import appdirs

from sarra.core.errors import ConfigError

APP = "sarra"

#: Short names of the programs, as used in directory and log names.
PROGRAMS = ("post", "subscribe", "sara", "log", "watch", "shovel", "sender", "poll")

_PREFIXES = ("dd_", "sr_")


def short_name(program: str) -> str:
    """Return the short name of ``program`` (``dd_subscribe`` or ``subscribe`` -> ``subscribe``).

    Raises:
        ConfigError: the program is not one of :data:`PROGRAMS`.
    """
    name = os.path.basename(program)
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    if name not in PROGRAMS:
        raise ConfigError(f"unknown program {program!r} (expected one of {', '.join(PROGRAMS)})")
    return name


def config_stem(config: str) -> str:
    """Return the config name without directory or ``.conf`` suffix (``a/b.conf`` -> ``b``)."""
    name = os.path.basename(config)
    return name[: -len(".conf")] if name.endswith(".conf") else name


@dataclass(frozen=True)
class Paths:
    """The three base directories; every other path is derived from them."""

    config_dir: Path
    state_dir: Path
    log_dir: Path

    @classmethod
    def user(cls) -> Paths:
        """User mode: XDG directories (``XDG_CONFIG_HOME``, ``XDG_CACHE_HOME`` honoured)."""
        cache = Path(appdirs.user_cache_dir(APP))
        return cls(Path(appdirs.user_config_dir(APP)), cache, cache / "log")

    @classmethod
    def system(cls) -> Paths:
        """System mode, for packaged services."""
        return cls(Path("/etc/sarra"), Path("/var/lib/sarra"), Path("/var/log/sarra"))

    @classmethod
    def under(cls, root: Path | str) -> Paths:
        """Everything below one directory (``root/config``, ``root/state``, ``root/log``).

        Meant for tests and throw-away setups.
        """
        base = Path(root)
        return cls(base / "config", base / "state", base / "log")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Paths:
        """System mode when ``SARRA_SYSTEM=1`` is in the environment, else user mode."""
        env = os.environ if environ is None else environ
        return cls.system() if env.get("SARRA_SYSTEM", "") == "1" else cls.user()

    def program_config_dir(self, program: str) -> Path:
        """``<config_dir>/<short program name>``."""
        return self.config_dir / short_name(program)

    def config_file(self, program: str, config: str) -> Path:
        """``<config_dir>/<program>/<config>.conf`` (a trailing ``.conf`` in ``config`` is fine)."""
        return self.program_config_dir(program) / f"{config_stem(config)}.conf"

    def state(self, program: str, config: str) -> Path:
        """Per-config state directory ``<state_dir>/<program>/<config>``."""
        return self.state_dir / short_name(program) / config_stem(config)

    def pid_file(self, program: str, config: str, instance: int) -> Path:
        """``<state>/<program>/<config>/iNN.pid`` for instance number ``instance``."""
        return self.state(program, config) / f"i{instance:02d}.pid"

    def log_file(self, program: str, config: str, instance: int) -> Path:
        """``<log_dir>/<program>_<config>_<NN>.log`` for instance number ``instance``."""
        return self.log_dir / f"{short_name(program)}_{config_stem(config)}_{instance:02d}.log"

    def credentials_file(self) -> Path:
        """``<config_dir>/credentials.conf``."""
        return self.config_dir / "credentials.conf"

    def default_conf(self) -> Path:
        """``<config_dir>/default.conf``."""
        return self.config_dir / "default.conf"
