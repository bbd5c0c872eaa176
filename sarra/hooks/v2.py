"""The v2 adapter: runs a Sarracenia v2 plugin file as v2 did.

A v2 plugin is a Python file run with ``self`` bound to the component's configuration
object; it ends by naming its entry point: ``self.on_message = obj.on_message`` (one
entry point, for the option that named the file: ``on_message file``), or
``self.plugin = 'ClassName'`` (``plugin file``: every entry point the class defines).
Each entry point is then called as ``fn(parent)``: ``parent`` is that same object, with
the message in hand as ``parent.msg`` (``sarra.hooks.v2msg``), a ``parent.logger``, and
every option as an attribute (``parent.post_base_dir``; a plugin's own options as lists
of text, ``parent.msg_delay == ['30']``, as v2 kept them).  ``on_message`` returning a
false value rejects the message; ``parent.consumer.msg_to_retry()`` before returning
False asks for it to be retried later (``msg_delay``).

Entry points and when they run here: ``on_message`` after the accept/reject masks, before
the download; ``on_part``/``on_file`` once a block or file is in place; ``on_post``
before the post (False: not posted); ``on_start``/``on_stop``; ``on_heartbeat`` (and
``on_housekeeping``) at each housekeeping.  ``do_download``, ``do_send``, ``do_poll``...
replace transfers, which sarra does itself: a file defining one is refused at start-up.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from sarra.core.errors import ConfigError, PathError
from sarra.hooks.base import Hook, Host
from sarra.hooks.compat import install_v2, v2_namespace
from sarra.hooks.placing import defer, location, move_to, received_from
from sarra.hooks.settings import UNSET, option_value
from sarra.hooks.v2msg import V2Message

if TYPE_CHECKING:  # pragma: no cover
    from sarra.core.delivery import Delivery

#: v2 entry point -> the event it runs on here
ENTRY_POINTS = {
    "on_message": "on_message",
    "on_file": "on_file",
    "on_part": "on_part",
    "on_post": "on_post",
    "on_start": "on_start",
    "on_stop": "on_stop",
    "on_heartbeat": "on_housekeeping",
    "on_housekeeping": "on_housekeeping",
}
#: v2 entry points that replace what sarra does itself
REFUSED = (
    "do_download",
    "do_get",
    "do_poll",
    "do_put",
    "do_send",
    "do_task",
    "on_data",
    "on_line",
    "on_html_page",
    "on_watch",
    "on_report",
    "destfn_script",
)
#: v2 attribute names that are other options here
RENAMED = {"currentDir": "directory", "post_document_root": "post_base_dir"}


class Consumer:
    """``parent.consumer``: what v2 plugins ask of the queue (``msg_to_retry``)."""

    sleep_min = 0.01
    sleep_max = 1.0

    def __init__(self) -> None:
        self.sleep_now = self.sleep_min
        self.retry_asked = False

    def msg_to_retry(self) -> None:
        """Have the message in hand retried later rather than rejected."""
        self.retry_asked = True


class Parent:
    """``parent`` (and ``self`` in the plugin file) of the v2 plugins of one config.

    Attributes a plugin sets stay here; the others are looked up as options: the plugin
    options (config lines no table row knows) as lists of text, then the option table
    (v2 spellings too).  An option not set anywhere is no attribute, so that
    ``hasattr(parent, 'msg_delay')`` says whether the config set it, as in v2.
    """

    msg: Optional[V2Message]
    consumer: Consumer
    lock: threading.RLock

    def __init__(self, host: Host) -> None:
        o = host.options
        self.__dict__.update(
            _host=host,
            lock=threading.RLock(),
            logger=logging.getLogger("sarra.plugins"),
            msg=None,
            consumer=Consumer(),
            program_name=f"dd_{host.program}",
            config_name=o.config or "",
            no=host.instance,
            instance=host.instance,
        )

    def declare_option(self, option: str) -> None:
        """v2 plugins declare the options they read (``parent.declare_option('x')``)."""
        self._host.settings.declare(option)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        host: Host = self.__dict__["_host"]
        raw = host.settings.raw(name)
        if raw is not None:
            self.__dict__[name] = raw  # plugins replace it (``int(parent.x[0])``)
            return raw
        value = option_value(host.options, RENAMED.get(name, name))
        if value is not UNSET:
            return value
        raise AttributeError(f"no option {name!r}")


class V2Hook(Hook):
    """One entry point of one v2 plugin."""

    def __init__(self, name: str, entry: str, fn: Callable[[Any], Any], parent: Parent) -> None:
        super().__init__(parent._host.options)
        self.name = f"{entry} {name}"
        self.event = ENTRY_POINTS[entry]
        self.fn = fn
        self.parent = parent

    def handles(self, event: str) -> bool:
        return event == self.event

    def _run(self, msg: Optional[V2Message]) -> Any:
        with self.parent.lock:
            self.parent.msg = msg
            self.parent.consumer.retry_asked = False
            return self.fn(self.parent)

    def _msg(self, d: Delivery, notice: Any) -> V2Message:
        new_dir, new_file = location(d, self.parent._host.locate)
        retry = d.retry is not None
        return V2Message(notice, new_dir, new_file, exchange=received_from(d), is_retry=retry)

    def on_start(self) -> None:
        self._run(None)

    def on_stop(self) -> None:
        self._run(None)

    def on_housekeeping(self) -> None:
        self._run(None)

    def on_message(self, d: Delivery) -> Optional[bool]:
        msg = self._msg(d, d.notice)
        accepted = self._run(msg)
        if self.parent.consumer.retry_asked and not accepted:
            defer(d, self.label)
            return False
        if not accepted:
            return False
        d.notice = msg.notice_after()
        moved = msg.moved()
        if moved is not None:
            try:
                move_to(d, *moved)
            except PathError as e:
                raise PathError(f"{self.label}: {e}") from None
        return True

    def on_file(self, d: Delivery) -> None:
        msg = self._msg(d, d.notice)
        self._run(msg)
        d.notice = msg.notice_after()

    def on_part(self, d: Delivery) -> None:
        self.on_file(d)

    def on_post(self, d: Delivery) -> None:
        notice = d.post_notice if d.post_notice is not None else d.notice
        msg = self._msg(d, notice)
        if self._run(msg):
            d.post_notice = msg.notice_after()
        else:
            d.post_notice = None


def _entry_points(option: str, parent: Parent, ns: Dict[str, Any], name: str) -> Dict[str, Any]:
    """The callables the file named: ``self.<option>`` or the ``self.plugin`` class's."""
    found: Dict[str, Any] = {}
    cls_name = parent.__dict__.get("plugin")
    if isinstance(cls_name, str) and cls_name:
        cls = ns.get(cls_name)
        if not isinstance(cls, type):
            raise ConfigError(f"self.plugin names no class {cls_name!r}")
        instance = cls(parent)
        for entry in (*ENTRY_POINTS, *REFUSED):
            if entry in vars(cls):
                found[entry] = getattr(instance, entry)
    for entry in (*ENTRY_POINTS, *REFUSED):
        fn = parent.__dict__.get(entry)
        if callable(fn) and (entry == option or option == "plugin"):
            found.setdefault(entry, fn)
    return found


def load(path: Path, option: str, name: str, parent: Parent) -> List[Hook]:
    """Run the v2 plugin file ``path`` named by ``option`` (``on_message``, ``plugin``...);
    return one hook per entry point it defines.

    Raises:
        ConfigError: the file fails to run, names no entry point, or defines one that
            replaces sarra's own work (``do_download``...).
    """
    install_v2()
    entry_option = "on_heartbeat" if option == "on_housekeeping" else option
    for attr in ("plugin", *ENTRY_POINTS, *REFUSED):
        parent.__dict__[attr] = None  # what this file sets, and nothing a previous one did
    ns = v2_namespace(name, str(path), parent)
    try:
        code = compile(path.read_bytes(), str(path), "exec")
        exec(code, ns)  # noqa: S102 - a plugin is configuration: trusted code, run as v2 did
        found = _entry_points(entry_option, parent, ns, name)
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - user code: any failure is a config error
        raise ConfigError(f"{path} cannot be loaded: {e!r}") from e
    refused = sorted(set(found) & set(REFUSED))
    if refused:
        raise ConfigError(f"{refused[0]} is not supported (sarra does its transfers itself)")
    if not found:
        raise ConfigError(f"{path} sets neither self.{option} nor self.plugin")
    return [V2Hook(name, entry, fn, parent) for entry, fn in found.items()]
