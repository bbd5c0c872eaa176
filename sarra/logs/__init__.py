"""What people read: log setup, the daemon's log file handler, the progress line.

``setup`` configures ``logging`` for commands and daemons (redacting and escaping
filters, rotation); ``handler`` is the daemon's file handler; ``progress`` draws the
one progress line of a transfer on a terminal and keeps the broker's heartbeat going
while it runs; ``units`` formats sizes, rates and durations for people.

May import: ``sarra.core``, ``sarra.config``.
"""
