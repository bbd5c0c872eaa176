"""What plugins of both generations import from their own package, provided by sarra.

v2 plugin files ``from sarra.sr_util import nowflt, timestr2flt`` (and use those names
without importing them: v2 ran them among its own module's names); sr3 callbacks
``from sarracenia.flowcb import FlowCB`` and ``import sarracenia`` for the time helpers.
:func:`install_v2` puts a ``sarra.sr_util`` module in ``sys.modules``; :func:`install_sr3`
puts ``sarracenia`` and ``sarracenia.flowcb`` there unless MetPX-sr3 itself is installed
(then its modules serve, and its ``FlowCB`` works over our options object too).  Written
here from the behaviour the two packages document, not copied.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
import types
from typing import Any, Dict, Optional

import sarra
from sarra.core.timestamps import format_time, parse_time
from sarra.hooks.sr3msg import Message, timev2tov3str, v3timeflt2str


def nowflt() -> float:
    """Now, POSIX seconds."""
    return time.time()


def nowstr() -> str:
    """Now as a v02 timestamp (``YYYYMMDDHHMMSS.fff``)."""
    return format_time(time.time())


def timeflt2str(f: float) -> str:
    """POSIX seconds as a v02 timestamp."""
    return format_time(f)


def timestr2flt(s: str) -> float:
    """A v02 or v03 timestamp (``...HHMMSS.f`` or ``...THHMMSS.f``) as POSIX seconds.

    Raises:
        ValueError: not a timestamp (a hostile header): a plain ValueError, so that the
            plugin that called this is the one named in the log.
    """
    try:
        return parse_time(s)
    except ValueError as e:
        raise ValueError(str(e)) from None


def natural_size(num: float) -> str:
    """Bytes for a person: ``1.5 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(num) < 1024 or unit == "TiB":
            return f"{num:.0f} {unit}" if unit == "B" else f"{num:.1f} {unit}"
        num /= 1024
    return f"{num} B"  # pragma: no cover - the loop always returns


def natural_time(seconds: float) -> str:
    """Seconds for a person: ``2.5 s``."""
    return f"{seconds:.3g} s"


def duration_to_seconds(value: Any, default: Optional[float] = None) -> float:
    """sr3's ``durationToSeconds``: ``30``, ``5m``, ``1h``... as seconds."""
    from sarra.config.converters import duration

    if isinstance(value, (int, float)):
        return float(value)
    if value is None:
        return float(default or 0)
    return duration(str(value))


#: names v2 plugin code found without importing them (``sr_config``'s own imports)
V2_NAMES: Dict[str, Any] = {
    "nowflt": nowflt,
    "nowstr": nowstr,
    "timeflt2str": timeflt2str,
    "timestr2flt": timestr2flt,
    "v3timeflt2str": v3timeflt2str,
    "timev2tov3str": timev2tov3str,
}


def v2_namespace(name: str, path: str, parent: Any) -> Dict[str, Any]:
    """The globals a v2 plugin file runs in: ``self`` is the plugin's ``parent``."""
    import os
    import re

    return {
        "__name__": f"sarra_v2_plugin_{name}",
        "__file__": path,
        "__builtins__": __builtins__,
        "self": parent,
        "logger": parent.logger,
        "sarra": sarra,
        "os": os,
        "re": re,
        "sys": sys,
        "time": time,
        "logging": logging,
        **V2_NAMES,
    }


def install_v2() -> None:
    """Make ``from sarra.sr_util import ...`` work in v2 plugin files."""
    if "sarra.sr_util" in sys.modules:
        return
    module = types.ModuleType("sarra.sr_util", "v2 helpers that plugins import (sarra.hooks)")
    module.__dict__.update(V2_NAMES)
    sys.modules["sarra.sr_util"] = module


class FlowCB:
    """Base class of sr3 flow callbacks: keeps the options as ``self.o``."""

    def __init__(self, options: Any, class_logger: Any = None) -> None:
        self.o = options
        self.stop_requested = False

    def please_stop(self) -> None:
        self.stop_requested = True


def install_sr3() -> None:
    """Make ``import sarracenia`` and ``from sarracenia.flowcb import FlowCB`` work in sr3
    callbacks, unless MetPX-sr3 is installed."""
    if "sarracenia" in sys.modules or importlib.util.find_spec("sarracenia") is not None:
        return
    top = types.ModuleType("sarracenia", "sr3 names callbacks import (sarra.hooks)")
    top.__path__ = []  # a package: ``import sarracenia.flowcb`` looks here
    top.__dict__.update(
        nowflt=nowflt,
        nowstr=lambda: v3timeflt2str(time.time()),
        timeflt2str=v3timeflt2str,
        timestr2flt=timestr2flt,
        timev2tov3str=timev2tov3str,
        naturalSize=natural_size,
        naturalTime=natural_time,
        durationToSeconds=duration_to_seconds,
        Message=Message,
        __version__=sarra.__version__,
    )
    flowcb = types.ModuleType("sarracenia.flowcb", "sr3 FlowCB base class (sarra.hooks)")
    flowcb.__dict__.update(FlowCB=FlowCB, logger=logging.getLogger("sarracenia.flowcb"))
    top.flowcb = flowcb  # type: ignore[attr-defined]
    sys.modules["sarracenia"] = top
    sys.modules["sarracenia.flowcb"] = flowcb
