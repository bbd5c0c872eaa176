"""One command-line grammar for every ``dd_*`` command, and the action table.

``dd_subscribe [options] action [config]``; ``dd_post [options] [paths...]`` (one
shot, like rsync or scp).  Options are the rows of ``sarra.config.options`` (``--name value``
or any listed synonym such as ``-b``); a flag may be followed by ``True``/``False``.
Errors end here: a ``SarraError`` becomes one line on stderr and an exit status.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from sarra import __version__
from sarra.config import options as optdefs
from sarra.config.loader import Options
from sarra.config.paths import Paths, short_name
from sarra.core.errors import ConfigError, SarraError
from sarra.service import programs
from sarra.service.programs import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_STOPPED,
    EXIT_USAGE,
    cleanup,
    declare,
    restart,
    start,
    status,
    stop,
)

log = logging.getLogger("sarra")

DAEMON_ACTIONS = (
    "foreground",
    "start",
    "stop",
    "restart",
    "status",
    "cleanup",
    "declare",
    "setup",
    "add",
    "remove",
    "edit",
    "list",
)
BOOL_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}


class _Collect(argparse.Action):
    """Record ``(option, value)`` in command-line order (accept/reject order matters)."""

    def __init__(
        self, option_strings: Sequence[str], dest: str, option_name: str = "", **kw: Any
    ) -> None:
        super().__init__(option_strings, dest, **kw)
        self.option_name = option_name

    def __call__(self, parser: Any, ns: Any, values: Any, option_string: Any = None) -> None:
        ns.overrides.append((self.option_name, values))


#: Posting programs have no consuming broker: there, as in v2's sr_post, ``-b``/``-ex``
#: mean the broker and exchange they post to.
POSTER_FLAGS = {
    "post_broker": ["-b", "--broker"],
    "post_exchange": ["-ex", "--exchange"],
}


def _flags_for(opt: Any, program: str = "") -> List[str]:
    flags = [f"--{opt.name}"]
    for word, target in optdefs.SYNONYMS.items():
        if target == opt.name and word.startswith("-") and word not in flags:
            flags.append(word)
    if program and short_name(program) in ("post", "watch"):
        flags += [f for f in POSTER_FLAGS.get(opt.name, ()) if f not in flags]
    return flags


class _ExactParser(argparse.ArgumentParser):
    """An ArgumentParser that knows every option string added to it (``flags``), for
    :func:`_refuse_inexact`; prefixes of long options are off (``allow_abbrev=False``)."""

    def __init__(self, **kwargs: Any) -> None:
        self.flags: set[str] = set()
        super().__init__(allow_abbrev=False, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.flags.update(action.option_strings)
        return action


#: argparse's own business: a negative number is a value, not an option
_NUMBER = re.compile(r"-\.?[0-9]")


def _refuse_inexact(parser: _ExactParser, argv: Sequence[str]) -> None:
    """Exit 2, as argparse does for an unknown option, when a word that looks like an
    option (a dash, not a number, no space, before any ``--``) is not one of the parser's
    (alone, or with ``=value``).

    argparse still reads single-dash words as prefixes with ``allow_abbrev=False``:
    ``-e`` would mean ``-ex``, ``-bro`` would mean ``-b ro``: a typo that silently
    means another option.  Checking the words first needs nothing but argparse's public
    API (an override of its private ``_get_option_tuples`` did it before).
    """
    unknown = []
    for word in argv:
        if word == "--":
            break
        if len(word) < 2 or word[0] != "-" or " " in word or _NUMBER.match(word):
            continue
        if word.split("=", 1)[0] not in parser.flags:
            unknown.append(word)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")


def build_parser(program: str) -> _ExactParser:
    short = short_name(program)
    p = _ExactParser(
        prog=program,
        description=f"{program}: see man {program}. Actions: "
        + ("[paths...]" if short == "post" else " ".join(DAEMON_ACTIONS) + " [config]"),
    )
    p.set_defaults(overrides=[])
    for opt in optdefs.options_for(short):
        p.add_argument(
            *_flags_for(opt, program),
            action=_Collect,
            option_name=opt.name,
            metavar=opt.name.upper(),
            help=opt.help,
            dest=f"_{opt.name}",
        )
    p.add_argument("-c", "--config", dest="config_name", help="configuration name or file")
    p.add_argument("--instance", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("words", nargs="*", help=argparse.SUPPRESS)
    return p


def _join_flags(program: str, argv: Sequence[str]) -> List[str]:
    """``-mirror`` alone means True; ``-mirror False`` becomes ``-mirror=False``."""
    flags = {
        f
        for opt in optdefs.options_for(short_name(program))
        if opt.is_flag
        for f in _flags_for(opt, program)
    }
    out: List[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok in flags:
            if i + 1 < len(argv) and argv[i + 1].lower() in BOOL_WORDS:
                out.append(f"{tok}={argv[i + 1]}")
                i += 2
                continue
            out.append(f"{tok}=True")
        else:
            out.append(tok)
        i += 1
    return out


def parse(program: str, argv: Sequence[str]) -> argparse.Namespace:
    parser = build_parser(program)
    words = _join_flags(program, argv)
    _refuse_inexact(parser, words)
    ns = parser.parse_intermixed_args(words)
    ns.parser = parser
    return ns


# ---------------------------------------------------------------- helpers
def _setup_logging(o: Options, program: str, config: str, instance: int, paths: Paths) -> None:
    from sarra.logs.setup import setup_logging

    log_file = paths.log_file(program, config, instance) if instance else None
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    level = "debug" if o.debug else o.log_level
    setup_logging(
        level=level,
        log_file=log_file,
        backups=o.log_backups,
        rotate_s=o.log_rotate,
        program=program,
        instance=instance,
    )


# ---------------------------------------------------------------- actions
def act_foreground(
    program: str, config: Optional[str], ns: argparse.Namespace, paths: Paths
) -> int:
    from sarra.service.instances import run_foreground

    o = programs.options(program, config, ns, paths)
    programs.check_plugins(o, paths)
    name = o.config or "_cmdline"
    _setup_logging(o, program, name, ns.instance, paths)
    pidfile = None
    reads_journal = short_name(program) == "log" and o.journal
    if config and short_name(program) != "post" and not reads_journal:
        pidfile = paths.state(program, name) / f"i{max(ns.instance, 1):02d}.pid"
        pidfile.parent.mkdir(parents=True, exist_ok=True)

    def main(receiver: Any) -> int:
        ctx = programs.context(program, o, paths, ns.instance, lambda: receiver.stop_requested)
        try:
            if o.hook_lines:
                ctx.hooks()  # every plugin built (and its options checked) before connecting
            if short_name(program) == "post":
                return int(programs.role(program).run(ctx, ns.words))
            return int(programs.role(program).run(ctx))
        finally:
            ctx.close()

    return run_foreground(program, name, max(ns.instance, 1), pidfile, main)


def _each_config(fn: Callable[[str, str, argparse.Namespace, Paths], int]) -> Callable:
    def run(program: str, config: Optional[str], ns: argparse.Namespace, paths: Paths) -> int:
        configs = [config] if config else programs.configs(program, paths)
        if not configs:
            print(f"{program}: no configurations in {paths.program_config_dir(program)}")
            return EXIT_STOPPED if fn.__name__ == "status" else EXIT_OK
        codes = [fn(program, c, ns, paths) for c in configs]
        return max(codes)

    return run


def act_list(program: str, config: Optional[str], ns: argparse.Namespace, paths: Paths) -> int:
    if config:
        print(paths.config_file(program, config).read_text(), end="")
        return EXIT_OK
    for name in programs.configs(program, paths):
        print(name)
    return EXIT_OK


def act_add(program: str, config: Optional[str], ns: argparse.Namespace, paths: Paths) -> int:
    if not config or not Path(config).is_file():
        raise ConfigError(f"add: give an existing .conf file to add (got {config!r})")
    dest = paths.program_config_dir(program)
    dest.mkdir(parents=True, exist_ok=True)
    import shutil  # here: every command's start-up would pay for it

    shutil.copy(config, dest / Path(config).name)
    print(f"{program}: added {dest / Path(config).name}")
    return EXIT_OK


def act_remove(program: str, config: Optional[str], ns: argparse.Namespace, paths: Paths) -> int:
    path = paths.config_file(program, config or "")
    if not config or not path.is_file():
        raise ConfigError(f"remove: no configuration {config!r} in {path.parent}")
    path.unlink()
    print(f"{program}: removed {path}")
    return EXIT_OK


def act_edit(program: str, config: Optional[str], ns: argparse.Namespace, paths: Paths) -> int:
    if not config:
        raise ConfigError("edit: name a configuration")
    path = paths.config_file(program, config)
    path.parent.mkdir(parents=True, exist_ok=True)
    import subprocess

    return subprocess.call([os.environ.get("EDITOR", "vi"), str(path)])


ACTIONS: Dict[str, Callable[..., int]] = {
    "foreground": act_foreground,
    "start": _each_config(start),
    "stop": _each_config(stop),
    "restart": _each_config(restart),
    "status": _each_config(status),
    "cleanup": _each_config(cleanup),
    "declare": _each_config(declare),
    "setup": _each_config(declare),
    "list": act_list,
    "add": act_add,
    "remove": act_remove,
    "edit": act_edit,
}


def _split_words(program: str, ns: argparse.Namespace) -> Tuple[str, Optional[str]]:
    words = list(ns.words)
    config = ns.config_name
    if short_name(program) == "post":
        if words and words[0] == "foreground":
            words.pop(0)
        ns.words = words
        return "foreground", config
    if not words and short_name(program) == "log" and ns.overrides:
        return "foreground", config  # "dd_log -b amqp://alice@switch/" like sr_report
    if not words:
        raise ConfigError(f"no action given (one of: {', '.join(DAEMON_ACTIONS)})")
    action = words.pop(0)
    if action not in ACTIONS and words and words[0] in ACTIONS:
        action, words[0] = words[0], action  # "dd_subscribe conf start" works too
    if action not in ACTIONS:
        raise ConfigError(f"unknown action {action!r} (one of: {', '.join(DAEMON_ACTIONS)})")
    if words:
        config = words.pop(0)
    if words:
        raise ConfigError(f"unexpected arguments: {' '.join(words)}")
    ns.words = []
    return action, config


def main(program: str, argv: Optional[Sequence[str]] = None) -> int:
    """Run ``program`` with ``argv``; return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        ns = parse(program, argv)
        action, config = _split_words(program, ns)
        return ACTIONS[action](program, config, ns, Paths.from_env())
    except ConfigError as e:
        print(f"{program}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except SarraError as e:
        print(f"{program}: error: {e}", file=sys.stderr)
        log.debug("details", exc_info=True)
        return EXIT_FAILURE
    except BrokenPipeError:
        # the reader of our output left (``dd_log --follow foreground | head``): what was
        # not shown was not acknowledged either; nothing more to say to a closed pipe
        log.debug("output closed", exc_info=True)
        _quiet_stdout()
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE


def _quiet_stdout() -> None:
    """Point fd 1 at /dev/null: the interpreter's last flush of stdout at exit would
    meet the closed pipe again and print a second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout replaced by an object without a file (tests)
        pass


def entry(program: str) -> Callable[[], None]:
    def run() -> None:
        sys.exit(main(program))

    return run


dd_post = entry("dd_post")
dd_subscribe = entry("dd_subscribe")
dd_sara = entry("dd_sara")
dd_log = entry("dd_log")
dd_watch = entry("dd_watch")
dd_shovel = entry("dd_shovel")
dd_sender = entry("dd_sender")
dd_poll = entry("dd_poll")

if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
