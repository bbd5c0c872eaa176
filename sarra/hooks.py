"""Hooks: user plugins (Python classes) and trigger scripts.

A ``Hook`` subclass overrides any of the ``on_*`` methods.  ``HookSet.emit`` calls them
in configuration order and isolates failures: a raising hook becomes a ``HookError``
naming the hook, which the flow turns into a failed message; the daemon goes on.

Plugins are loaded by dotted path (``package.module.Class``) or by file path
(``/path/to/file.py`` or ``/path/to/file.py:Class``); a file with exactly one Hook
subclass needs no class name.  ``ScriptHook`` runs an executable for ``on_file`` or
``on_part`` with the local path as argument and the message fields in environment
variables (``SARRA_*``).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from sarra.config.loader import Options
from sarra.core.errors import ConfigError, HookError

if TYPE_CHECKING:  # pragma: no cover
    from sarra.core.delivery import Delivery

log = logging.getLogger(__name__)

EVENTS = ("on_start", "on_message", "on_part", "on_file", "on_post", "on_housekeeping", "on_stop")


class Hook:
    """Base class of user plugins.  Override what you need; defaults do nothing.

    ``on_message`` may return False to reject the message (it is acknowledged and
    reported as rejected).  It may also change ``delivery.notice`` (a frozen Notice:
    assign a new one made with ``notice.replace(...)``).
    """

    name = ""

    def __init__(self, options: Any = None) -> None:
        self.options = options

    def on_start(self) -> None:
        """Called once when the flow starts."""

    def on_message(self, delivery: Delivery) -> Optional[bool]:
        """Called for each accepted message before any work; False rejects it."""
        return None

    def on_part(self, delivery: Delivery) -> None:
        """Called after one block of a partitioned file is written and verified."""

    def on_file(self, delivery: Delivery) -> None:
        """Called after a whole file is in place under its final name."""

    def on_post(self, delivery: Delivery) -> None:
        """Called before the notice of ``delivery`` is published downstream."""

    def on_housekeeping(self) -> None:
        """Called on the housekeeping timer."""

    def on_stop(self) -> None:
        """Called once when the flow stops."""

    def __repr__(self) -> str:
        return f"<hook {self.name or type(self).__name__}>"


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


def _load_module_from_file(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"sarra_plugin_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"plugin {path}: cannot load")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_hook_class(spec: str) -> type:
    """Find a Hook subclass from a dotted path or a file path (``file.py[:Class]``).

    Raises:
        ConfigError: the module or class cannot be found or is not a Hook.
    """
    target, _, cls_name = spec.partition(":") if ".py" in spec else (spec, "", "")
    try:
        if target.endswith(".py"):
            module = _load_module_from_file(Path(target).expanduser())
        else:
            mod_name, _, cls_name = target.rpartition(".")
            module = importlib.import_module(mod_name)
    except (ImportError, OSError, SyntaxError) as e:
        raise ConfigError(f"plugin {spec}: {e}") from e
    if cls_name:
        cls = getattr(module, cls_name, None)
    else:
        found = [
            c
            for _, c in inspect.getmembers(module, inspect.isclass)
            if issubclass(c, Hook) and c is not Hook and c.__module__ == module.__name__
        ]
        cls = found[0] if len(found) == 1 else None
    if not (inspect.isclass(cls) and issubclass(cls, Hook)):
        raise ConfigError(f"plugin {spec}: no Hook subclass found")
    return cls


class HookSet:
    """The hooks of one flow, in configuration order."""

    def __init__(self, hooks: Sequence[Hook] = ()) -> None:
        self.hooks: List[Hook] = list(hooks)

    @classmethod
    def from_options(cls, options: Options) -> HookSet:
        """Build plugins (``plugin`` lines) and scripts (``on_file``/``on_part`` lines).

        An ``on_message``/``on_post`` line names a plugin class for that event.
        """
        hooks: List[Hook] = []
        for spec in (*options.plugin, *options.on_message, *options.on_post):
            hooks.append(load_hook_class(spec)(options))
        for event, commands in (("on_file", options.on_file), ("on_part", options.on_part)):
            for command in commands:
                if _looks_like_class(command):
                    hooks.append(load_hook_class(command)(options))
                else:
                    hooks.append(ScriptHook(command, event))
        return cls(hooks)

    def emit(self, event: str, *args: Any) -> List[Any]:
        """Call ``event`` on every hook; return their results.

        Raises:
            HookError: the first hook that raised, named, with the cause chained.
        """
        results = []
        for hook in self.hooks:
            method = getattr(hook, event)
            try:
                results.append(method(*args))
            except HookError:
                raise
            except Exception as e:  # noqa: BLE001 - user code: any failure is isolated
                name = hook.name or type(hook).__name__
                raise HookError(f"hook {name}.{event} failed: {e!r}") from e
        return results

    def accepts(self, delivery: Delivery) -> bool:
        """Run ``on_message``; False if any hook returned False."""
        return all(r is not False for r in self.emit("on_message", delivery))

    def safe_emit(self, event: str, *args: Any) -> None:
        """Emit an event whose failure must not stop anything (start/stop/housekeeping)."""
        try:
            self.emit(event, *args)
        except HookError as e:
            log.error("%s", e)


def _looks_like_class(command: str) -> bool:
    """``pkg.mod.Class`` or ``file.py:Class`` rather than an executable path."""
    if ":" in command and ".py" in command:
        return True
    first = command.split()[0] if command.split() else ""
    return "/" not in first and "." in first and first.split(".")[-1][:1].isupper()
