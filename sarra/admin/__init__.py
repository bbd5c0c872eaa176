"""dd_admin: switch users, their permissions and the switch's own configs.

``users`` (users and permissions through the RabbitMQ management API), ``switchconf``
(the ingest, relay and report-router configs a switch runs, written from admin.conf),
``command`` (the dd_admin command line).

May import: ``core``, ``config``, ``broker`` (URL parsing).
"""
