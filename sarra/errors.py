"""Exception hierarchy of sarra.

Library code raises these; the two boundaries (the per-message step in ``flow`` and
``cli.main``) catch them.  Adapters translate third-party exceptions (pika, requests,
paramiko) into these types with ``raise ... from e`` so that nothing above an adapter
needs to know which library sits below it.
"""

from __future__ import annotations


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
    """The broker connection (or channel) closed; the caller may reconnect."""


class AccessRefused(BrokerError):
    """The broker refused an operation or a login (permissions, credentials).

    Never retried: it is a configuration problem, not a transient one.
    """


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
