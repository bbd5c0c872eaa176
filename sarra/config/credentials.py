"""The credentials file: passwords and keys kept out of config files, and out of logs.

``<config_dir>/credentials.conf`` holds one URL per line, with its password, optionally
followed by options separated by commas or blanks (v2 format)::

    amqps://alice:s3cret@broker.example.com/
    sftp://bob@files.example.com/ ssh_keyfile=/home/bob/.ssh/id_ed25519,known_hosts=/etc/kh
    ftp://carol:pw@ftp.example.com/ passive,binary

The file must be readable by its owner only (``chmod 600``).  Config files then name the
URL without the password and :meth:`Credentials.resolve` fills it in.  Nothing in this
module ever puts a password in a ``repr``, a ``str`` or an error message; use
:func:`sarra.core.redaction.redact_url` / :func:`sarra.core.redaction.redact` before logging any
URL.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Iterator, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from sarra.core.errors import CredentialsError
from sarra.core.redaction import redact_url

log = logging.getLogger(__name__)

SCHEMES = ("amqp", "amqps", "http", "https", "sftp", "ftp", "ftps")
DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671, "http": 80, "https": 443, "sftp": 22}
DEFAULT_PORTS.update({"ftp": 21, "ftps": 21})
FLAG_OPTIONS = ("passive", "binary", "tls", "prot_p")
PATH_OPTIONS = ("ssh_keyfile", "known_hosts")


def broker_user(url: Optional[str], default: str = "anonymous") -> str:
    """The user name of a broker URL as written (still %-encoded), or ``default``.

    It names the user's exchanges (``xs_<user>``, ``xr_<user>``), queues
    (``q_<user>.<program>.<config>``) and the file remembering a queue; kept encoded,
    it can never put a ``/`` into that file's name.
    """
    return (urlsplit(url).username if url else None) or default


def _port(parts: SplitResult) -> int | None:
    return parts.port or DEFAULT_PORTS.get(parts.scheme.lower())


@dataclass(frozen=True, repr=False)
class Credential:
    """One line of the credentials file.  ``url`` includes the password: never log it."""

    url: str
    user: str | None
    password: str | None
    keyfile: str | None = None
    options: Mapping[str, Union[str, bool]] = field(default_factory=lambda: MappingProxyType({}))

    def __repr__(self) -> str:
        extra = f", keyfile={self.keyfile!r}" if self.keyfile else ""
        return f"Credential({redact_url(self.url)!r}{extra}, options={dict(self.options)!r})"

    def __str__(self) -> str:
        return redact_url(self.url)

    @property
    def passive(self) -> bool:
        """FTP passive mode."""
        return bool(self.options.get("passive"))

    @property
    def binary(self) -> bool:
        """FTP binary transfers."""
        return bool(self.options.get("binary"))

    @property
    def tls(self) -> bool:
        """FTP over explicit TLS."""
        return bool(self.options.get("tls"))

    @property
    def prot_p(self) -> bool:
        """FTPS protected (encrypted) data channel."""
        return bool(self.options.get("prot_p"))

    @property
    def known_hosts(self) -> str | None:
        """SSH known_hosts file for this host, if given."""
        value = self.options.get("known_hosts")
        return value if isinstance(value, str) else None

    def matches(self, url: str) -> bool:
        """True when ``url`` has this entry's scheme, host and port, and its user (if any)."""
        mine, other = urlsplit(self.url), urlsplit(url)
        if mine.scheme.lower() != other.scheme.lower():
            return False
        if (mine.hostname or "") != (other.hostname or "") or _port(mine) != _port(other):
            return False
        return other.username is None or unquote(other.username) == self.user


def parse_line(line: str, where: str = "") -> Credential:
    """Parse one ``url [options]`` line.

    Raises:
        CredentialsError: bad or unsupported URL, unknown option (password never shown).
    """
    url, _, rest = line.strip().partition(" ")
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        raise CredentialsError(f"bad URL {shown!r}", where) from None
    if parts.scheme.lower() not in SCHEMES or not parts.hostname:
        raise CredentialsError(f"bad URL {shown!r} (schemes: {', '.join(SCHEMES)})", where)
    options: dict = {}
    for word in re.split(r"[,\s]+", rest.strip()):
        if not word:
            continue
        key, sep, value = word.partition("=")
        if key in FLAG_OPTIONS and not sep:
            options[key] = True
        elif key in PATH_OPTIONS and sep and value:
            options[key] = os.path.expanduser(value)
        else:
            raise CredentialsError(f"unknown option {word!r} for {shown!r}", where)
    return Credential(
        url=url,
        user=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        keyfile=options.get("ssh_keyfile"),  # type: ignore[arg-type]
        options=MappingProxyType(options),
    )


class Credentials:
    """The entries of one credentials file, in file order."""

    def __init__(self, entries: Sequence[Credential] = (), source: str = "") -> None:
        self._entries: Tuple[Credential, ...] = tuple(entries)
        self.source = source

    @classmethod
    def parse(cls, text: str, source: str = "") -> Credentials:
        """Parse file content (no permission check).

        Raises:
            CredentialsError: a bad line (``where`` = ``source:line``).
        """
        entries: List[Credential] = []
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if line and not line.startswith("#"):
                entries.append(parse_line(line, f"{source}:{number}" if source else ""))
        return cls(entries, source)

    @classmethod
    def load(cls, path: Union[str, Path]) -> Credentials:
        """Read ``path``; a missing file gives no entries.

        Raises:
            CredentialsError: the file is accessible by group or others, unreadable, or
                has a bad line.
        """
        path = Path(path)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            return cls((), str(path))
        except OSError as e:
            raise CredentialsError(f"cannot read {path}: {e.strerror}") from None
        if stat.S_IMODE(mode) & 0o077:
            raise CredentialsError(
                f"{path} is accessible by group or others (mode {stat.S_IMODE(mode):o}); "
                f"fix it with: chmod 600 {path}"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise CredentialsError(f"cannot read {path}: {e}") from None
        return cls.parse(text, str(path))

    def __iter__(self) -> Iterator[Credential]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Credentials({len(self._entries)} entries from {self.source!r})"

    def lookup(self, url: str) -> Credential | None:
        """The first entry for ``url``'s scheme, host, port and user (any user if none given)."""
        try:
            urlsplit(url).port  # noqa: B018
        except ValueError:
            return None
        return next((entry for entry in self._entries if entry.matches(url)), None)

    def resolve(self, url: str) -> str:
        """Return ``url`` with user and password filled in from the file.

        A URL that already has a password, or that no entry matches, comes back unchanged.
        """
        parts = urlsplit(url)
        if parts.password is not None:
            return url
        entry = self.lookup(url)
        if entry is None or (entry.password is None and parts.username is not None):
            return url
        userinfo = urlsplit(entry.url).netloc.rpartition("@")[0]
        if not userinfo:
            return url
        hostport = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{hostport}"))
