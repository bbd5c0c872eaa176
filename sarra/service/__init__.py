"""Running configurations as daemons: instances, pidfiles, signals, ``dd`` and status.

``instances`` starts, stops and checks the processes of one config through one OS seam
that tests replace; ``pidfile`` and ``signals`` are its parts; ``supervisor`` is the
``dd`` command (every config of every role); ``health`` is what ``dd status`` shows.

May import: ``core``, ``config``, ``logs``, ``broker`` (queue depth), ``flow`` (queue
names, interval counters).  Roles are loaded by name, never imported.
"""
