"""The hook contract: the ``Hook`` base class, ``HookSet`` (the hooks of one flow, in
configuration order) and ``Host`` (what the flow lends to plugins).

A ``Hook`` overrides any of the ``on_*`` methods of :data:`EVENTS`.  ``HookSet.emit``
calls, in configuration order, the hooks that handle an event, and isolates failures: a
raising hook becomes a ``HookError`` naming the hook, which the flow's error boundary
(``sarra.flow.boundary``) turns into a failure of that message only; the daemon goes on.
Errors sarra itself raises while preparing a plugin's view of a message (a ``PathError``
for a path the placement rules refuse) go through unwrapped, so the boundary maps them
as it would in the work step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

from sarra.core.errors import HookError, SarraError

if TYPE_CHECKING:  # pragma: no cover
    from sarra.config.loader import Options
    from sarra.core.delivery import Delivery
    from sarra.hooks.settings import Settings

log = logging.getLogger(__name__)

EVENTS = ("on_start", "on_message", "on_part", "on_file", "on_post", "on_housekeeping", "on_stop")


class Hook:
    """Base class of plugins.  Override what you need; defaults do nothing.

    ``on_message`` may return False to reject the message (it is acknowledged and
    reported as rejected), or set the delivery's outcome itself (``delivery.fail(...)``
    to have it retried later) and return False.  It may also change
    ``delivery.notice`` (a frozen Notice: assign a new one made with
    ``notice.replace(...)``).
    """

    name = ""

    def __init__(self, options: Any = None) -> None:
        self.options = options

    def handles(self, event: str) -> bool:
        """True when this hook does something on ``event`` (its method is overridden)."""
        return getattr(type(self), event, None) is not getattr(Hook, event, None)

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
        """Called before the notice of ``delivery`` is published downstream; may set
        ``delivery.post_notice`` to None to post nothing."""

    def on_housekeeping(self) -> None:
        """Called on the housekeeping timer."""

    def on_stop(self) -> None:
        """Called once when the flow stops."""

    def __repr__(self) -> str:
        return f"<hook {self.label}>"

    @property
    def label(self) -> str:
        """How log lines name this hook: its ``name``, else its class."""
        return self.name or type(self).__name__


@dataclass
class Host:
    """What the flow lends to the plugins of one config.

    ``options``: the config's ``Options``; ``settings``: the plugin options (config
    lines no option row knows, declared by plugins); ``locate(delivery)``: sets where a
    delivery's file goes (``delivery.place``), for roles that download, else None;
    ``instance``: this process's instance number.
    """

    options: Options
    settings: Settings
    locate: Optional[Callable[[Delivery], None]] = None
    instance: int = 1

    @property
    def program(self) -> str:
        """The program's short name (``subscribe``)."""
        return self.options.program


class HookSet:
    """The hooks of one flow, in configuration order; ``host`` is what they share
    (``sarra.hooks.loading.load``), None for hooks built by hand."""

    def __init__(self, hooks: Sequence[Hook] = (), host: Optional[Host] = None) -> None:
        self.hooks: List[Hook] = list(hooks)
        self.host = host
        self._by_event: Dict[str, Tuple[Hook, ...]] = {
            event: tuple(h for h in self.hooks if h.handles(event)) for event in EVENTS
        }

    def place_with(self, locate: Callable[[Delivery], None]) -> None:
        """Tell the plugins where files go (a role that downloads, before its flow runs):
        they read and change ``new_dir``/``new_file`` through it."""
        if self.host is not None:
            self.host.locate = locate

    def has(self, event: str) -> bool:
        """True when some hook handles ``event``."""
        return bool(self._by_event.get(event))

    def emit(self, event: str, *args: Any) -> List[Any]:
        """Call ``event`` on every hook that handles it; return their results.

        Raises:
            HookError: the first hook that raised, named, with the cause chained.
            SarraError: a sarra error met while preparing a plugin's view (a refused path).
        """
        return [_call(hook, event, args) for hook in self._by_event.get(event, ())]

    def accepts(self, delivery: Delivery) -> bool:
        """Run ``on_message`` until a hook returns False (that hook rejects the message,
        unless it set another outcome itself).

        Raises:
            HookError, SarraError: as :meth:`emit`.
        """
        for hook in self._by_event["on_message"]:
            if _call(hook, "on_message", (delivery,)) is False:
                if delivery.outcome is None:
                    delivery.reject(f"rejected by plugin {hook.label}")
                return False
        return True

    def safe_emit(self, event: str, *args: Any) -> None:
        """Emit an event whose failure must not stop anything (start/stop/housekeeping)."""
        try:
            self.emit(event, *args)
        except SarraError as e:
            log.error("%s", e)


def _call(hook: Hook, event: str, args: Tuple[Any, ...]) -> Any:
    try:
        return getattr(hook, event)(*args)
    except SarraError:
        raise
    except Exception as e:  # noqa: BLE001 - user code: any failure is isolated
        raise HookError(f"plugin {hook.label} ({event}) failed: {e!r}") from e
