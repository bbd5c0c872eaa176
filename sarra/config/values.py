"""The resolved options of one program and config: :class:`Options` and its :class:`Mask` lines.

``sarra.config.loader`` builds them (and re-exports every name here); everything else
reads them.  ``Options`` is read-only: a role fills in its own defaults with
:meth:`Options.replace`.
"""

from __future__ import annotations

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
    Tuple,
    TypeVar,
    Union,
)

from sarra.config.options import OPTIONS
from sarra.config.paths import short_name
from sarra.config.typed import OptionValues
from sarra.core.errors import ConfigError
from sarra.core.redaction import redact

#: one config line kept as written: (option name, value, "file:line")
Line = Tuple[str, str, str]
T = TypeVar("T")


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

    def declared_env(self) -> Dict[str, str]:
        """The ``declare env NAME=value`` lines: the environment v2 and sr3 give the
        process (``HTTP_PROXY`` for its transfers, variables for its plugins)."""
        pairs = (text.partition("=") for kind, text in self.declare if kind == "env")
        return {name.strip(): value.strip() for name, _, value in pairs}

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
