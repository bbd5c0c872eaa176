"""The per-message error boundary: what an exception raised for one message means.

Nothing that goes wrong with one message may stop a daemon.  ``outcome_of`` maps any
``Exception`` raised by a step of the flow (filter, hooks, work, post hooks) to the
delivery's outcome; only ``ConnectionLost`` (the whole batch is void) goes through.

============================  ==========================================================
error                         outcome
============================  ==========================================================
``PathError``                 rejected, report 403 (the path is refused)
``MessageError``              rejected, report 417 (malformed notice)
``TransferError``             failed, retried unless ``permanent`` (its own code)
``OSError``, transient errno  failed, retry queue with back-off (503): ENOSPC, EMFILE,
                              EIO, EAGAIN, EDQUOT, ENOMEM, EBUSY... (``sarra.core.errors``)
``OSError``, permanent errno  failed for good: one line, a report (403 for EACCES, EPERM,
                              EROFS; 400 for ENAMETOOLONG, ENOTDIR, EISDIR, ELOOP...), ack
``HookError`` of a script     failed, retried (503), as a transfer
anything else                 *unexpected*: one traceback (error level), failed (500),
                              parked in the retry queue; given up after ``MAX_FAULTS``
                              such errors (counted in the retry entry, so across restarts)
============================  ==========================================================

A hook raising an ordinary Python exception (``HookError`` whose cause is not a sarra
error nor an ``OSError``) and an ``OSError`` with an errno of neither list are
unexpected too.  A *hard* crash (the process killed with a message in hand) is handled
by ``sarra.flow.inhand``.
"""

from __future__ import annotations

import logging

from sarra.core.delivery import Delivery
from sarra.core.errors import (
    ConnectionLost,
    HookError,
    MessageError,
    PathError,
    SarraError,
    TransferError,
    escape,
    oserror_class,
    oserror_code,
    oserror_text,
)

log = logging.getLogger("sarra.flow.engine")

#: unexpected errors of one message after which it is given up (the first attempt and
#: two retries); the count lives in its retry entry, so it survives restarts
MAX_FAULTS = 3


def outcome_of(d: Delivery, e: Exception, step: str) -> None:
    """Set ``d``'s outcome from ``e``, raised by ``step`` ("filter", "work", "on_post").

    Raises:
        ConnectionLost: ``e`` itself: the batch is void, nothing of it is acknowledged.
    """
    if isinstance(e, ConnectionLost):
        raise e
    if isinstance(e, PathError):
        d.reject(str(e), code=403, text=f"Forbidden : {e}")
    elif isinstance(e, MessageError):
        d.reject(str(e), code=417, text="Expectation Failed : malformed message")
    elif isinstance(e, TransferError):
        d.fail(str(e), code=e.code, permanent=e.permanent)
    elif isinstance(e, HookError) and not _unexpected_cause(e):
        d.fail(str(e), code=503)
    elif isinstance(e, OSError) and oserror_class(e) != "unknown":
        code = oserror_code(e)
        d.fail(f"{step}: {oserror_text(e)}", code, permanent=oserror_class(e) == "permanent")
        d.report = (code, f"{step}: {oserror_text(e, limit=0)}")  # no local path in reports
    else:
        unexpected(d, e, step)


def unexpected(d: Delivery, e: BaseException, step: str) -> None:
    """A bug, or a hook raising: park the message (500).  The traceback is logged at its
    first such error only; later attempts log one line."""
    cause = e.__cause__ if isinstance(e, HookError) and e.__cause__ is not None else e
    what = escape(e, 300) if cause is not e else f"{type(e).__name__}: {escape(e, 200)}"
    log.error(
        "unexpected error in the %s step of %s: %s%s",
        step,
        d.describe(),
        what,
        "" if d.faults else "\n" + _traceback(cause),
    )
    d.fail(f"unexpected error in the {step} step: {what}", code=500)
    d.report = (500, f"unexpected error in the {step} step: {type(cause).__name__}")
    d.unexpected = True


def _traceback(e: BaseException) -> str:
    """``e``'s traceback, each line escaped (an exception's text may hold hostile bytes)."""
    import traceback

    lines = "".join(traceback.format_exception(type(e), e, e.__traceback__)).splitlines()
    return "\n".join(escape(line, 1000) for line in lines[-200:])


def _unexpected_cause(e: HookError) -> bool:
    """True when a hook raised an ordinary exception (a bug in it), not a known failure."""
    cause = e.__cause__
    if cause is None or isinstance(cause, (SarraError, OSError)):
        return False
    return type(cause).__module__ != "subprocess"  # a script's timeout is no bug
