"""The pure core: what a notice is and the rules about it, with no I/O.

The notice model (``notice``), the codecs of v02 (``v02``) and v03 (``v03``) behind one
facade (``message``), checksums, the partition of large files into blocks, timestamps,
routing rules of a switch, fetch policy (which hosts a notice may name), URL redaction,
the error hierarchy, ``seams`` (when a speed trick may use a dependency's internals) and
``Delivery`` (one message in hand with its local state).  Everything here is a pure
function or a small value class, so it is tested without a broker, a server or a disk.

May import: the standard library only.  Never a network library (pika, requests,
paramiko, urllib3, ftplib), watchdog, sqlite3, nor any other ``sarra`` package: every
other layer imports this one.
"""
