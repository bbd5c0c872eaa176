"""The local file tree: every file a notice makes us write, link or remove.

``safefs`` walks directories one name at a time below the configured root (O_NOFOLLOW,
links followed only while inside the tree), creates files O_EXCL, replaces final names
only by rename; ``placement`` turns a notice into the place of its file (mirror, strip,
flatten, ``directory`` templates); ``partstate`` keeps the state of a file assembled
from parts.  Nothing else builds a filesystem path from a notice.

May import: ``sarra.core``, ``sarra.config``, ``sarra.transfer`` (URL paths only).
"""
