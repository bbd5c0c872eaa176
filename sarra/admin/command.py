"""dd_admin: the switch administrator's command (users, permissions, exchanges, drift).

``dd_admin [-c admin.conf] add-user NAME --role source|subscriber|feeder|admin [--password PW]``
``dd_admin remove-user NAME`` | ``list-users`` | ``declare`` | ``check`` |
``link CLUSTER URL``

``declare`` also writes the switch's daemon configs (``sarra.admin.switchconf``): dd_sara
``ingest``, the ``reports`` router of dd_shovel, and one dd_sara ``from_<cluster>`` relay
per ``link``.

The admin configuration defaults to ``<config_dir>/admin.conf`` (``sarra.config.paths``);
passwords go to ``<config_dir>/credentials.conf`` (mode 0600) and are never printed.
Not a flow role: it has its own small grammar, so ``bin/dd_admin`` calls :func:`main`.
Exit status: 0 done (``check``: no drift), 1 failure or drift, 2 usage/config error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from sarra.admin import config as admin_conf
from sarra.admin import users as adm
from sarra.config.paths import Paths
from sarra.core.errors import ConfigError, SarraError

PROGRAM = "dd_admin"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROGRAM, description="administer a dd switch (broker)")
    p.add_argument("-c", "--config", help="admin configuration (default <config_dir>/admin.conf)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = sub.add_parser("add-user", help="create a user with a role; password to credentials")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=adm.ROLES)
    add.add_argument("--password", help="use this password (default: a random one)")
    rm = sub.add_parser("remove-user", help="delete a user and its credentials entry")
    rm.add_argument("name")
    sub.add_parser("list-users", help="users of the switch's vhost: role and permissions")
    sub.add_parser("declare", help="declare xpublic, xreport and every user's exchanges")
    sub.add_parser("check", help="report drift between admin.conf and the broker")
    ln = sub.add_parser("link", help="add another switch: relay and report router configs")
    ln.add_argument("cluster", help="the other switch's cluster name")
    ln.add_argument("url", help="its feeder URL, amqp[s]://user[:password]@host/vhost")
    return p


def _add_user(a: adm.Admin, ns: argparse.Namespace) -> int:
    url = a.add_user(ns.name, ns.role, ns.password)
    print(f"{PROGRAM}: user {ns.name} ({ns.role}) ready: {url}")
    print(f"{PROGRAM}: password stored in {a.credentials_file}")
    return EXIT_OK


def _remove_user(a: adm.Admin, ns: argparse.Namespace) -> int:
    a.remove_user(ns.name)
    print(f"{PROGRAM}: user {ns.name} removed")
    return EXIT_OK


def _list_users(a: adm.Admin, ns: argparse.Namespace) -> int:
    for u in a.list_users():
        print(f"{u.name:20} {u.role:10} configure={u.configure} write={u.write} read={u.read}")
    return EXIT_OK


def _declare(a: adm.Admin, ns: argparse.Namespace) -> int:
    for name in a.declare():
        print(f"{PROGRAM}: exchange {name} declared")
    if a.cfg.feeder:
        for path in a.write_configs(ns.config_dir):
            print(f"{PROGRAM}: wrote {path}")
    return EXIT_OK


def _link(a: adm.Admin, ns: argparse.Namespace) -> int:
    for path in a.link(ns.cluster, ns.url, ns.config_dir):
        print(f"{PROGRAM}: wrote {path}")
    print(f"{PROGRAM}: start them with: dd_sara start from_{ns.cluster}; dd_shovel restart reports")
    return EXIT_OK


def _check(a: adm.Admin, ns: argparse.Namespace) -> int:
    problems = a.check()
    for line in problems:
        print(f"{PROGRAM}: drift: {line}")
    if not problems:
        print(f"{PROGRAM}: broker matches {a.cfg.path}")
    return EXIT_FAILURE if problems else EXIT_OK


COMMANDS: Dict[str, Callable[[adm.Admin, argparse.Namespace], int]] = {
    "add-user": _add_user,
    "remove-user": _remove_user,
    "list-users": _list_users,
    "declare": _declare,
    "check": _check,
    "link": _link,
}


def main(argv: Optional[Sequence[str]] = None, paths: Optional[Paths] = None) -> int:
    """Run dd_admin with ``argv``; return the exit status."""
    ns = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    paths = paths or Paths.from_env()
    config = Path(ns.config) if ns.config else paths.config_dir / "admin.conf"
    ns.config_dir = paths.config_dir
    try:
        cfg = admin_conf.load_admin_config(config)
        a = adm.Admin.from_config(cfg, paths.credentials_file())
        return COMMANDS[ns.command](a, ns)
    except ConfigError as e:
        print(f"{PROGRAM}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except SarraError as e:
        print(f"{PROGRAM}: error: {e}", file=sys.stderr)
        return EXIT_FAILURE


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())


__all__: List[str] = ["main", "entry", "COMMANDS"]
