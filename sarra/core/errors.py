"""Exception hierarchy of sarra.

Library code raises these; the two boundaries (the per-message step in ``flow`` and
``cli.main``) catch them.  Adapters translate third-party exceptions (pika, requests,
paramiko) into these types with ``raise ... from e`` so that nothing above an adapter
needs to know which library sits below it.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence


class SarraError(Exception):
    """Base class of every error raised by sarra."""


class ConfigError(SarraError):
    """A configuration file, option value or command line is wrong.

    ``where`` is ``"file:line"`` when the error comes from a file, else ``""``.
    """

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.reason = message


class CredentialsError(ConfigError):
    """The credentials file is unsafe (permissions) or unreadable."""


class MessageError(SarraError):
    """A v02 message cannot be decoded, or a notice cannot be encoded."""


class BrokerError(SarraError):
    """Something went wrong talking to the AMQP broker."""


class ConnectionLost(BrokerError):
    """The broker connection (or channel) closed; the caller may reconnect.

    ``unconfirmed`` holds the published messages (``sarra.broker.connection.Outgoing``) that were
    awaiting a confirm and went down with the connection: the caller names them, as
    their fate is unknown.  Empty when nothing was published.
    """

    def __init__(self, message: str, unconfirmed: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.unconfirmed: list[Any] = list(unconfirmed)


class AccessRefused(BrokerError):
    """The broker refused an operation or a login (permissions, credentials).

    Never retried: it is a configuration problem, not a transient one.  ``refused``
    holds the publishes (``sarra.broker.connection.Outgoing``) that went down with a channel the
    broker closed on a refused publish; None when no publish was refused (a login).
    """

    def __init__(self, message: str, refused: Optional[Sequence[Any]] = None) -> None:
        super().__init__(message)
        self.refused: Optional[list[Any]] = None if refused is None else list(refused)


class PublishFailed(BrokerError):
    """The broker nacked (or returned) a published message."""


class TransferError(SarraError):
    """A file transfer failed.

    ``permanent`` is True when retrying cannot help (404, permission denied, a server
    that ignores byte ranges); ``code`` is the v02 report code to send.
    """

    def __init__(self, message: str, *, permanent: bool = False, code: int = 499) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


class ChecksumMismatch(TransferError):
    """Received bytes do not match the announced checksum."""

    def __init__(self, message: str, *, expected: str = "", actual: str = "") -> None:
        super().__init__(message, permanent=False, code=499)
        self.expected = expected
        self.actual = actual


class PathError(SarraError):
    """A relative path would escape its target directory, or cannot be carried."""


class HookError(SarraError):
    """A plugin hook or trigger script failed."""


# --------------------------------------------------------------- local OS errors by errno
# What one message's work can meet on the local disk (or in a socket below a transfer
# that let an OSError through).  Transient: the same message may succeed later, so it
# goes to the retry queue with back-off.  Permanent: the same message will fail the same
# way (the name is too long, a parent is a file, the tree is read-only), so it is
# reported and acknowledged at once.  Any other errno is handled as unexpected (a few
# attempts, then given up), never as a reason to stop the daemon.
def _errnos(*names: str) -> frozenset:
    import errno

    return frozenset(getattr(errno, n) for n in names if hasattr(errno, n))


TRANSIENT_ERRNOS = _errnos(
    "ENOSPC", "EDQUOT", "EMFILE", "ENFILE", "EIO", "EAGAIN", "EWOULDBLOCK", "ENOMEM",
    "EBUSY", "EINTR", "ETXTBSY", "ESTALE", "ENOENT", "ENOBUFS", "ETIMEDOUT", "EPIPE",
    "ECONNRESET", "ECONNREFUSED", "ECONNABORTED", "EHOSTUNREACH", "ENETUNREACH",
    "ENETDOWN", "ENETRESET", "EHOSTDOWN", "EREMOTEIO", "ENOLCK", "ECANCELED",
)  # fmt: skip
PERMANENT_ERRNOS = _errnos(
    "ENAMETOOLONG", "ENOTDIR", "EISDIR", "EACCES", "EPERM", "EROFS", "ELOOP", "EEXIST",
    "EINVAL", "EXDEV", "ENOTEMPTY", "EFBIG", "EMLINK", "ENOTSUP", "EOPNOTSUPP", "EILSEQ",
    "ENODEV", "ENXIO", "ERANGE", "EOVERFLOW",
)  # fmt: skip
#: permanent errnos reported as 403 (refused); the other permanent ones are 400
_REFUSED_ERRNOS = _errnos("EACCES", "EPERM", "EROFS")


def oserror_class(e: OSError) -> str:
    """``"transient"``, ``"permanent"`` or ``"unknown"`` for a local ``OSError``.

    A ``TimeoutError`` without an errno is transient (a socket timeout).
    """
    if e.errno in TRANSIENT_ERRNOS or (e.errno is None and isinstance(e, TimeoutError)):
        return "transient"
    if e.errno in PERMANENT_ERRNOS:
        return "permanent"
    return "unknown"


def oserror_code(e: OSError) -> int:
    """The v02 report code of a local ``OSError`` (see :func:`oserror_class`)."""
    cls = oserror_class(e)
    if cls == "transient":
        return 503
    if cls == "permanent":
        return 403 if e.errno in _REFUSED_ERRNOS else 400
    return 500


def oserror_text(e: OSError, limit: int = 200) -> str:
    """``"ENAMETOOLONG (File name too long): 'a/b'"``: the errno's name, its text, and the
    file name(s) escaped and cut to ``limit`` characters (none with 0), safe for one log line."""
    import errno

    name = errno.errorcode.get(e.errno or 0, type(e).__name__)
    text = f"{name} ({e.strerror or e})"
    for f in (e.filename, e.filename2):
        if f is not None and limit > 0:
            f = os.fsdecode(f) if isinstance(f, bytes) else str(f)
            text += f": {escape(f, limit)}"
    return text


def escape(text: object, limit: int = 200) -> str:
    """``text`` safe for one log line: control characters (C0, DEL, C1, line and paragraph
    separators, lone surrogates) as ``\\xNN``/``\\uNNNN``, backslashes doubled, and cut
    to ``limit`` characters (``...(+N)`` says how many were cut).  Linear in ``limit``."""
    s = text if isinstance(text, str) else str(text)
    cut = len(s) - limit if len(s) > limit else 0
    if cut:
        s = s[:limit]
    out = []
    for ch in s:
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif o < 0x20 or 0x7F <= o < 0xA0 or o in (0x2028, 0x2029) or 0xD800 <= o < 0xE000:
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}")
        else:
            out.append(ch)
    return "".join(out) + (f"...(+{cut})" if cut else "")
