"""What every broker-fed role shares: its queue, its selection, its placement.

* ``queue_name``: ``q_<user>.<program>.<config>[.<8 digits>.<8 digits>]`` (spec 10.2),
  remembered in the state directory so restarts and all instances reuse it.
* ``setup_queue``: declare the queue and bind every ``subtopic`` on each exchange (the
  one queue setup of subscribe, sara, shovel and log).
* ``Selector``: accept/reject masks in configuration order, matched against the URL.
* ``Locator``: the local path of a delivery, from the placement options of its mask.
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
from pathlib import Path
from typing import Any, List, Optional, Sequence, Union

from sarra.config.credentials import broker_user
from sarra.config.loader import Mask, Options
from sarra.core.delivery import Delivery
from sarra.fs.placement import message_values, place_of, relative_target, split_directory

log = logging.getLogger(__name__)


def queue_name(options: Options, program: str, state_dir: Path, *, random_suffix: bool) -> str:
    """The configured queue name, or the remembered one, or a new one (then saved).

    The name is remembered per broker user, so two users running the same one-shot
    command (config ``_cmdline``) never share a queue.
    """
    if options.queue_name:
        return options.queue_name
    user = broker_user(options.broker)
    state_dir.mkdir(parents=True, exist_ok=True)
    saved = state_dir / f"queue_name.{user}"
    with open(state_dir / ".queue_name.lock", "w") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if saved.exists() and saved.read_text().strip():
            return saved.read_text().strip()
        config = options.config or "_cmdline"
        name = f"q_{user}.{program}.{config}"
        if random_suffix:
            rnd = random.SystemRandom()
            name += f".{rnd.randrange(10**8):08d}.{rnd.randrange(10**8):08d}"
        tmp = saved.with_suffix(".tmp")
        tmp.write_text(name + "\n")
        tmp.replace(saved)
        return name


def remembered_queue(options: Options, state_dir: Path) -> Optional[str]:
    """The configured queue, or the one remembered for this broker user, without making one."""
    if options.queue_name:
        return options.queue_name
    try:
        saved = state_dir / f"queue_name.{broker_user(options.broker)}"
        return saved.read_text().strip() or None
    except FileNotFoundError:
        return None


def topic_keys(prefix: str, subtopics: Optional[Sequence[str]]) -> List[str]:
    """``<prefix>.<subtopic>`` for every prefix (``prefix`` may list several, comma
    separated: ``v02.post,v03`` binds one queue to both formats) and every subtopic
    (default ``#``)."""
    prefixes = [p.strip() for p in prefix.split(",") if p.strip()] or [prefix]
    subs = list(subtopics or ()) or ["#"]
    return list(dict.fromkeys(f"{p}.{s}" for p in prefixes for s in subs))


def bindings(options: Options) -> List[str]:
    """The binding keys of ``topic_prefix`` and ``subtopic``."""
    return topic_keys(options.topic_prefix, options.subtopic)


#: how :func:`setup_queue` treats the exchanges it binds on
IF_MISSING = "if_missing"  # a subscriber may read xpublic but not declare it
DECLARE = "declare"  # a switch owns the exchanges it consumes (xs_<source>)
EXISTING = "existing"  # dd_log reads xr_<user>, made by dd_admin: never declared


def setup_queue(
    broker: Any,
    options: Options,
    queue: str,
    exchanges: Union[str, Sequence[str]],
    keys: Optional[Sequence[str]] = None,
    *,
    exchange_mode: str = IF_MISSING,
    consume: bool = True,
) -> None:
    """Declare the queue, bind it on every exchange with every key, start consuming.

    ``keys`` defaults to :func:`bindings`.  The queue takes ``durable``, ``expire`` and
    ``message_ttl`` from ``options``.  ``exchange_mode`` says whether each exchange is
    declared first: with :data:`IF_MISSING` it is only created when it does not exist
    yet (a subscriber may read ``xpublic`` but not declare it, and should not log a
    refusal at every start); :data:`DECLARE` always declares it; :data:`EXISTING`
    never does (a missing exchange then fails the bind).  ``consume=False`` is for
    the ``declare`` action.
    """
    names = [exchanges] if isinstance(exchanges, str) else list(exchanges)
    if exchange_mode == IF_MISSING:
        for name in names:
            if not broker.declare_exchange(name, passive=True):
                broker.declare_exchange(name)
    broker.declare_queue(
        queue,
        durable=options.durable,
        expire_s=options.expire or None,
        message_ttl_s=options.message_ttl or None,
    )
    for name in names:
        if exchange_mode == DECLARE:
            broker.declare_exchange(name)
        for key in bindings(options) if keys is None else keys:
            broker.bind(queue, name, key)
    if consume:
        broker.consume(queue)


class Selector:
    """Accept/reject masks in order; the first that matches decides.

    With no mask matching, ``accept_unmatch`` decides.  The chosen mask (or None) is
    kept on the delivery for placement.
    """

    def __init__(self, options: Options) -> None:
        self.masks = list(options.masks)
        self.accept_unmatch = options.accept_unmatch or not any(m.accept for m in self.masks)

    def __call__(self, d: Delivery) -> bool:
        url = d.notice.url
        for mask in self.masks:
            if mask.regex.match(url):
                d.mask = mask
                return bool(mask.accept)
        return self.accept_unmatch


class Locator:
    """Sets ``delivery.local_path`` and ``delivery.place`` from the mask's (or the global)
    placement options.  The tree root is the part of ``directory`` before any
    per-message variable; the writer (``sarra.fs.safefs``) never leaves it."""

    def __init__(self, options: Options, extra_values: Optional[dict] = None) -> None:
        self.o = options
        self.extra = extra_values or {}

    def __call__(self, d: Delivery) -> None:
        src: Union[Mask, Options] = d.mask if d.mask is not None else self.o
        directory = src.directory or "."
        below = ""
        if "~" in directory:
            directory = os.path.expanduser(directory)
        if "$" in directory:  # no variables: nothing to expand, no per-message values
            directory, below = split_directory(directory, message_values(d.notice, self.extra))
        rel = relative_target(
            d.notice,
            mirror=src.mirror,
            strip=src.strip,
            flatten=src.flatten,
        )
        place = place_of(directory, f"{below}/{rel}" if below else rel)
        d.place = place
        d.local_path = place.path


def forget_state(state_dir: Path) -> None:
    """Remove the remembered queue name, retry queues and caches of a config."""
    import shutil

    for p in state_dir.glob("*"):
        if p.name.endswith(".pid"):
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink()
