"""Reads configuration files into one read-only :class:`Options` object.

Layering, lowest first: built-in defaults (the option table) < the program's own
``defaults`` < ``<config_dir>/default.conf`` < the config file < command-line overrides.

File syntax (Sarracenia v2 compatible): one ``option value`` per line; lines whose first
non-blank character is ``#`` are comments (a ``#`` later in a line is data: ``subtopic #``);
``include <file>`` reads another file (relative to the including file); a boolean written
without a value means True; a repeatable option written with the value ``None`` clears
what earlier lines added.  ``${NAME}`` is replaced by a built-in variable (``HOSTNAME``,
``CONFIG``, ``PROGRAM``, ``BROKER_USER``, ``YYYYMMDD``, ``YYYY``, ``MM``, ``DD``, ``HH``,
``JJJ``) or an environment variable.  In ``directory`` values the per-message variables
(:data:`MESSAGE_VARIABLES`) are left as written; roles expand them with :func:`expand`.

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
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    List,
    Mapping,
    Optional,
    Pattern,
    Sequence,
    Set,
    Tuple,
    TypeVar,
    Union,
)
from urllib.parse import unquote

from sarra.config.credentials import broker_user
from sarra.config.options import HOOK_OPTIONS, OPTIONS, canonical
from sarra.config.paths import Paths, config_stem, short_name
from sarra.config.typed import OptionValues
from sarra.core.errors import ConfigError
from sarra.core.redaction import redact

logger = logging.getLogger(__name__)

#: Variables expanded per message (left unexpanded in ``directory`` at load time).
MESSAGE_VARIABLES = frozenset(
    {"SOURCE", "YYYYMMDD", "YYYY", "MM", "DD", "HH", "JJJ", "BD", "PBD", "DR", "PDR"}
)
SCOPE = ("directory", "mirror", "strip", "flatten")
#: one config line kept as written: (option name, value, "file:line")
Line = Tuple[str, str, str]
COMMAND_LINE = "command line"
T = TypeVar("T")
_VARIABLE = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True)
class Mask:
    """One accept/reject line with the placement options in force at that line."""

    regex: Pattern[str]
    accept: bool
    directory: str
    mirror: bool
    strip: Union[int, Pattern[str]]
    flatten: str
    where: str

    def matches(self, text: str) -> bool:
        """True when the regex matches at the start of ``text`` (v2 semantics)."""
        return self.regex.match(text) is not None


def select(masks: Sequence[Mask], text: str) -> Mask | None:
    """Return the first mask matching ``text``, or None (then ``accept_unmatch`` decides)."""
    for mask in masks:
        if mask.matches(text):
            return mask
    return None


def expand(template: str, values: Mapping[str, str]) -> str:
    """Replace every ``${NAME}`` in ``template`` by ``values[NAME]``.

    Raises:
        ConfigError: a variable is not in ``values``, or a ``${`` is never closed.
    """

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ConfigError(f"unknown variable ${{{name}}} in {template!r}")
        return str(values[name])

    result = _VARIABLE.sub(one, template)
    if "${" in _VARIABLE.sub("", template):
        raise ConfigError(f"unterminated variable in {template!r}")
    return result


def _redact(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class Options(OptionValues):
    """The resolved options of one program and config: read-only, passed explicitly.

    ``opts.broker`` reads an option: every option of the table is there (its default
    unless set), typed by :class:`~sarra.config.typed.OptionValues`, so a misspelt name is
    a mypy error and no caller repeats a default.  ``masks``, ``program`` (short name),
    ``config`` (name, or None) and ``config_path`` (Path, or None) describe where it came
    from.  ``hook_lines``: the plugin lines (``on_message``, ``callback``...) in file
    order; ``extras``: the lines of options no row knows, for the plugins that declare
    them.
    """

    __slots__ = (
        "_values",
        "_set_by",
        "masks",
        "program",
        "config",
        "config_path",
        "hook_lines",
        "extras",
    )
    _values: Mapping[str, Any]
    _set_by: Mapping[str, str]
    masks: Tuple[Mask, ...]
    program: str
    config: str | None
    config_path: Path | None
    hook_lines: Tuple[Line, ...]
    extras: Tuple[Line, ...]

    def __init__(
        self,
        values: Mapping[str, Any],
        set_by: Mapping[str, str],
        masks: Sequence[Mask] = (),
        program: str = "",
        config: str | None = None,
        config_path: Path | None = None,
        hook_lines: Sequence[Line] = (),
        extras: Sequence[Line] = (),
    ) -> None:
        init = object.__setattr__
        init(self, "_values", MappingProxyType(dict(values)))
        init(self, "_set_by", MappingProxyType(dict(set_by)))
        init(self, "masks", tuple(masks))
        init(self, "program", program)
        init(self, "config", config)
        init(self, "config_path", config_path)
        init(self, "hook_lines", tuple(hook_lines))
        init(self, "extras", tuple(extras))

    def __reduce__(self) -> Tuple[Any, ...]:
        # Slots plus a refusing __setattr__ defeat the default copy/pickle protocol.
        args = (dict(self._values), dict(self._set_by), self.masks, self.program, self.config)
        return (Options, args + (self.config_path, self.hook_lines, self.extras))

    if not TYPE_CHECKING:  # mypy reads the declared options of OptionValues instead

        def __getattr__(self, name: str) -> Any:
            if name.startswith("_"):
                raise AttributeError(name)
            try:
                return self._values[name]
            except KeyError:
                raise AttributeError(f"no option {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Options are read-only (cannot set {name!r}); use replace()")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Options are read-only (cannot delete {name!r})")

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={_redact(v)!r}" for k, v in sorted(self._set_by_values()))
        return f"Options(program={self.program!r}, config={self.config!r}, {shown})"

    def _set_by_values(self) -> List[Tuple[str, Any]]:
        return [(name, self._values[name]) for name in self._set_by]

    def get(self, name: str, default: Any = None) -> Any:
        """The value of option ``name``, or ``default`` when there is no such option.

        For a name held in a variable (plugins); code that knows the name reads the typed
        attribute (``o.timeout``), which is always there.
        """
        return self._values.get(name, default)

    def is_set(self, name: str) -> bool:
        """True when default.conf, the config file or the command line set ``name``."""
        return name in self._set_by

    def where(self, name: str) -> str:
        """``"file:line"`` or ``"command line"`` where ``name`` was last set, else ``""``."""
        return self._set_by.get(name, "")

    def as_dict(self) -> Dict[str, Any]:
        """A copy of all option values."""
        return dict(self._values)

    def replace(self, **changes: Any) -> Options:
        """Return a copy with ``changes`` (typed values; ``masks=`` too) applied.

        The changed options keep their ``is_set`` status: this is how a role fills in its
        own defaults after looking at what the user set.

        Raises:
            ConfigError: a name is not an option.
        """
        masks = changes.pop("masks", self.masks)
        unknown = sorted(set(changes) - set(OPTIONS))
        if unknown:
            raise ConfigError(f"unknown option {unknown[0]!r}")
        values = {**self._values, **changes}
        return Options(
            values,
            self._set_by,
            masks,
            self.program,
            self.config,
            self.config_path,
            self.hook_lines,
            self.extras,
        )


def required(value: Optional[T], name: str) -> T:
    """``value`` (an option read as ``o.<name>``), refusing None.

    For an option whose table default is None but which a role's ``DEFAULTS`` always set
    (subscribe's ``exchange``, sara's ``post_exchange``): mypy then knows it is there, and
    a role that lost its default fails with a clear message, not deep in a library.

    Raises:
        ConfigError: ``value`` is None.
    """
    if value is None:
        raise ConfigError(f"option {name!r} is required")
    return value


def table_defaults(program: str = "", config: str | None = None) -> Options:
    """Every option at its table default, nothing read from any file.

    ``load`` starts from the same values; with :meth:`Options.replace`, this builds the
    options of a test or a tool that has no config file (``replace`` refuses a name that
    is not an option, so a fake cannot drift from the table).
    """
    values = {name: opt.default for name, opt in OPTIONS.items()}
    return Options(values, {}, (), short_name(program) if program else "", config)


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
        if name == "BROKER_USER":
            return self.broker_user()
        if name in builtins:
            return builtins[name]()
        return self.environ.get(name)

    def broker_user(self) -> str:
        user = broker_user(self.values["broker"], default="")
        if not user:
            raise ConfigError("${BROKER_USER} used before a broker with a user name is set")
        return unquote(user)

    def substitute(self, text: str, keep: frozenset = frozenset()) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in keep:
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
        canon = canonical(name)
        if canon is None:  # perhaps a plugin's: decided in finish()
            self.extras.append((name, self.substitute(value.strip()), where))
            return
        opt = OPTIONS[canon]
        text = value.strip()
        if not text:
            if not opt.is_flag:
                raise ConfigError(f"option {canon!r} needs a value")
            text = "true"
        if warn and self.program not in opt.programs:
            logger.warning("%s: option %r is not used by dd_%s", where, canon, self.program)
        text = self.substitute(text, MESSAGE_VARIABLES if canon == "directory" else frozenset())
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
            raise ConfigError(f"option {canon!r}: {e}") from None
        self.set_by[canon] = where
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
            if name.lower() == "include":
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
