"""Configuration: the option table, the config-file loader, credentials and paths.

``options`` is the one table of options (name, v2/sr3 aliases, converter, default,
help) that the parser, ``--help``, the man page and validation all read, with its
``converters`` (config text to value); ``typed`` declares each option's type, generated
from the table (``tools/gen-typed-options``); ``loader`` reads config files (include,
variables, scoped accept/reject) into one read-only ``Options`` that has every option,
typed; ``credentials`` reads ``credentials.conf``; ``paths`` maps a role and config to
its XDG (or system) directories.

May import: ``sarra.core``.  Nothing that touches a broker or a server.
"""
