"""From a config's plugin lines to hooks: finding each plugin as v2 and sr3 find them.

``on_message``, ``on_file``, ``on_part``, ``on_post``, ``on_start``, ``on_stop``,
``on_heartbeat`` and ``plugin`` name v2 plugins (v2 ``sr_config.config_path``): a file
(``/path/x.py``, ``x.py``), else ``<plugin dir>/<name>.py`` (``~/.config/sarra/plugins``),
else one of sarra's built-in plugins (``msg_log``, ``file_log``...), else a Hook class
by dotted path (``pkg.module.Class``); for ``on_file``/``on_part`` a program to run (a
trigger script) when no plugin has that name.  ``callback``/``flowcb`` (and
``callback_prepend``, run before the others) name sr3 callbacks (sr3
``flowcb.load_library``): ``name`` is ``name.Name``, ``a.b`` is ``a.b.B``, ``a.b.C`` is
class ``C`` of module ``a.b``; the module is looked for in the plugin dirs, then among
sarra's built-in callbacks (``log``, ``accept.renamewhatfn``...; a leading
``sarracenia.flowcb.`` is dropped), then among installed modules.

A plugin file is told apart by what it does: a file assigning ``self.<entry point>`` at
top level is a v2 plugin (run by ``sarra.hooks.v2``); one defining a class is a module
(a ``Hook`` subclass, or an sr3 callback class run by ``sarra.hooks.sr3``); an
executable without either is a trigger script.  :func:`resolve` finds every plugin
without running any (``dd_subscribe start`` checks that much before starting
anything); :func:`build` runs them.  Every problem is a ``ConfigError`` naming the
line (``file:line``) that named the plugin.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import shlex
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Sequence, Tuple

from sarra.core.errors import ConfigError
from sarra.hooks import builtin
from sarra.hooks.base import Hook, HookSet, Host
from sarra.hooks.script import ScriptHook
from sarra.hooks.settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from sarra.config.loader import Options
    from sarra.core.delivery import Delivery

SR3_OPTIONS = ("callback", "callback_prepend")
SCRIPT_OPTIONS = ("on_file", "on_part")
#: methods that make a class an sr3 callback
SR3_ENTRIES = (
    "after_accept",
    "after_gather",
    "after_work",
    "after_post",
    "on_housekeeping",
    "on_start",
    "on_stop",
)
_SR3_PREFIX = "sarracenia.flowcb."


def plugin_dirs(paths: Any) -> List[Path]:
    """Where a config's plugins are looked for first: ``<config_dir>/plugins`` (v2's
    ``~/.config/sarra/plugins``)."""
    return [Path(paths.config_dir) / "plugins"]


@dataclass(frozen=True)
class Spec:
    """One plugin line, resolved: ``kind`` is ``builtin`` (``target`` a class), ``v2`` (a
    v2 plugin file), ``file`` (a Python file defining classes), ``import`` (a module
    name; ``directory`` put first on ``sys.path``), or ``script`` (a command)."""

    option: str
    value: str
    where: str
    kind: str
    target: Any
    cls_name: str = ""
    directory: str = ""

    @property
    def label(self) -> str:
        return f"{self.option} {self.value}"


def _lines(options: Options) -> List[Tuple[str, str, str]]:
    """The plugin lines in the order they run (``callback_prepend`` ones first, the last
    written first, as sr3 inserts them)."""
    lines = options.hook_lines
    first = [line for line in lines if line[0] == "callback_prepend"]
    return list(reversed(first)) + [line for line in lines if line[0] != "callback_prepend"]


def resolve(options: Options, plugin_dirs: Sequence[Any] = ()) -> List[Spec]:
    """Find every plugin the config names, running none of them.

    Raises:
        ConfigError: a plugin that cannot be found, or a file with a syntax error.
    """
    dirs = [Path(d).expanduser() for d in plugin_dirs]
    specs = []
    for option, value, where in _lines(options):
        try:
            specs.append(_resolve(option, value.strip(), where, dirs))
        except ConfigError as e:
            if e.where:
                raise
            raise ConfigError(f"{option} {value}: {e.reason}", where) from None
    return specs


def _resolve(option: str, value: str, where: str, dirs: List[Path]) -> Spec:
    if option in SR3_OPTIONS:
        return _resolve_sr3(option, value, where, dirs)
    target, _, cls_name = value.partition(":") if ".py:" in value else (value, "", "")
    path = _find_file(target, dirs)
    if path is not None:
        kind = _classify(path)
        if kind == "script" and option in SCRIPT_OPTIONS and os.access(path, os.X_OK):
            return Spec(option, value, where, "script", value)
        if kind == "script":
            raise ConfigError(f"{path} defines no plugin (no class, no self.{option} = ...)")
        return Spec(option, value, where, kind, path, cls_name)
    found = builtin.V2.get(value[:-3] if value.endswith(".py") else value)
    if found is not None:
        return Spec(option, value, where, "builtin", found)
    if _dotted_class(value):
        module, _, cls_name = value.rpartition(".")
        _check_importable(module)
        return Spec(option, value, where, "import", module, cls_name)
    if option in SCRIPT_OPTIONS and _runnable(value):
        return Spec(option, value, where, "script", value)
    looked = ", ".join(str(d) for d in dirs) or "no plugin directory"
    what = "plugin or program" if option in SCRIPT_OPTIONS else "plugin"
    raise ConfigError(f"no {what} named {value!r} (looked in {looked} and the built-in plugins)")


def _find_file(name: str, dirs: List[Path]) -> Optional[Path]:
    """``name`` as a Python file: as written, then in each plugin directory."""
    if not name or any(c in name for c in " \t'\""):
        return None
    if name.endswith(".py") or "/" in name:
        p = Path(name).expanduser()
        if p.suffix == ".py" and p.is_file():
            return p
        if p.is_absolute() or "/" in name:
            return None
    for d in dirs:
        for candidate in (d / name, d / f"{name}.py"):
            if candidate.suffix == ".py" and candidate.is_file():
                return candidate
    return None


def _classify(path: Path) -> str:
    """``v2`` (assigns ``self.x`` at top level), ``file`` (defines a class) or ``script``.

    Raises:
        ConfigError: unreadable, or not Python.
    """
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except SyntaxError as e:
        raise ConfigError(f"{path}:{e.lineno}: syntax error: {e.msg}") from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        for t in targets:
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name):
                if t.value.id == "self":
                    return "v2"
    if any(isinstance(node, ast.ClassDef) for node in tree.body):
        return "file"
    return "script"


def _dotted_class(value: str) -> bool:
    """``pkg.mod.Class``: a dotted path ending in a capitalised name."""
    words = value.split(".")
    return len(words) > 1 and all(w.isidentifier() for w in words) and words[-1][:1].isupper()


def _check_importable(module: str) -> None:
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError) as e:
        raise ConfigError(f"cannot import {module}: {e}") from None
    if found is None:
        raise ConfigError(f"no module named {module!r}")


def _runnable(command: str) -> bool:
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    if not words:
        return False
    first = os.path.expanduser(words[0])
    return os.access(first, os.X_OK) if "/" in first else shutil.which(first) is not None


def _sr3_name(value: str) -> Tuple[str, str]:
    """``(module, class)`` as sr3's ``load_library`` reads a callback name."""
    words = value.split(".")
    if len(words) == 1:
        return value, value.capitalize()
    if words[-1][:1].islower():
        return value, words[-1].capitalize()
    return ".".join(words[:-1]), words[-1]


def _resolve_sr3(option: str, value: str, where: str, dirs: List[Path]) -> Spec:
    if value.endswith(".py") or ".py:" in value or "/" in value:
        target, _, cls_name = value.partition(":")
        path = _find_file(target, dirs)
        if path is None:
            raise ConfigError(f"no callback file {target!r}")
        return Spec(option, value, where, "file", path, cls_name)
    short = value[len(_SR3_PREFIX) :] if value.startswith(_SR3_PREFIX) else value
    module, cls_name = _sr3_name(short)
    for d in dirs:
        base = d.joinpath(*module.split("."))
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return Spec(option, value, where, "import", module, cls_name, str(d))
    found = builtin.SR3.get(module.lower())
    if found is not None:
        return Spec(option, value, where, "builtin", found)
    module, cls_name = _sr3_name(value)
    _check_importable(module)
    return Spec(option, value, where, "import", module, cls_name)


# ---------------------------------------------------------------- running them
class _Build:
    """The objects the plugins of one config share (the v2 ``parent``, sr3's ``self.o``)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._parent: Any = None
        self._sr3: Any = None
        self.lock = threading.RLock()

    @property
    def parent(self) -> Any:
        if self._parent is None:
            from sarra.hooks.v2 import Parent

            self._parent = Parent(self.host)
        return self._parent

    @property
    def sr3_options(self) -> Any:
        if self._sr3 is None:
            from sarra.hooks.sr3 import SR3Options

            self._sr3 = SR3Options(self.host)
        return self._sr3

    def hooks(self, spec: Spec) -> List[Hook]:
        if spec.kind == "script":
            return [ScriptHook(spec.value, spec.option)]
        if spec.kind == "builtin":
            hook = spec.target(self.host)
            hook.name = spec.label
            return [hook]
        if spec.kind == "v2":
            from sarra.hooks import v2

            return v2.load(spec.target, spec.option, Path(spec.target).stem, self.parent)
        cls = _class(spec)
        if issubclass(cls, Hook):
            return [cls(self.host.options)]
        from sarra.hooks.sr3 import adapt

        return [adapt(spec.label, cls, self.host, self.sr3_options, self.lock)]


def _module(spec: Spec) -> Any:
    from sarra.hooks.compat import install_sr3

    install_sr3()
    try:
        if spec.kind == "import":
            if spec.directory:
                _from_directory(spec.target, spec.directory)
            return importlib.import_module(spec.target)
        path = Path(spec.target)
        name = f"sarra_plugin_{path.stem}_{abs(hash(str(path.resolve())))}"
        if name in sys.modules:
            return sys.modules[name]
        found = importlib.util.spec_from_file_location(name, path)
        if found is None or found.loader is None:
            raise ConfigError(f"cannot load {path}")
        module = importlib.util.module_from_spec(found)
        sys.modules[name] = module
        found.loader.exec_module(module)
        return module
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - user code: any failure is a config error
        raise ConfigError(f"cannot load: {e!r}") from e


def _from_directory(module: str, directory: str) -> None:
    """Import ``module`` from the plugin directory ``directory`` (first on ``sys.path``,
    as sr3 puts its plugin directory there), not a module of that name met before."""
    if directory not in sys.path:
        sys.path.insert(0, directory)
    top = module.split(".")[0]
    known = sys.modules.get(top)
    where = str(getattr(known, "__file__", "") or "")
    if known is not None and not where.startswith(directory.rstrip("/") + "/"):
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            del sys.modules[name]
    importlib.invalidate_caches()


def _class(spec: Spec) -> type:
    module = _module(spec)
    if spec.cls_name:
        cls = getattr(module, spec.cls_name, None)
        if not inspect.isclass(cls):
            raise ConfigError(f"no class {spec.cls_name!r} in {module.__name__}")
        return cls
    mine = [
        c for _, c in inspect.getmembers(module, inspect.isclass) if c.__module__ == module.__name__
    ]
    for candidates in (
        [c for c in mine if issubclass(c, Hook) and c is not Hook],
        [c for c in mine if any(callable(getattr(c, e, None)) for e in SR3_ENTRIES)],
    ):
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            names = ", ".join(c.__name__ for c in candidates)
            raise ConfigError(f"several plugin classes ({names}): name one with file.py:Class")
    raise ConfigError("no plugin class found (a Hook subclass or an sr3 callback class)")


def load(
    options: Options,
    *,
    plugin_dirs: Sequence[Any] = (),
    locate: Optional[Callable[[Delivery], None]] = None,
    instance: int = 1,
) -> HookSet:
    """Every plugin the config names, built, in the order they run.

    Raises:
        ConfigError: a plugin cannot be found, loaded or built, or an option no plugin
            declares (``file:line``).
    """
    host = Host(options, Settings(options.extras), locate, instance)
    return HookSet(_build(options, plugin_dirs, host), host)


def build(
    options: Options,
    *,
    plugin_dirs: Sequence[Any] = (),
    locate: Optional[Callable[[Delivery], None]] = None,
    instance: int = 1,
) -> List[Hook]:
    """The hooks of :func:`load`, as a list.

    Raises:
        ConfigError: as :func:`load`.
    """
    return load(options, plugin_dirs=plugin_dirs, locate=locate, instance=instance).hooks


def _build(options: Options, plugin_dirs: Sequence[Any], host: Host) -> List[Hook]:
    specs = resolve(options, plugin_dirs)
    shared = _Build(host)
    hooks: List[Hook] = []
    for spec in specs:
        try:
            hooks.extend(shared.hooks(spec))
        except ConfigError as e:
            if e.where:
                raise
            raise ConfigError(f"{spec.label}: {e.reason}", spec.where) from e
    host.settings.check(lenient=any(s.kind == "v2" for s in specs))
    return hooks
