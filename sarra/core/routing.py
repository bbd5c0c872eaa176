"""Switch routing decisions (pure logic, no I/O): who sent a post, may it pass, where
does a report go.

* ``source_from_exchange``: the declared source owning an ``xs_`` exchange, longest
  declared name first (spec 10.5 step 1: ``xs_alice_public`` -> ``alice``).
* ``ingest``: validates a post read from a source's exchange and returns the notice to
  store and re-announce (``source`` forced to the exchange owner, ``from_cluster`` set to
  this switch, ``to_clusters`` filled, ``sum``/``parts``/URL checked; spec 10.5), and
  refuses a post whose ``to_clusters`` names no destination this switch knows (see
  ``Switch.destinations``): nothing would ever take it from ``xpublic``.
* ``relay``: decides whether a post read from another switch's ``xpublic`` is for this
  switch (``to_clusters`` names it, an alias, or a cluster it is gateway for) and refuses
  loops (``from_cluster`` is this switch, or the post is this switch's own re-post).
* ``report_target``: where the report router sends a report (spec 9.1, 9.6): from
  ``xs_<user>`` to ``xreport`` (only the user's own reports); from ``xreport`` to
  ``xr_<source>`` when the source lives here, else toward the switch of ``from_cluster``.

Refusals raise ``Refused`` (code and text for the report, spec 9.4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Optional, Protocol, Sequence, Tuple
from urllib.parse import urlsplit

from sarra.core import partition
from sarra.core.errors import MessageError, PathError, SarraError
from sarra.core.message import MAX_HEADER_BYTES, Notice, check_name, post_formats, split_sum
from sarra.core.redaction import public_url

#: schemes a switch may fetch a source's data from (never ``file:``: that would read the
#: switch's own disk on a source's behalf)
FETCH_SCHEMES = ("http", "https", "sftp", "ftp", "ftps")
_HEX = re.compile(r"^[0-9a-f]+$")
_SUM_LENGTHS = {"d": 32, "s": 128}
_SUM_METHODS = frozenset("d s n 0 z L R m r".split())
REPORT_EXCHANGE = "xreport"


class SwitchOptions(Protocol):
    """The options :meth:`Switch.from_options` reads: ``sarra.config.loader.Options``
    has them all (the core imports no config; mypy checks the match at each caller)."""

    @property
    def declare(self) -> Tuple[Tuple[str, str], ...]: ...
    @property
    def post_format(self) -> Optional[Tuple[str, ...]]: ...
    @property
    def post_topic_prefix(self) -> str: ...
    @property
    def to(self) -> Optional[Tuple[str, ...]]: ...
    @property
    def cluster(self) -> Optional[str]: ...
    @property
    def cluster_aliases(self) -> Tuple[str, ...]: ...
    @property
    def gateway_for(self) -> Tuple[str, ...]: ...
    @property
    def post_base_url(self) -> Optional[str]: ...
    @property
    def report_route(self) -> Tuple[Tuple[str, str], ...]: ...


class Refused(SarraError):
    """A post or report this switch will not pass on; ``code``/``text`` go in the report."""

    def __init__(self, reason: str, code: int = 403, text: str = "") -> None:
        super().__init__(reason)
        self.code = code
        self.text = text or f"Forbidden : {reason}"


@dataclass(frozen=True)
class Switch:
    """What a switch knows about itself (built from its config)."""

    cluster: str
    aliases: Tuple[str, ...] = ()
    gateway_for: Tuple[str, ...] = ()
    sources: Tuple[str, ...] = ()
    subscribers: Tuple[str, ...] = ()
    default_to: Tuple[str, ...] = ()
    base_url: str = ""
    #: report routes: cluster name (or ``*``) -> broker URL of the next hop toward it
    report_routes: Mapping[str, str] = field(default_factory=dict)
    #: host names sources reach this switch by: dd_post and v2 sr_post put the post
    #: broker's host in ``to_clusters`` when the poster names no cluster
    hosts: Tuple[str, ...] = ()
    #: whether this switch re-announces in v02: only then must a post fit v02's limits
    posts_v02: bool = True

    @property
    def names(self) -> Tuple[str, ...]:
        return (self.cluster,) + tuple(self.aliases)

    @property
    def serves(self) -> Tuple[str, ...]:
        """Cluster names a post may be addressed to for this switch to take it."""
        return self.names + tuple(self.gateway_for)

    @property
    def destinations(self) -> Tuple[str, ...]:
        """Names a source's post may carry in ``to_clusters`` for this switch to take it:
        the clusters it serves (``serves``), its default destinations (``to``), the host
        names it is reached by, and ``ALL``."""
        return self.serves + self.default_to + self.hosts + ("ALL",)

    @classmethod
    def from_options(
        cls, o: SwitchOptions, broker_host: str = "localhost", hosts: Sequence[str] = ()
    ) -> Switch:
        declared = o.declare
        return cls(
            cluster=o.cluster or broker_host,
            aliases=o.cluster_aliases,
            gateway_for=o.gateway_for,
            sources=tuple(n for k, n in declared if k == "source"),
            subscribers=tuple(n for k, n in declared if k == "subscriber"),
            default_to=o.to or (),
            base_url=public_url(o.post_base_url or ""),  # as published
            report_routes=dict(o.report_route),
            hosts=tuple(dict.fromkeys(h for h in (broker_host, *hosts) if h)),
            posts_v02=any(f == "v02" for f, _ in post_formats(o.post_format, o.post_topic_prefix)),
        )


def owner_of(exchange: str, users: Sequence[str]) -> Optional[str]:
    """The one of ``users`` that owns ``xs_<user>`` or ``xs_<user>_<suffix>``.

    User names cannot contain ``_`` (``options.user_name``), so the owner is the text
    between ``xs_`` and the next ``_``: the same rule as the broker permissions dd_admin
    gives (``^xs_<user>(_.*)?$``).  A declared name holding ``_`` owns nothing.
    """
    if not exchange.startswith("xs_"):
        return None
    owner = exchange[3:].partition("_")[0]
    return owner if owner and owner in users else None


def source_from_exchange(exchange: str, sw: Switch) -> str:
    """The declared source that owns ``exchange``.

    Raises:
        Refused: not an ``xs_`` exchange, or its owner is not a declared source.
    """
    if not exchange.startswith("xs_"):
        raise Refused(f"post read from {exchange!r}, not a source exchange", 403,
                      "Forbidden : message without source")  # fmt: skip
    owner = owner_of(exchange, sw.sources)
    if owner is None:
        raise Refused(f"{exchange!r} does not belong to a declared source", 403,
                      "Forbidden : message without source")  # fmt: skip
    return owner


def check_post(notice: Notice, v02: bool = True) -> None:
    """Well-formed ``sum``, ``parts`` and base URL (spec 10.5 step 5), and a post this
    switch can re-announce: a relpath v02 can carry and headers within its limit.  Checked
    before the download, so the switch never stores a file it could not announce.

    ``v02``: the switch re-announces in v02, whose limits (a name without a literal
    ``%20``, headers under 253 bytes) then apply too.

    Raises:
        Refused: code 417 for malformed headers, 403 for a scheme a switch will not fetch.
    """
    if notice.kind != "post":
        raise Refused("not a post", 417, "Expectation Failed : not a post")
    _check_announceable(notice, v02)
    try:
        method, value = split_sum(notice.headers.get("sum", ""))
    except MessageError:
        raise Refused("post without sum", 417, "Expectation Failed : sumflg or partflg") from None
    want = _SUM_LENGTHS.get(method)
    bad = method not in _SUM_METHODS or (want and (len(value) != want or not _HEX.match(value)))
    if bad or (method == "z" and value not in ("d", "s")):
        raise Refused(f"bad sum {notice.headers['sum'][:40]!r}", 417,
                      "Expectation Failed : sumflg or partflg")  # fmt: skip
    parts = notice.headers.get("parts")
    if parts:
        try:
            partition.parse(parts)
        except MessageError as e:
            raise Refused(str(e), 417, "Expectation Failed : sumflg or partflg") from None
    elif method not in ("R", "L", "m", "r"):
        raise Refused("file post without parts", 417, "Expectation Failed : sumflg or partflg")
    scheme = urlsplit(notice.baseurl).scheme.lower()
    if scheme not in FETCH_SCHEMES:
        raise Refused(f"scheme {scheme or '(none)'!r} not fetched by this switch", 403,
                      f"Forbidden : scheme {scheme or '(none)'}")  # fmt: skip


def _check_announceable(notice: Notice, v02: bool) -> None:
    """Refuse (417) what ``message.encode`` would refuse after the download."""
    try:
        check_name(notice.relpath, v02=v02)
    except PathError as e:
        raise Refused(f"unusable relpath: {e}", 417, "Expectation Failed : unusable path") from None
    for name, value in notice.headers.items() if v02 else ():
        if len(value) * 4 >= MAX_HEADER_BYTES and len(value.encode("utf-8")) >= MAX_HEADER_BYTES:
            raise Refused(f"header {name[:40]!r} is over {MAX_HEADER_BYTES - 1} bytes", 417,
                          "Expectation Failed : header too long")  # fmt: skip


def ingest(notice: Notice, exchange: str, sw: Switch) -> Notice:
    """Validate a source's post read from ``exchange``; return the notice to store.

    Raises:
        Refused: see ``source_from_exchange`` and ``check_post``; 403 when
            ``to_clusters`` names none of ``sw.destinations``.
    """
    source = source_from_exchange(exchange, sw)
    changes = {"source": source, "from_cluster": sw.cluster}
    given = clusters(notice)
    if not given:
        changes["to_clusters"] = ",".join(sw.default_to or (sw.cluster,))
    elif not set(sw.destinations).intersection(given):
        raise Refused(f"to_clusters {notice.headers['to_clusters'][:100]!r} names no cluster "
                      f"served here ({', '.join(sw.serves + sw.default_to)})", 403,
                      "Forbidden : unknown destination cluster")  # fmt: skip
    validated = notice.with_headers(changes)
    check_post(validated, sw.posts_v02)
    return validated


def stamp_refused(notice: Notice, exchange: str, sw: Switch) -> Notice:
    """The notice a refusal is reported on: ``source`` = the exchange's owner by name
    (``xs_<owner>[_<suffix>]``, declared or not), never the poster's claim, so a refusal
    report cannot reach the claimed source."""
    owner = exchange[3:].partition("_")[0] if exchange.startswith("xs_") else ""
    return notice.with_headers(source=owner or None, from_cluster=sw.cluster)


def clusters(notice: Notice) -> Tuple[str, ...]:
    return tuple(c.strip() for c in notice.headers.get("to_clusters", "").split(",") if c.strip())


def relay(notice: Notice, sw: Switch) -> Notice:
    """Decide whether a post from another switch's ``xpublic`` passes here.

    Raises:
        Refused: a loop (from this switch, or this switch's own re-post), or not
            addressed to a cluster this switch serves.
    """
    if notice.headers.get("from_cluster", "") in sw.names:
        raise Refused(f"loop: from_cluster {notice.headers['from_cluster']!r} is this switch",
                      508, "Loop Detected : from_cluster is local")  # fmt: skip
    if sw.base_url and notice.baseurl == sw.base_url:
        raise Refused("loop: this switch's own post came back", 508, "Loop Detected")
    wanted = set(sw.serves)
    if "ALL" not in clusters(notice) and not wanted.intersection(clusters(notice)):
        raise Refused(f"to_clusters {notice.headers.get('to_clusters', '')!r} not served here",
                      403, "Forbidden : not for this cluster")  # fmt: skip
    check_post(notice, sw.posts_v02)
    return notice


@dataclass(frozen=True)
class Target:
    """Where the report router publishes a report: ``broker`` None means this switch."""

    exchange: str
    broker: Optional[str] = None


def report_target(report: Notice, exchange: str, sw: Switch) -> Target:
    """Next hop of a report read from ``exchange`` on this switch (spec 9.1, 9.6).

    Raises:
        Refused: a report in another user's exchange, on an unknown exchange, for a
            source that is not ours, or toward a cluster with no route.
    """
    if report.kind != "report" or report.report is None:
        raise Refused("not a report", 417)
    if exchange != REPORT_EXCHANGE:
        owner = owner_of(exchange, sw.sources + sw.subscribers)
        if owner is None:
            raise Refused(f"report read from {exchange!r}, not a user exchange")
        if report.report.user != owner:
            raise Refused(f"report by {report.report.user!r} in {owner!r}'s exchange")
        return Target(REPORT_EXCHANGE)
    origin = report.headers.get("from_cluster", "")
    source = report.headers.get("source", "")
    if not origin or origin in sw.names:
        if source in sw.sources:
            return Target(f"xr_{source}")
        raise Refused(f"report for {source!r}, not a source of this switch")
    url = sw.report_routes.get(origin) or sw.report_routes.get("*")
    if not url:
        raise Refused(f"no report_route toward cluster {origin!r}")
    return Target(REPORT_EXCHANGE, url)
