"""The dd_* programs as configurations to run: their roles, options, instances, actions.

What ``dd_subscribe start|stop|restart|status|cleanup|declare <config>`` does for one
config, shared by the per-program command line (``sarra.cli``) and ``dd``
(``supervisor``): which role module a program runs (:data:`ROLES`, loaded by name so
that nothing here imports a role), the options of one config with that role's
defaults, its :class:`~sarra.service.instances.Instances`, and the exit codes of every
command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional

from sarra.config.loader import Options, load
from sarra.config.paths import Paths
from sarra.core.errors import ConfigError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_STOPPED = 3
WANTED = "wanted"

ROLES = {
    "dd_post": "sarra.roles.post",
    "dd_subscribe": "sarra.roles.subscribe",
    "dd_sara": "sarra.roles.sara",
    "dd_shovel": "sarra.roles.shovel",
    "dd_watch": "sarra.roles.watch",
    "dd_log": "sarra.roles.log",
    "dd_sender": "sarra.roles.sender",
    "dd_poll": "sarra.roles.poll",
}


def mark_wanted(state_dir: Path, count: int) -> None:
    """Record that this config is meant to run ``count`` instances (atomic write)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / f".{WANTED}.tmp"
    tmp.write_text(f"{count}\n")
    tmp.replace(state_dir / WANTED)


def clear_wanted(state_dir: Path) -> None:
    """Record that this config was stopped on purpose."""
    (state_dir / WANTED).unlink(missing_ok=True)


def wanted_count(state_dir: Path) -> Optional[int]:
    """The instance count the config was started with, or None when it is not wanted."""
    try:
        text = (state_dir / WANTED).read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else 1


def role(program: str) -> Any:
    if program not in ROLES:
        raise ConfigError(f"{program} is not available yet")
    return importlib.import_module(ROLES[program])


def options(program: str, config: Optional[str], ns: argparse.Namespace, paths: Paths) -> Options:
    return load(program, config, ns.overrides, paths, defaults=role(program).DEFAULTS)


def check_plugins(o: Options, paths: Paths) -> None:
    """Find every plugin the config names before anything starts (none is run).

    Raises:
        ConfigError: a plugin that cannot be found or read (``file:line``).
    """
    if o.hook_lines:
        from sarra.hooks.loading import plugin_dirs, resolve

        resolve(o, plugin_dirs(paths))


def context(program: str, o: Options, paths: Paths, instance: int, stop: Callable) -> Any:
    from sarra.flow.context import Context

    return Context(
        program,
        o,
        paths,
        instance=instance or 1,
        stop=stop,
        interactive=instance == 0 and sys.stderr.isatty(),
    )


def configs(program: str, paths: Paths) -> List[str]:
    d = paths.program_config_dir(program)
    return sorted(p.stem for p in d.glob("*.conf")) if d.is_dir() else []


def instances(
    program: str, config: str, o: Options, paths: Paths, ns: argparse.Namespace, os: Any = None
) -> Any:
    from sarra.service.instances import Instances

    extra = [f"--{name}={value}" for name, value in ns.overrides]

    def argv(n: int) -> List[str]:
        return [
            sys.executable,
            "-m",
            "sarra.cli",
            program,
            *extra,
            "--instance",
            str(n),
            "foreground",
            config,
        ]

    return Instances(
        program,
        config,
        int(o.instances),
        paths.state(program, config),
        lambda n: paths.log_file(program, config, n),
        argv,
        os=os,
        stop_timeout=float(o.stop_timeout),
    )


def report(program: str, config: str, report: Any) -> int:
    for oc in report.outcomes:
        pid = f" pid {oc.pid}" if oc.pid else ""
        detail = f": {oc.detail}" if oc.detail else ""
        print(f"{program} {config} instance {oc.n:02d}{pid}: {oc.action}{detail}")
    return int(report.exit_code)


def start(program: str, config: str, ns: argparse.Namespace, paths: Paths) -> int:
    o = options(program, config, ns, paths)
    check_plugins(o, paths)
    mark_wanted(paths.state(program, config), int(o.instances))
    return report(program, config, instances(program, config, o, paths, ns).start())


def stop(program: str, config: str, ns: argparse.Namespace, paths: Paths) -> int:
    clear_wanted(paths.state(program, config))
    o = options(program, config, ns, paths)
    return report(program, config, instances(program, config, o, paths, ns).stop())


def restart(program: str, config: str, ns: argparse.Namespace, paths: Paths) -> int:
    o = options(program, config, ns, paths)
    check_plugins(o, paths)
    mark_wanted(paths.state(program, config), int(o.instances))
    return report(program, config, instances(program, config, o, paths, ns).restart())


def status(program: str, config: str, ns: argparse.Namespace, paths: Paths) -> int:
    from sarra.service.instances import status_code

    o = options(program, config, ns, paths)
    found = instances(program, config, o, paths, ns).status()
    running = [s for s in found if s.state == "running"]
    pids = ",".join(str(s.pid) for s in running) or "-"
    print(f"{program} {config}: {len(running)}/{o.instances} running (pids {pids})")
    return int(status_code(found))


def cleanup(program: str, config: str, ns: argparse.Namespace, paths: Paths) -> int:
    o = options(program, config, ns, paths)
    inst = instances(program, config, o, paths, ns)
    if any(s.state == "running" for s in inst.status()):
        print(f"{program} {config}: stop it before cleanup", file=sys.stderr)
        return EXIT_FAILURE
    ctx = context(program, o, paths, 1, lambda: False)
    try:
        role(program).cleanup(ctx)
    finally:
        ctx.close()
    report(program, config, inst.cleanup())
    print(f"{program} {config}: queue and state removed")
    return EXIT_OK


def declare(program: str, config: str, ns: argparse.Namespace, paths: Paths) -> int:
    o = options(program, config, ns, paths)
    ctx = context(program, o, paths, 1, lambda: False)
    try:
        role(program).declare(ctx)
    finally:
        ctx.close()
    print(f"{program} {config}: declared")
    return EXIT_OK
