"""The pool of open transfers a work step reuses (keep-alive), and their limits.

Owns :class:`TransferPool`: one open transfer per server, each given the download
:class:`~sarra.transfer.limits.Limits` and, where an SSRF policy applies
(``sarra.core.fetchpolicy``), the :class:`~sarra.transfer.netguard.Guard` of the source whose
notice is being worked on (:attr:`TransferPool.source`).  Transfers are kept per source
under a policy, so a connection one source was allowed to open never serves another.
With a :class:`~sarra.transfer.bandwidth.Bandwidth`, each transfer handed out carries the
pacing of its server and of that source (``Transfer.pacing``), and reads no more than a
grant at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from sarra.transfer import CredentialLookup, Transfer, for_url, pool_key
from sarra.transfer.limits import Limits

if TYPE_CHECKING:  # imported where a policy is used: dd_post never needs ipaddress
    from sarra.core.fetchpolicy import FetchPolicy
    from sarra.transfer.bandwidth import Bandwidth

__all__ = ["TransferPool"]

_Key = tuple[Any, ...]


class TransferPool:
    """Keeps one open transfer per ``(scheme, user, host, port)`` for reuse (keep-alive).

    With a ``policy``, per ``(source, scheme, user, host, port)``: set :attr:`source`
    before getting the transfers of a notice.  Not thread-safe: use one pool per
    process or thread.  ``close_all`` closes them all.  ``bandwidth``: the budgets its
    transfers draw on; ``total`` False leaves the config's total out (dd_sender's
    fetches: its total is for what it sends).
    """

    def __init__(
        self,
        *,
        credentials: CredentialLookup | None = None,
        timeout: float = 30,
        options: Mapping[str, Any] | None = None,
        registry: Mapping[str, str | type[Transfer]] | None = None,
        limits: Limits | None = None,
        policy: FetchPolicy | None = None,
        bandwidth: Bandwidth | None = None,
        total: bool = True,
    ) -> None:
        self._credentials = credentials
        self._timeout = timeout
        self._options = dict(options or {})
        self._registry = registry
        self._limits = limits
        self._policy = policy
        self._bandwidth = bandwidth if bandwidth else None
        self._total = total
        #: The source whose notice is being worked on (its SSRF policy applies).
        self.source: str | None = None
        self._open: dict[_Key, Transfer] = {}
        self._by_url: dict[tuple[str | None, str], Transfer] = {}  # the same baseurl recurs

    def __len__(self) -> int:
        return len(self._open)

    def __enter__(self) -> TransferPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_all()

    def get(self, baseurl: str) -> Transfer:
        """Return the pooled transfer for ``baseurl``'s server, creating it if needed.

        Raises:
            TransferError: unknown scheme.
        """
        scope = self.source if self._policy is not None else None
        transfer = self._by_url.get((scope, baseurl))
        if transfer is not None:
            return self._paced(transfer, baseurl)
        key = (scope, *pool_key(baseurl))
        transfer = self._open.get(key)
        if transfer is None:
            transfer = for_url(
                baseurl,
                credentials=self._credentials,
                timeout=self._timeout,
                options=self._options,
                registry=self._registry,
            )
            if self._limits is not None:
                transfer.limits = self._limits
            if self._policy is not None:
                from sarra.transfer.netguard import Guard

                transfer.guard = Guard.for_source(self._policy, scope)
            self._open[key] = transfer
        if len(self._by_url) >= 1000:
            self._by_url.clear()
        self._by_url[(scope, baseurl)] = transfer
        return self._paced(transfer, baseurl)

    def _paced(self, transfer: Transfer, baseurl: str) -> Transfer:
        """``transfer`` with the pacing of ``baseurl``'s server and the current source."""
        if self._bandwidth is not None:
            pacing = self._bandwidth.pacing(baseurl, self.source, self._total)
            transfer.pacing = pacing
            default = type(transfer).chunk_size
            transfer.chunk_size = min(default, pacing.piece) if pacing else default
        return transfer

    def close_all(self) -> None:
        """Close every pooled transfer and forget them."""
        self._by_url.clear()
        while self._open:
            _, transfer = self._open.popitem()
            transfer.close()
