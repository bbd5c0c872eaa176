"""Switch administration: roles -> RabbitMQ permissions, users, exchanges, drift checks.

Owns the permission model of spec 10.3/10.4, applied through RabbitMQ's management HTTP
API (``requests``), and the admin configuration ``admin.conf``::

    cluster  sw1
    admin    amqp://root@localhost/sw1        # password in credentials.conf
    feeder   amqp://feeder@localhost/sw1
    declare source alice
    declare subscriber bob
    declare exchange xs_alice_public
    post_base_dir /var/www/sarra             # where dd_sara stores, and the web server serves
    post_base_url http://sw1.example.com/
    link     sw2 amqp://feeder@sw2.example.com/sw2   # another switch (dd_admin link)
    source_bandwidth alice 10M               # alice's quota on this switch (bytes/s)
    ingest_bandwidth 40M                     # what dd_sara ingest takes in all

The vhost is the admin URL's path (``sarra.broker.urls`` rule).  Regexes are the v2
ones, tightened so that one user's rules never cover another user whose name starts
with the same letters: ``q_alice.*`` would also match ``q_alice2...``, so queues are
``^q_<u>\\.`` (dd queue names always continue with ``.``) and exchanges
``^xs_<u>(_.*)?$`` (``xs_<u>`` and its ``_<suffix>`` exchanges, 10.1).  User names
cannot contain ``_`` or ``.`` (``options.user_name``), the separators of those
suffixes, so no user's patterns match another's exchanges or queues (with ``u`` and
``u_x``, ``^xs_u(_.*)?$`` would match ``xs_u_x``).  Topic
permissions stop a source from publishing anything but ``v02.post``/``v02.report``
topics on its ``xs_`` exchange, and a subscriber anything but reports.

Errors: ``ConfigError`` (admin.conf), ``AccessRefused`` (API refused the admin login),
``BrokerError`` (API unreachable or failed), ``CredentialsError`` (credentials.conf).
No password ever reaches a log line, a message or stdout.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Tuple
from urllib.parse import quote, urlsplit

import requests

from sarra.admin.config import (
    ROLES,
    AdminConfig,
    Link,
    forget_credential,
    parse_link,
    set_declared,
    store_credential,
)
from sarra.admin.switchconf import write_configs
from sarra.broker.urls import parse_url
from sarra.config import converters
from sarra.config.credentials import Credentials
from sarra.core.errors import AccessRefused, BrokerError, ConfigError
from sarra.core.redaction import public_url, redact_url

log = logging.getLogger(__name__)

#: Exchanges every switch has (10.1).
SWITCH_EXCHANGES = ("xpublic", "xreport")
_POST_OR_REPORT = r"^v02\.(post|report)(\..*)?$"
_REPORT_ONLY = r"^v02\.report(\..*)?$"


@dataclass(frozen=True)
class Permissions:
    """configure/write/read regexes on one vhost, plus per-exchange topic permissions."""

    configure: str
    write: str
    read: str
    topics: Tuple[Tuple[str, str, str], ...] = ()  # (exchange, write, read)
    tags: str = ""


def permissions_for(role: str, user: str) -> Permissions:
    """The permissions a ``role`` gives ``user`` (spec 10.4, tightened: module docstring).

    Raises:
        ConfigError: unknown role.
    """
    u = re.escape(user)
    queues, own_x = rf"^q_{u}\.", rf"^xs_{u}(_.*)?$"
    readable = rf"{queues}|^x[lrs]_{u}(_.*)?$|^x.*public$"
    if role in ("admin", "feeder"):
        return Permissions(".*", ".*", ".*", tags="administrator" if role == "admin" else "")
    if role == "source":
        topics = ((f"xs_{user}", _POST_OR_REPORT, ".*"),)
        return Permissions(f"{queues}|{own_x}", f"{queues}|{own_x}", readable, topics)
    if role == "subscriber":
        topics = ((f"xs_{user}", _REPORT_ONLY, ".*"),)
        return Permissions(queues, rf"{queues}|^xs_{u}$", readable, topics)
    raise ConfigError(f"unknown role {role!r} (one of {', '.join(ROLES)})")


def user_exchanges(role: str, user: str) -> List[str]:
    """The exchanges the switch keeps for a user: ``xs_<u>`` and ``xr_<u>`` (10.4)."""
    return [f"xs_{user}", f"xr_{user}"] if role in ("source", "subscriber") else []


def new_password() -> str:
    return secrets.token_urlsafe(18)


# ------------------------------------------------------------------ management API


class ManagementAPI:
    """The few RabbitMQ management API calls the admin needs (``/api/...``, JSON)."""

    def __init__(self, base: str, user: str, password: str, timeout: float = 10.0) -> None:
        self.base = base.rstrip("/")
        self.http = requests.Session()
        self.http.auth = (user, password)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<ManagementAPI {self.base} as {self.http.auth[0]}>"  # type: ignore[index]

    def call(self, method: str, path: str, **kw: Any) -> Any:
        """One request; JSON answer, or None for an empty one or a 404 on GET/DELETE.

        Raises:
            AccessRefused: 401/403 (admin user, password or tag).
            BrokerError: unreachable, or any other error status.
        """
        try:
            r = self.http.request(method, self.base + path, timeout=self.timeout, **kw)
        except requests.RequestException as e:
            raise BrokerError(f"management API {self.base} unreachable: {e}") from e
        if r.status_code in (401, 403):
            raise AccessRefused(
                f"management API {self.base} refused {method} {path} ({r.status_code}): "
                "check the admin user, its password in credentials.conf and its "
                "administrator tag"
            )
        if r.status_code == 404 and method in ("GET", "DELETE"):
            return None
        if r.status_code >= 400:
            raise BrokerError(f"management API {method} {path}: {r.status_code} {r.text[:200]}")
        return r.json() if r.content else None

    @staticmethod
    def q(name: str) -> str:
        return quote(name, safe="")

    def users(self) -> List[dict]:
        return self.call("GET", "/users") or []

    def put_user(self, name: str, password: str, tags: str) -> None:
        self.call("PUT", f"/users/{self.q(name)}", json={"password": password, "tags": tags})

    def delete_user(self, name: str) -> None:
        self.call("DELETE", f"/users/{self.q(name)}")

    def permissions(self, vhost: str) -> List[dict]:
        return self.call("GET", f"/vhosts/{self.q(vhost)}/permissions") or []

    def topic_permissions(self, vhost: str) -> List[dict]:
        return self.call("GET", f"/vhosts/{self.q(vhost)}/topic-permissions") or []

    def set_permissions(self, vhost: str, user: str, p: Permissions) -> None:
        body = {"configure": p.configure, "write": p.write, "read": p.read}
        self.call("PUT", f"/permissions/{self.q(vhost)}/{self.q(user)}", json=body)
        self.call("DELETE", f"/topic-permissions/{self.q(vhost)}/{self.q(user)}")
        for exchange, write, read in p.topics:
            body = {"exchange": exchange, "write": write, "read": read}
            self.call("PUT", f"/topic-permissions/{self.q(vhost)}/{self.q(user)}", json=body)

    def exchanges(self, vhost: str) -> List[str]:
        return [x["name"] for x in self.call("GET", f"/exchanges/{self.q(vhost)}") or []]

    def declare_exchange(self, vhost: str, name: str) -> None:
        body = {"type": "topic", "durable": True, "auto_delete": False}
        self.call("PUT", f"/exchanges/{self.q(vhost)}/{self.q(name)}", json=body)


# ------------------------------------------------------------------ operations


@dataclass(frozen=True)
class UserInfo:
    """A user with permissions on the switch's vhost, as the broker has it."""

    name: str
    role: str  # a role whose permissions match exactly, or "custom"
    tags: str
    configure: str
    write: str
    read: str


class Admin:
    """The admin operations on one switch, driven by its admin.conf."""

    def __init__(self, cfg: AdminConfig, api: ManagementAPI, credentials_file: Path) -> None:
        self.cfg = cfg
        self.api = api
        self.credentials_file = Path(credentials_file)

    @classmethod
    def from_config(cls, cfg: AdminConfig, credentials_file: Path) -> Admin:
        """Log in to the management API as the admin user (password from credentials.conf).

        Raises:
            CredentialsError: unsafe credentials file.  ConfigError: no admin password.
        """
        url = Credentials.load(credentials_file).resolve(cfg.admin)
        ep = parse_url(url)
        if urlsplit(url).password is None:
            raise ConfigError(
                f"no password for {redact_url(cfg.admin)} in {credentials_file} "
                f"(add a line: amqp://{ep.user}:PASSWORD@{ep.host}/...)"
            )
        return cls(cfg, ManagementAPI(cfg.api_url(), ep.user, ep.password), credentials_file)

    def add_user(self, name: str, role: str, password: Optional[str] = None) -> str:
        """Create (or update) ``name`` with ``role``'s permissions, its exchanges, its
        credentials.conf entry and its ``declare`` line.  Returns its URL without password.

        Raises:
            ConfigError: bad name or role.  AccessRefused, BrokerError: the API refused.
        """
        try:
            converters.user_name(name)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        perms = permissions_for(role, name)
        password = password or new_password()
        vhost = self.cfg.vhost
        self.api.put_user(name, password, perms.tags)
        self.api.set_permissions(vhost, name, perms)
        for x in user_exchanges(role, name):
            self.api.declare_exchange(vhost, x)
        store_credential(self.credentials_file, self.cfg.user_url(name, password))
        set_declared(self.cfg, name, role)
        log.info("user %s added as %s on vhost %s", name, role, vhost)
        return self.cfg.user_url(name)

    def remove_user(self, name: str) -> None:
        """Delete the user, its credentials.conf entry and its ``declare`` line.

        Raises:
            AccessRefused, BrokerError: the API refused.
        """
        self.api.delete_user(name)
        forget_credential(self.credentials_file, self.cfg.user_url(name))
        set_declared(self.cfg, name, None)

    def list_users(self) -> List[UserInfo]:
        """Users with permissions on the switch's vhost, sorted by name."""
        tags = {u["name"]: _tags(u.get("tags")) for u in self.api.users()}
        out = []
        for p in self.api.permissions(self.cfg.vhost):
            name = p["user"]
            role = next(
                (r for r in ROLES if _same(permissions_for(r, name), p, tags.get(name, ""))),
                "custom",
            )
            out.append(
                UserInfo(name, role, tags.get(name, ""), p["configure"], p["write"], p["read"])
            )
        return sorted(out, key=lambda u: u.name)

    def wanted_exchanges(self) -> List[str]:
        names = list(SWITCH_EXCHANGES)
        for user, role in self.cfg.users.items():
            names += user_exchanges(role, user)
        return names + [x for x in self.cfg.exchanges if x not in names]

    def declare(self) -> List[str]:
        """Declare xpublic, xreport, every declared user's xs_/xr_ and declared exchanges."""
        names = self.wanted_exchanges()
        for name in names:
            self.api.declare_exchange(self.cfg.vhost, name)
        return names

    def write_configs(self, config_dir: Path) -> List[Path]:
        """Write the switch's dd_sara and report router configs (``sarra.admin.switchconf``)."""
        return write_configs(self.cfg, config_dir)

    def link(self, cluster: str, url: str, config_dir: Path) -> List[Path]:
        """Add (or replace) ``link <cluster> <url>`` in admin.conf, keep a password given in
        ``url`` in credentials.conf only, and rewrite the configs.  Returns the files written.

        Raises:
            ConfigError: bad cluster name or URL, or no ``feeder`` in admin.conf.
        """
        link = parse_link_checked(cluster, url)
        if urlsplit(url).password is not None:
            store_credential(self.credentials_file, url)
        text = self.cfg.path.read_text(encoding="utf-8").splitlines()
        kept = [ln for ln in text if ln.split()[:2] != ["link", cluster]]
        kept.append(f"link {link.cluster} {link.url}")
        self.cfg.path.write_text("\n".join(kept) + "\n", encoding="utf-8")
        self.cfg.links = [lk for lk in self.cfg.links if lk.cluster != cluster] + [link]
        return self.write_configs(config_dir)

    def check(self) -> List[str]:
        """Drift between admin.conf and the broker, one sentence each ([] when in sync)."""
        problems = []
        users = {u.name: u for u in self.list_users()}
        admin_user = parse_url(self.cfg.admin).user
        for name, role in sorted(self.cfg.users.items()):
            have = users.get(name)
            if have is None:
                problems.append(f"missing user {name} (declared {role}): dd_admin add-user")
            elif have.role != role:
                problems.append(f"user {name} has {have.role} permissions, declared {role}")
        for name in sorted(set(users) - set(self.cfg.users) - {admin_user}):
            problems.append(f"extra user {name} ({users[name].role}) not in {self.cfg.path}")
        present = set(self.api.exchanges(self.cfg.vhost))
        for x in self.wanted_exchanges():
            if x not in present:
                problems.append(f"missing exchange {x}: dd_admin declare")
        return problems


def parse_link_checked(cluster: str, url: str) -> Link:
    """Raises: ConfigError: bad cluster name or URL."""
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", cluster):
        raise ConfigError(f"bad cluster name {cluster!r}")
    try:
        parsed = parse_link(f"{cluster} {url}")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return Link(parsed.cluster, public_url(parsed.url))


def _tags(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(sorted(value))
    return ",".join(sorted(t for t in str(value or "").split(",") if t))


def _same(want: Permissions, have: dict, tags: str) -> bool:
    regexes = (want.configure, want.write, want.read)
    return regexes == (have["configure"], have["write"], have["read"]) and (
        want.tags in tags.split(",") if want.tags else True
    )
