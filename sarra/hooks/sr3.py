"""The sr3 adapter: runs a Sarracenia sr3 flow callback class (``flowcb``).

An sr3 callback is a class built with the options (``cls(options)``, kept as ``self.o``)
whose methods sr3 calls with a *worklist*: ``worklist.incoming`` holds the messages (dicts,
``sarra.hooks.sr3msg``), and the callback moves the ones it decides on to
``worklist.rejected``, ``worklist.failed`` (retried later) or ``worklist.ok``, never
removing any.  Here the flow handles one message at a time, so each call gets a worklist
of one message; where the callback put it decides its outcome.

Entry points and when they run here: ``after_accept`` (and ``after_gather``) after the
accept/reject masks, before the download; ``after_work`` once a file is in place (in
roles that download; else before the post, with ``after_post``); ``on_start``,
``on_stop``, ``on_housekeeping``.  ``gather``, ``poll``, ``download``, ``send`` and
``post`` replace what sarra does itself: a class defining one is refused at start-up.
Options: ``self.o.add_option(name, kind, default)`` declares a callback's own option
(kinds ``count duration flag float list set size str octal``); other sr3 names read the
option table (``self.o.logLevel`` is ``log_level``), and ``self.o.component`` and
``self.o.config`` name the program and the config.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from sarra.config import converters as table
from sarra.core.errors import ConfigError, PathError
from sarra.hooks.base import Hook, Host
from sarra.hooks.placing import defer, location, move_to, received_from
from sarra.hooks.settings import UNSET, option_value
from sarra.hooks.sr3msg import Message, build, notice_after

if TYPE_CHECKING:  # pragma: no cover
    from sarra.core.delivery import Delivery

log = logging.getLogger(__name__)

REFUSED = ("gather", "poll", "download", "send", "post", "do_poll")
#: roles whose work step puts files in place (``after_work`` runs then)
DOWNLOADERS = ("subscribe", "sara")


def _words(value: str) -> List[str]:
    return [w for w in value.replace("|", ",").replace(" ", ",").split(",") if w]


def _set(values: List[str], default: Any) -> set:
    """sr3 ``set`` options: ``a,b``; ``+c`` adds to, ``-c`` takes from, what came before."""
    out = set(default or ())
    for value in values:
        words = _words(value)
        if words and words[0][:1] in "+-":
            for w in words:
                (out.discard if w[0] == "-" else out.add)(w.lstrip("+-"))
        else:
            out = set(words)
    return out


_KINDS: Dict[str, Callable[[str], Any]] = {
    "count": table.integer,
    "duration": table.duration,
    "flag": table.boolean,
    "float": float,
    "size": table.size,
    "str": table.string,
    "octal": table.octal,
}


class SR3Options:
    """``self.o`` of sr3 callbacks: the options under their sr3 names, plus
    ``add_option``.  Attributes a callback sets stay here."""

    def __init__(self, host: Host) -> None:
        o = host.options
        self.__dict__.update(
            _host=host,
            component=host.program,
            config=o.config or "",
            no=host.instance,
            currentDir=o.directory,
        )

    def add_option(
        self, option: str, kind: str = "list", default_value: Any = None, all_values: Any = None
    ) -> None:
        """Declare a callback's option and set it from the config (or its default).

        Raises:
            ConfigError: a value that does not convert, or a set value not in ``all_values``.
        """
        host: Host = self._host
        raw = host.settings.declare(option)
        where = host.settings.where(option)
        table_value = option_value(host.options, option)
        if raw is None and table_value is not UNSET:
            value = table_value
        elif kind in ("list", list):
            value = list(raw) if raw is not None else default_value
        elif kind in ("set", set):
            value = _set(raw or [], default_value)
            unknown = sorted(value - set(all_values)) if all_values else []
            if unknown:
                raise ConfigError(
                    f"option {option!r}: {unknown[0]!r} is not one of its values", where
                )
        else:
            convert = _KINDS.get(kind if isinstance(kind, str) else kind.__name__)
            if convert is None:
                raise ConfigError(f"option {option!r}: unknown kind {kind!r}")
            text = raw[-1] if raw else default_value
            try:
                value = convert(text) if isinstance(text, str) else text
            except ValueError as e:
                raise ConfigError(f"option {option!r}: {e}", where) from None
        setattr(self, option, value)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        host: Host = self.__dict__["_host"]
        raw = host.settings.raw(name)
        if raw is not None:  # undeclared: as sr3 leaves it, text (a list when repeated)
            return raw[-1] if len(raw) == 1 else list(raw)
        value = option_value(host.options, name)
        if value is not UNSET:
            return value
        raise AttributeError(f"no option {name!r}")


class Worklist:
    """The lists an sr3 callback moves messages between."""

    def __init__(self, incoming: List[Message] = (), ok: List[Message] = ()) -> None:  # type: ignore[assignment]
        self.incoming: List[Message] = list(incoming)
        self.ok: List[Message] = list(ok)
        self.rejected: List[Message] = []
        self.failed: List[Message] = []
        self.directories_ok: List[str] = []

    def where(self, m: Message) -> str:
        """Which list holds ``m`` (``"gone"``: the callback removed it)."""
        for name in ("rejected", "failed", "ok", "incoming"):
            if any(x is m for x in getattr(self, name)):
                return name
        return "gone"


class SR3Hook(Hook):
    """One sr3 callback instance, its entry points mapped to our events."""

    def __init__(self, name: str, callback: Any, host: Host, lock: threading.RLock) -> None:
        super().__init__(host.options)
        self.name = name
        self.cb = callback
        self.host = host
        self.lock = lock
        self.accept = _entries(callback, "after_gather", "after_accept")
        self.work = _entries(callback, "after_work")
        self.post = _entries(callback, "after_post")
        if host.program not in DOWNLOADERS:
            self.post, self.work = self.work + self.post, []
        self.events = {"on_message": self.accept, "on_file": self.work, "on_post": self.post}
        for e in ("on_start", "on_stop", "on_housekeeping"):
            self.events[e] = _entries(callback, e)

    def handles(self, event: str) -> bool:
        return bool(self.events.get(event))

    def _message(self, d: Delivery, notice: Any) -> Message:
        new_dir, new_file = location(d, self.host.locate)
        exchange, retry = received_from(d), d.retry is not None
        return build(notice, new_dir, new_file, exchange=exchange, retry=retry, report=d.report)

    def _plain(self, event: str) -> None:
        with self.lock:
            for fn in self.events[event]:
                fn()

    def on_start(self) -> None:
        self._plain("on_start")

    def on_stop(self) -> None:
        self._plain("on_stop")

    def on_housekeeping(self) -> None:
        self._plain("on_housekeeping")

    def on_message(self, d: Delivery) -> Optional[bool]:
        m = self._message(d, d.notice)
        wl = Worklist(incoming=[m])
        with self.lock:
            for fn in self.accept:
                fn(wl)
        return self._settle(d, m, wl.where(m))

    def _settle(self, d: Delivery, m: Message, where: str) -> bool:
        if where == "failed":
            defer(d, self.label)
            return False
        if where in ("rejected", "gone"):
            report = m.get("report") if isinstance(m.get("report"), dict) else None
            code = report.get("code") if report else None
            text = str(report.get("message", "")) if report else ""
            d.reject(
                f"rejected by plugin {self.label}",
                code=code if isinstance(code, int) else None,
                text=text,
            )
            return False
        d.notice = notice_after(m, d.notice)
        self._move(d, m)
        if where == "ok":  # done by the callback: nothing to download, posted as it is
            d.ok(201, "Published")
            d.post_notice = d.notice
            return False
        return True

    def _move(self, d: Delivery, m: Message) -> None:
        new_dir, new_file = m.get("new_dir"), m.get("new_file")
        if new_file is None or not self.host.locate:
            return
        if (str(new_dir), str(new_file)) == location(d, None):
            return
        try:
            move_to(d, str(new_dir), str(new_file))
        except PathError as e:
            raise PathError(f"{self.label}: {e}") from None

    def on_file(self, d: Delivery) -> None:
        m = self._message(d, d.notice)
        wl = Worklist(ok=[m])
        with self.lock:
            for fn in self.work:
                fn(wl)
        where = wl.where(m)
        if where == "failed":
            defer(d, self.label)
        elif where in ("rejected", "gone"):
            d.reject(f"not posted: {where} by plugin {self.label}")
        else:
            d.notice = notice_after(m, d.notice)

    def on_post(self, d: Delivery) -> None:
        notice = d.post_notice if d.post_notice is not None else d.notice
        m = self._message(d, notice)
        wl = Worklist(ok=[m])
        with self.lock:
            for fn in self.post:
                fn(wl)
        d.post_notice = notice_after(m, notice) if wl.where(m) == "ok" else None


def _entries(callback: Any, *names: str) -> List[Callable[..., Any]]:
    """The bound methods of ``callback`` among ``names`` (the ones it defines)."""
    return [getattr(callback, n) for n in names if callable(getattr(callback, n, None))]


def adapt(name: str, cls: type, host: Host, options: SR3Options, lock: threading.RLock) -> SR3Hook:
    """Build the callback ``cls`` and wrap it.

    Raises:
        ConfigError: it defines an entry point that replaces sarra's own work, or its
            constructor fails.
    """
    refused = [e for e in REFUSED if callable(getattr(cls, e, None))]
    if refused:
        raise ConfigError(f"{refused[0]} is not supported (sarra does it itself)")
    try:
        callback = cls(options)
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - user code: any failure is a config error
        raise ConfigError(f"cannot be built: {e!r}") from e
    return SR3Hook(name, callback, host, lock)
