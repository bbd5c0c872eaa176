"""admin.conf, the desired state of a switch, and the credentials file dd_admin keeps.

``load_admin_config`` reads admin.conf (see ``sarra.admin.users`` for its lines) into an
:class:`AdminConfig`; ``set_declared`` adds or removes one ``declare`` line;
``store_credential``/``forget_credential`` keep credentials.conf (mode 0600, atomic).

Errors: ``ConfigError`` (admin.conf), ``CredentialsError`` (credentials.conf).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import quote, urlsplit, urlunsplit

from sarra.broker.urls import parse_url
from sarra.config import converters
from sarra.config.credentials import Credentials, parse_line
from sarra.core.errors import ConfigError

ROLES = ("admin", "feeder", "source", "subscriber")


@dataclass(frozen=True)
class Link:
    """Another switch: its cluster name and its feeder URL (without password)."""

    cluster: str
    url: str


# ------------------------------------------------------------------ admin.conf


@dataclass
class AdminConfig:
    """What admin.conf declares: the desired state of the switch."""

    path: Path
    cluster: str = ""
    admin: str = ""
    feeder: str = ""
    api: str = ""
    post_base_dir: str = ""
    post_base_url: str = ""
    links: List[Link] = field(default_factory=list)
    users: Dict[str, str] = field(default_factory=dict)  # name -> role
    exchanges: List[str] = field(default_factory=list)
    source_hosts: List[str] = field(default_factory=list)  # copied into dd_sara ingest
    #: ``<source|*> <rate>`` lines, copied into the dd_sara ingest and relay configs
    source_bandwidth: List[str] = field(default_factory=list)
    #: the ingest's total (its ``bandwidth``), "" for none
    ingest_bandwidth: str = ""

    @property
    def vhost(self) -> str:
        return parse_url(self.admin).vhost

    def user_url(self, user: str, password: Optional[str] = None) -> str:
        """``amqp[s]://user[:password]@host[:port]/<vhost>`` on this switch's broker."""
        parts = urlsplit(self.admin)
        auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{auth}@{host}"))

    def api_url(self) -> str:
        """``api`` if set, else ``http://<admin host>:15672/api``."""
        return self.api or f"http://{parse_url(self.admin).host}:15672/api"


def parse_link(value: str) -> Link:
    """``<cluster> <amqp url>`` -> ``Link``.

    Raises:
        ValueError: not two words, or not a broker URL.
    """
    words = value.split()
    if len(words) != 2:
        raise ValueError(f"bad link {value!r} (expected: link <cluster> <amqp url>)")
    return Link(words[0], converters.amqp_url(words[1]))


_SETTINGS = ("cluster", "admin", "feeder", "api", "post_base_dir", "post_base_url")


def load_admin_config(path: Path) -> AdminConfig:
    """Read admin.conf (``# comments``, ``name value`` lines).

    Raises:
        ConfigError: missing file, unknown setting, bad declare, no ``admin`` line.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read admin configuration: {e.strerror}", str(path)) from None
    cfg = AdminConfig(Path(path))
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, value = line.partition(" ")
        where, value = f"{path}:{number}", value.strip()
        try:
            if name in ("admin", "feeder"):
                value = converters.amqp_url(value)
            if name in _SETTINGS:
                setattr(cfg, name, value)
            elif name == "link":
                cfg.links.append(parse_link(value))
            elif name == "source_hosts":
                converters.source_hosts(value)  # checked here, written to the ingest config
                cfg.source_hosts.append(value)
            elif name == "ingest_bandwidth":
                converters.size(value)  # checked here, written to the ingest config
                cfg.ingest_bandwidth = value
            elif name == "source_bandwidth":
                converters.source_rate(value)  # checked here, written to dd_sara's configs
                cfg.source_bandwidth.append(" ".join(value.split()))
            elif name == "declare":
                kind, who = converters.declare(value)
                if kind == "exchange":
                    cfg.exchanges.append(who)
                elif kind in ROLES:
                    cfg.users[who] = kind
                else:
                    raise ValueError(f"declare {kind} is not for admin.conf")
            else:
                raise ValueError(
                    f"unknown setting {name!r} (one of {', '.join(_SETTINGS)}, declare, link, "
                    "source_hosts, source_bandwidth, ingest_bandwidth)"
                )
        except ValueError as e:
            raise ConfigError(str(e), where) from None
    if not cfg.admin:
        raise ConfigError("no 'admin amqp://user@host/vhost' line", str(path))
    if cfg.feeder:
        cfg.users.setdefault(parse_url(cfg.feeder).user, "feeder")
    return cfg


def set_declared(cfg: AdminConfig, user: str, role: Optional[str]) -> None:
    """Add (``role``) or remove (``None``) the ``declare <role> <user>`` line in admin.conf."""
    lines = cfg.path.read_text(encoding="utf-8").splitlines()
    pattern = re.compile(rf"^\s*declare\s+({'|'.join(ROLES)})\s+{re.escape(user)}\s*(#.*)?$")
    kept = [ln for ln in lines if not pattern.match(ln)]
    if role is not None:
        kept.append(f"declare {role} {user}")
        cfg.users[user] = role
    else:
        cfg.users.pop(user, None)
    cfg.path.write_text("\n".join(kept) + "\n", encoding="utf-8")


# ------------------------------------------------------------------ credentials.conf


def store_credential(path: Path, url: str) -> None:
    """Put ``url`` (with password) in the credentials file, replacing the entry for the same
    scheme/host/port/user; the file is written atomically with mode 0600.

    Raises:
        CredentialsError: the existing file is unsafe or has a bad line.
    """
    forget_credential(path, url, _add=url)


def forget_credential(path: Path, url: str, _add: str = "") -> None:
    """Remove every entry of the credentials file that matches ``url``'s user and host."""
    path = Path(path)
    Credentials.load(path)  # refuses a group/other readable file
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    user = urlsplit(url).username
    kept = []
    for ln in lines:
        entry = ln.strip()
        if entry and not entry.startswith("#"):
            cred = parse_line(entry)
            if cred.user == user and cred.matches(url):
                continue
        kept.append(ln)
    if _add:
        kept.append(_add)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(kept) + ("\n" if kept else ""))
    os.replace(tmp, path)
