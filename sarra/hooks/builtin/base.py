"""What sarra's built-in plugins share: the host, their options, where a file goes."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Tuple

from sarra.core.errors import ConfigError
from sarra.hooks.base import Hook, Host
from sarra.hooks.placing import location

if TYPE_CHECKING:  # pragma: no cover
    from sarra.core.delivery import Delivery


class Builtin(Hook):
    """A plugin written for sarra under the name of a v2 plugin or sr3 callback."""

    def __init__(self, host: Host) -> None:
        super().__init__(host.options)
        self.host = host
        self.log = logging.getLogger(f"sarra.plugins.{type(self).__name__.lower()}")

    def setting(self, name: str, convert: Callable[[str], Any], default: Any) -> Any:
        """This plugin's option ``name`` (declared: the config may set it).

        Raises:
            ConfigError: a bad value (``file:line``).
        """
        return self.host.settings.value(self.host.options, name, convert, default)

    def words(self, name: str, required: bool = False) -> Tuple[str, ...]:
        """Every word of every line of option ``name`` (``msg_by_source alice bob``).

        Raises:
            ConfigError: ``required`` and the config does not set it.
        """
        raw = self.host.settings.declare(name) or ()
        out = tuple(w.strip("'\"") for line in raw for w in line.replace(",", " ").split())
        if required and not out:
            raise ConfigError(f"option {name} is needed by this plugin (e.g. '{name} value')")
        return out

    def where(self, d: Delivery) -> Tuple[str, str]:
        """``(new_dir, new_file)``: where ``d``'s file goes.

        Raises:
            PathError: the placement rules refuse the notice's path.
        """
        return location(d, self.host.locate)
