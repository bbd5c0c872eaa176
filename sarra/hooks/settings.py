"""Plugin options: config lines no option row knows, claimed by the plugins that declare
them.

Both generations let a plugin bring its own options: ``msg_delay 30`` is read by the
``msg_delay`` plugin, which declares it (v2 ``parent.declare_option('msg_delay')``, sr3
``self.o.add_option('msgDelay', 'duration', 30)``).  The loader keeps such lines
(``Options.extras``); this store hands them out and, once every plugin is loaded, says
which no plugin declared: an error at start-up (``file:line``), except that a config
running a v2 plugin file only gets a warning line for each, as v2 gave: v2 plugins read
options they never declared.

Names match whatever the generation's spelling: ``msg_delay``, ``msgDelay`` and
``msg-delay`` are one option (case and ``_``/``-`` ignored).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from sarra.config.options import canonical
from sarra.core.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from sarra.config.loader import Options

log = logging.getLogger(__name__)


def key_of(name: str) -> str:
    """The spelling-free key of an option name (``msgDelay`` -> ``msgdelay``)."""
    return name.replace("_", "").replace("-", "").lower()


def table_name(name: str) -> Optional[str]:
    """The option-table name for a v2 or sr3 spelling (``logLevel`` -> ``log_level``), or
    None when the table has no such option."""
    found = canonical(name)
    if found is not None:
        return found
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    return canonical(snake)


UNSET = object()


def option_value(options: Optional[Options], name: str) -> Any:
    """The value of the table option ``name`` (v2/sr3 spellings too), else :data:`UNSET`:
    a plugin names options in variables, so they are read by name here."""
    row = table_name(name)
    if row is None or options is None:
        return UNSET
    return options.get(row, UNSET)


class Settings:
    """The plugin options of one config: ``(name, value, where)`` lines, in file order."""

    def __init__(self, lines: Any = ()) -> None:
        self._lines: Dict[str, List[Tuple[str, str, str]]] = {}
        for name, value, where in lines:
            self._lines.setdefault(key_of(name), []).append((name, value, where))
        self._declared: set = set()

    def raw(self, name: str) -> Optional[List[str]]:
        """The values written for ``name`` in file order, or None when it is not set."""
        lines = self._lines.get(key_of(name))
        return [value for _, value, _ in lines] if lines else None

    def where(self, name: str) -> str:
        """``file:line`` of the last line setting ``name``, or ``""``."""
        lines = self._lines.get(key_of(name))
        return lines[-1][2] if lines else ""

    def declare(self, name: str) -> Optional[List[str]]:
        """Mark ``name`` as a plugin's option; return its values as :meth:`raw` does."""
        self._declared.add(key_of(name))
        return self.raw(name)

    def value(self, options: Any, name: str, convert: Callable[[str], Any], default: Any) -> Any:
        """A plugin option's value: its last line converted, else the option table's
        value when it has a row of that name, else ``default``.

        Raises:
            ConfigError: the value does not convert (``file:line``).
        """
        raw = self.declare(name)
        if raw is None:
            found = option_value(options, name)
            return default if found is UNSET else found
        try:
            return convert(raw[-1])
        except ValueError as e:
            raise ConfigError(f"option {name!r}: {e}", self.where(name)) from None

    def undeclared(self) -> List[Tuple[str, str]]:
        """``(name, where)`` of each option no plugin declared, in file order."""
        out = []
        for key, lines in self._lines.items():
            if key not in self._declared:
                name, _, where = lines[0]
                out.append((name, where))
        return out

    def check(self, lenient: bool) -> None:
        """Refuse the options no plugin declared (warn only when ``lenient``).

        Raises:
            ConfigError: the first undeclared option, with its ``file:line``.
        """
        for name, where in self.undeclared():
            if not lenient:
                raise ConfigError(f"unknown option {name!r} (no plugin declares it)", where)
            log.warning("%s: option %r is not declared by any plugin", where, name)
