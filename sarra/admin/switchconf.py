"""The switch's own daemon configurations, written by dd_admin from admin.conf.

Three kinds, in the shapes that ``sarra.roles.sara`` and the report router of
``sarra.roles.shovel`` read (see ``etc/sara/*.conf``, ``etc/shovel/reports.conf``):

* ``sara/ingest.conf``: dd_sara takes the declared sources' posts from ``xs_<source>``,
  stores them under ``post_base_dir``, re-announces them on ``xpublic``, each source
  held to its ``source_bandwidth`` quota of admin.conf (and all to ``ingest_bandwidth``);
* ``sara/from_<cluster>.conf``: one per ``link``: dd_sara relays what another switch's
  ``xpublic`` addresses to this cluster (the same quotas: a source's budget is the
  switch's, shared by ingest and relays);
* ``shovel/reports.conf``: the report router, with one ``report_route`` per link so
  reports about data from another switch go back toward it.

Pure text builders plus :func:`write_configs`; URLs are written without passwords
(those stay in credentials.conf).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

from sarra.admin.config import AdminConfig, Link
from sarra.core.errors import ConfigError
from sarra.core.redaction import public_url

HEADER = "# written by dd_admin from {admin}: change admin.conf and run dd_admin declare\n"


def _users(users: Dict[str, str], roles: tuple) -> List[str]:
    return [f"declare {role} {name}" for name, role in users.items() if role in roles]


def ingest_config(c: AdminConfig) -> str:
    """dd_sara ingest config of the switch ``c``."""
    lines = [
        f"broker {public_url(c.feeder)}",
        f"cluster {c.cluster}",
        *_users(c.users, ("source",)),
        # posts for a linked switch are taken: its relay fetches them from our xpublic
        *([f"gateway_for {','.join(lk.cluster for lk in c.links)}"] if c.links else []),
        f"post_base_dir {c.post_base_dir}",
        f"post_base_url {c.post_base_url}",
        "suppress_duplicates 10m",
        # hosts the sources may make the switch fetch from (SSRF policy, dd_sara(8))
        *(f"source_hosts {h}" for h in c.source_hosts),
        *_quotas(c),
        *([f"bandwidth {c.ingest_bandwidth}"] if c.ingest_bandwidth else []),
    ]
    return HEADER.format(admin=c.path) + "\n".join(lines) + "\n"


def relay_config(c: AdminConfig, link: Link) -> str:
    """dd_sara relay config: fetch from ``link``'s xpublic what is addressed here."""
    lines = [
        f"broker {public_url(link.url)}",
        "exchange xpublic",
        "source_from_exchange off",
        f"post_broker {public_url(c.feeder)}",
        f"cluster {c.cluster}",
        "directory ${PBD}",
        f"post_base_dir {c.post_base_dir}",
        f"post_base_url {c.post_base_url}",
        "suppress_duplicates 10m",
        *_quotas(c),
    ]
    return HEADER.format(admin=c.path) + "\n".join(lines) + "\n"


def _quotas(c: AdminConfig) -> List[str]:
    """The sources' bandwidth quotas (sarra.flow.sharing: a source over its quota waits,
    the others go ahead)."""
    return [f"source_bandwidth {q}" for q in c.source_bandwidth]


def report_router_config(c: AdminConfig) -> str:
    """The report router: users' reports to xreport, then to xr_<source> or a link."""
    lines = [
        f"broker {public_url(c.feeder)}",
        "report_router on",
        f"cluster {c.cluster}",
        *_users(c.users, ("source", "subscriber")),
        *(f"report_route {lk.cluster} {public_url(lk.url)}" for lk in c.links),
    ]
    return HEADER.format(admin=c.path) + "\n".join(lines) + "\n"


def write_configs(c: AdminConfig, config_dir: Path) -> List[Path]:
    """Write ingest, relay (one per link) and report router configs; returns their paths.

    Raises:
        ConfigError: admin.conf has no ``feeder``.
    """
    if not c.feeder:
        raise ConfigError("no 'feeder amqp://user@host/vhost' line", str(c.path))
    files = {config_dir / "shovel" / "reports.conf": report_router_config(c)}
    if c.post_base_dir and c.post_base_url:
        files[config_dir / "sara" / "ingest.conf"] = ingest_config(c)
        for lk in c.links:
            files[config_dir / "sara" / f"from_{lk.cluster}.conf"] = relay_config(c, lk)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)
