"""Reads configuration files into one read-only :class:`Options` object.

Layering, lowest first: built-in defaults (the option table) < the program's own
``defaults`` < ``<config_dir>/default.conf`` < the config file < command-line overrides.

File syntax (Sarracenia v2 compatible): one ``option value`` per line; lines whose first
non-blank character is ``#`` are comments (a ``#`` later in a line is data: ``subtopic #``);
``include <file>`` (or ``config <file>``) reads another file (relative to the including
file); a boolean written without a value means True; a repeatable option written with the
value ``None`` clears what earlier lines added, and ``None`` leaves an option whose
default is None unset.  An option is named by any of its spellings (v2, sr3: the
aliases of its row; case does not matter).  ``${NAME}`` is replaced by a built-in variable
(``HOSTNAME``, ``CONFIG``, ``PROGRAM``, ``BROKER_USER``, ``POST_BROKER_USER``,
``YYYYMMDD``, ``YYYY``, ``MM``, ``DD``, ``HH``, ``JJJ``, sr3's ``%Y%m%d`` forms), a
``declare env NAME=value`` of a line above, or an environment variable.  In
``directory`` values the per-message variables (:data:`MESSAGE_VARIABLES`, and sr3's
time forms) are left as written; roles expand them with :func:`expand`.

``accept``/``reject`` lines become :class:`Mask` objects, in file order, each capturing the
``directory``, ``mirror``, ``strip`` and ``flatten`` in force at its line.  A scoped
option given on the command line also applies to the masks of the files that did not set
it before their line (so ``-directory`` on the command line places what a config accepts
when the config names no directory of its own).

A line naming an option no row knows is kept (``Options.extras``) when the config names
plugins (:data:`~sarra.config.options.HOOK_OPTIONS`): a plugin may declare it
(``sarra.hooks`` refuses it at start-up if none does); without plugins it is an error here.

Every problem raises :class:`~sarra.core.errors.ConfigError` with ``where="file:line"``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import re
import socket
from pathlib import Path
from typing import Any, Dict, List, Mapping, Pattern, Sequence, Set, Tuple
from urllib.parse import unquote

from sarra.config.converters import boolean
from sarra.config.credentials import broker_user
from sarra.config.inert import REPLACES_WORK, WHY_REFUSED
from sarra.config.options import HOOK_OPTIONS, OPTIONS, canonical, spelling
from sarra.config.paths import Paths, config_stem, short_name
from sarra.config.values import Line, Mask, Options, required, select, table_defaults
from sarra.core.errors import ConfigError
from sarra.core.timestamps import time_variable

__all__ = [
    "COMMAND_LINE",
    "MESSAGE_VARIABLES",
    "Line",
    "Mask",
    "Options",
    "expand",
    "find_config",
    "load",
    "required",
    "select",
    "table_defaults",
]

logger = logging.getLogger(__name__)

#: Variables expanded per message (left unexpanded in ``directory`` at load time).
MESSAGE_VARIABLES = frozenset(
    {"SOURCE", "YYYYMMDD", "YYYY", "MM", "DD", "HH", "JJJ", "BD", "PBD", "DR", "PDR"}
)
SCOPE = ("directory", "mirror", "strip", "flatten")
COMMAND_LINE = "command line"
_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def expand(template: str, values: Mapping[str, str]) -> str:
    """Replace every ``${NAME}`` in ``template`` by ``values[NAME]`` (sr3's ``${%Y%m%d}``
    by the time now).

    Raises:
        ConfigError: a variable is not in ``values``, or a ``${`` is never closed.
    """

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            when = time_variable(name)  # sr3's ${%Y%m%d}
            if when is None:
                raise ConfigError(f"unknown variable ${{{name}}} in {template!r}")
            return when
        return str(values[name])

    result = _VARIABLE.sub(one, template)
    if "${" in _VARIABLE.sub("", template):
        raise ConfigError(f"unterminated variable in {template!r}")
    return result


def _in_form(text: str, form: str) -> str:
    """``text`` as its option reads it: ``form`` ``"!"`` turns a boolean over (``notify_only
    on`` is ``download off``), another form is a unit appended (``kbytes_ps 10`` -> ``10K``).

    Raises:
        ValueError: ``"!"`` and ``text`` is not a boolean.
    """
    if form == "!":
        return "false" if boolean(text) else "true"
    return text + form


class _Loader:
    """Accumulates values line by line; one loader per ``load`` call (no shared state)."""

    def __init__(
        self, program: str, config: str | None, environ: Mapping[str, str], now: _dt.datetime
    ) -> None:
        self.program = program
        self.config = config
        self.environ = environ
        self.now = now
        self.values: Dict[str, Any] = {name: opt.default for name, opt in OPTIONS.items()}
        self.set_by: Dict[str, str] = {}
        self.explicit_scope: Set[str] = set()
        self.cli_scope: Dict[str, Any] = {}
        self.pending: List[Tuple[Pattern[str], bool, Dict[str, Any], frozenset, str]] = []
        self.stack: List[Path] = []
        self.hook_lines: List[Line] = []
        self.extras: List[Line] = []
        self.declared_env: Dict[str, str] = {}  # declare env NAME=value: ${NAME} from there

    # -- variables
    def variable(self, name: str) -> str | None:
        builtins = {
            "HOSTNAME": socket.gethostname,
            "CONFIG": lambda: self.config or "",
            "PROGRAM": lambda: f"dd_{self.program}",
            "YYYYMMDD": lambda: self.now.strftime("%Y%m%d"),
            "YYYY": lambda: self.now.strftime("%Y"),
            "MM": lambda: self.now.strftime("%m"),
            "DD": lambda: self.now.strftime("%d"),
            "HH": lambda: self.now.strftime("%H"),
            "JJJ": lambda: self.now.strftime("%j"),
        }
        if name in ("BROKER_USER", "POST_BROKER_USER"):
            return self.broker_user(name)
        if name in builtins:
            return builtins[name]()
        if name.startswith("%"):  # sr3's ${%Y%m%d}
            return time_variable(name, self.now.timestamp())
        return self.declared_env.get(name, self.environ.get(name))

    def broker_user(self, variable: str = "BROKER_USER") -> str:
        option = "post_broker" if variable == "POST_BROKER_USER" else "broker"
        user = broker_user(self.values[option], default="")
        if not user:
            raise ConfigError(f"${{{variable}}} used before a {option} with a user name is set")
        return unquote(user)

    def substitute(self, text: str, keep: frozenset = frozenset()) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in keep or (keep and name.startswith("%")):  # per message in directory
                return match.group(0)
            value = self.variable(name)
            if value is None:
                raise ConfigError(f"unknown variable ${{{name}}} in {text!r}")
            return value

        result = _VARIABLE.sub(one, text)
        if "${" in _VARIABLE.sub("", text):
            raise ConfigError(f"unterminated variable in {text!r}")
        return result

    # -- setting values
    def set(self, name: str, value: str, where: str, warn: bool = True) -> None:
        try:
            self._set(name, value, where, warn)
        except ConfigError as e:
            if e.where:
                raise
            raise ConfigError(e.reason, where) from None

    def _set(self, name: str, value: str, where: str, warn: bool) -> None:
        found = spelling(name)
        if found is None and name.lower() in REPLACES_WORK:
            if value.strip().lower() != "none":  # "on_line None": nothing to clear
                raise ConfigError(f"option {name!r}: {WHY_REFUSED}")
            return
        if found is None:  # perhaps a plugin's: decided in finish()
            self.extras.append((name, self.substitute(value.strip()), where))
            return
        canon, form = found
        opt = OPTIONS[canon]
        label = repr(canon) if canonical(name) == name.lower() else f"{name!r} ({canon})"
        text = value.strip()
        if not text:
            if not opt.is_flag and not opt.ignored:
                raise ConfigError(f"option {label} needs a value")
            text = "true" if opt.is_flag else ""
        if warn and opt.ignored:
            logger.warning("%s: option %r has no effect here: %s", where, name, opt.ignored)
        elif warn and self.program not in opt.programs:
            logger.warning("%s: option %r is not used by dd_%s", where, canon, self.program)
        text = self.substitute(text, MESSAGE_VARIABLES if canon == "directory" else frozenset())
        try:
            text = _in_form(text, form)
        except ValueError as e:
            raise ConfigError(f"option {label}: {e}") from None
        if not opt.multi and opt.default is None and text.lower() == "none" and not form:
            self.values[canon] = None  # v2 and sr3: "post_base_dir None" is no value
            self.set_by[canon] = where
            return
        if opt.multi and text.lower() == "none":
            self.values[canon] = ()
            self.set_by[canon] = where
            self.hook_lines = [h for h in self.hook_lines if h[0] != canon]
            if canon in ("accept", "reject"):
                self.pending = [p for p in self.pending if p[1] != (canon == "accept")]
            return
        try:
            converted = opt.converter(text)
        except ValueError as e:
            raise ConfigError(f"option {label}: {e}") from None
        self.set_by[canon] = where
        if canon == "declare" and converted[0] == "env":
            env_name, _, env_value = converted[1].partition("=")
            self.declared_env[env_name.strip()] = env_value.strip()
        if canon in HOOK_OPTIONS:
            self.hook_lines.append((canon, text, where))
        if opt.multi:
            self.values[canon] = tuple(self.values[canon]) + (converted,)
        else:
            self.values[canon] = converted
        if canon in SCOPE:
            self.explicit_scope.add(canon)
            if where == COMMAND_LINE:
                self.cli_scope[canon] = converted
        if canon in ("accept", "reject"):
            scope = {name: self.values[name] for name in SCOPE}
            inherited = frozenset(SCOPE) - self.explicit_scope
            self.pending.append((converted, canon == "accept", scope, inherited, where))

    def apply_defaults(self, defaults: Mapping[str, Any]) -> None:
        unknown = sorted(set(defaults) - set(OPTIONS))
        if unknown:
            raise ConfigError(f"unknown option {unknown[0]!r} in program defaults")
        self.values.update(defaults)

    # -- files
    def read_file(self, path: Path, where: str = "") -> None:
        resolved = path.resolve()
        if resolved in self.stack:
            chain = " -> ".join(str(p) for p in self.stack + [resolved])
            raise ConfigError(f"include loop: {chain}", where)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            reason = getattr(e, "strerror", None) or str(e)
            raise ConfigError(f"cannot read {str(path)!r}: {reason}", where) from None
        self.stack.append(resolved)
        for number, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            name, value = (re.split(r"\s+", line, maxsplit=1) + [""])[:2]
            here = f"{path}:{number}"
            if name.lower() in ("include", "config"):  # v2 and sr3 read "config" so too
                self.include(value, path, here)
            else:
                self.set(name, value, here, warn=path.name != "default.conf")
        self.stack.pop()

    def include(self, value: str, parent: Path, where: str) -> None:
        if not value.strip():
            raise ConfigError("include needs a file name", where)
        try:
            name = self.substitute(value.strip())
        except ConfigError as e:
            raise ConfigError(e.reason, where) from None
        target = Path(name).expanduser()
        if not target.is_absolute():
            target = parent.parent / target
        self.read_file(target, where)

    def finish(self, config_path: Path | None) -> Options:
        if self.values["debug"]:
            self.values["log_level"] = "debug"
        masks = []
        for pattern, accept, scope, inherited, where in self.pending:
            placed = {**scope, **{n: v for n, v in self.cli_scope.items() if n in inherited}}
            masks.append(Mask(pattern, accept, where=where, **placed))
        if self.extras and not self.hook_lines:
            name, _, where = self.extras[0]
            raise ConfigError(f"unknown option {name!r}", where)
        return Options(
            self.values,
            self.set_by,
            masks,
            self.program,
            self.config,
            config_path,
            self.hook_lines,
            self.extras,
        )


def find_config(program: str, config: str, paths: Paths) -> Path:
    """Return the file for ``config``: an existing path as is, else the config directory's.

    Raises:
        ConfigError: no such file.
    """
    for candidate in (Path(config).expanduser(), Path(config + ".conf").expanduser()):
        if candidate.is_file():
            return candidate
    standard = paths.config_file(program, config)
    if standard.is_file():
        return standard
    raise ConfigError(f"config {config!r} not found (looked for {standard})")


def load(
    program: str,
    config: str | None,
    overrides: Sequence[Tuple[str, str]] = (),
    paths: Paths | None = None,
    defaults: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    now: _dt.datetime | None = None,
) -> Options:
    """Build the options of ``program`` (``dd_subscribe`` or ``subscribe``) for ``config``.

    ``overrides`` are (option, value) pairs from the command line, spelled as options or
    synonyms (``("-b", "amqp://...")``); ``defaults`` are the program's own typed defaults.
    ``environ`` and ``now`` (UTC) replace ``os.environ`` and the clock, for tests.

    Raises:
        ConfigError: unknown option, bad value, unknown variable, missing config or
            include file, include loop (``where`` says ``file:line``).
    """
    env = os.environ if environ is None else environ
    short = short_name(program)
    paths = paths or Paths.from_env(env)
    when = now or _dt.datetime.now(_dt.timezone.utc)
    loader = _Loader(short, config_stem(config) if config else None, env, when)
    loader.apply_defaults(defaults or {})
    if paths.default_conf().is_file():
        loader.read_file(paths.default_conf())
    config_path = find_config(short, config, paths) if config else None
    if config_path is not None:
        loader.read_file(config_path)
    for name, value in overrides:
        loader.set(name, value, COMMAND_LINE)
    return loader.finish(config_path)
