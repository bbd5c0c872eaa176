"""Announcing a local copy: what dd_sara, and a subscriber with ``post_broker``, post.

Once a file is in place, the notice sent on is about *this* copy, not the original: its
base URL is the one this host serves its tree under (``post_base_url``) and its relpath
the local file's path below ``post_base_dir``, as v2's sr_subscribe/sr_sarra and sr3's
subscribe/sarra announce it.  Everything else (checksum, parts, times, headers) is the
original's, so a downstream consumer verifies what it fetches against the source's sum.
Without ``post_base_url``, v2 announced ``file:`` URLs of the local path: so here.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Optional

from sarra.config.credentials import broker_user
from sarra.core.delivery import OK, Delivery
from sarra.core.errors import escape
from sarra.core.message import Notice, post_topic
from sarra.core.redaction import public_url

log = logging.getLogger(__name__)

Work = Callable[[Delivery], None]


class LocalCopy:
    """Sets ``post_notice`` of each delivery whose file is in place to the notice of the
    local copy (see the module docstring).

    ``base_url`` (None: ``file:/``, the local path) never carries a password into a post;
    ``base_dir`` (None: ``/``) is the directory that URL maps to.
    """

    def __init__(self, base_url: Optional[str], base_dir: Optional[str], prefix: str) -> None:
        self.base_url = public_url(base_url, "post_base_url") if base_url else "file:/"
        self.base_dir = os.path.abspath(os.path.expanduser(base_dir or "/"))
        self.prefix = prefix

    def __call__(self, d: Delivery) -> None:
        if d.outcome != OK or d.local_path is None:
            return
        # a block stored as a part file already has its downstream form (method p)
        d.post_notice = self.notice_for(d.post_notice or d.notice, str(d.local_path))

    def notice_for(self, n: Notice, local_path: str) -> Optional[Notice]:
        """The notice of the copy at ``local_path``; None (not announced, one warning
        line) when it is not below ``base_dir``, which ``post_base_url`` cannot reach."""
        path = os.path.abspath(local_path)
        rel = os.path.relpath(path, self.base_dir)
        if rel == os.pardir or rel.startswith(os.pardir + os.sep):
            log.warning(
                "%s is not below post_base_dir %s: not announced", escape(path, 200), self.base_dir
            )
            return None
        rel = rel.replace(os.sep, "/")
        topic = post_topic(rel, self.prefix)
        return n.replace(baseurl=self.base_url, relpath=rel, topic=topic).relayable()


def followed_by(work: Work, then: Optional[Work]) -> Work:
    """``work``, then ``then`` on the same delivery (``then`` None: ``work`` itself)."""
    if then is None:
        return work

    def both(d: Delivery) -> None:
        work(d)
        then(d)

    return both


def post_exchange(o: Any) -> str:
    """The exchange a poster posts to: ``post_exchange``, else ``xs_<post broker user>``;
    ``post_exchange_suffix`` appended (``xs_<user>_<suffix>``, as v2 and sr3)."""
    exchange = o.post_exchange or f"xs_{broker_user(o.post_broker)}"
    return f"{exchange}_{o.post_exchange_suffix}" if o.post_exchange_suffix else exchange
