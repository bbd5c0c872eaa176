"""What ``sarra.watch.watcher`` asks of watchdog where its versions differ: the events.

When the kernel's inotify queue overflows, events are lost, and only a rescan of the
trees catches up.  watchdog 7.1.1 says so with a public event, ``EventsLostEvent``
(``event_type`` "events_lost", one per watch), delivered to a watch whose
``event_filter`` lists it; :func:`event_filter` lists it when this watchdog has it.
Older versions never say so: up to 7.0 the overflow is dropped in silence, and 7.1.0
only writes a log line.  sarra used to notice that log line by matching its text, a
private detail any rewording breaks; that trick is gone (the public event replaces it
where it exists).  With a watchdog without the event, an overflow goes unnoticed, as
it always did before 7.1: :func:`describe` says so in the debug log at start.

watchdog is imported when a watch starts, not with this module: dd_post imports the
watch package without watching anything.
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["LOST", "describe", "event_filter", "lost_event_class"]

#: ``event_type`` of watchdog's ``EventsLostEvent``
LOST = "events_lost"


def lost_event_class(events: object = None) -> Optional[type]:
    """watchdog's ``EventsLostEvent`` class, or None when this watchdog has none.

    ``events`` stands for the ``watchdog.events`` module (tests pass their own).
    """
    if events is None:
        from watchdog import events as installed

        events = installed
    cls = getattr(events, "EventsLostEvent", None)
    return cls if isinstance(cls, type) and getattr(cls, "event_type", None) == LOST else None


def event_filter(polling: bool, events: object = None) -> list:
    """The watchdog event classes a watch asks for: complete files, creations, removals,
    renames; modifications only when polling; lost events when watchdog reports them."""
    if events is None:
        from watchdog import events as installed

        events = installed
    we: Any = events
    wanted = [we.FileClosedEvent, we.FileCreatedEvent, we.FileDeletedEvent, we.FileMovedEvent]
    wanted += [we.DirCreatedEvent, we.DirDeletedEvent, we.DirMovedEvent]
    if polling:
        wanted.append(we.FileModifiedEvent)
    lost = lost_event_class(events)
    return wanted + [lost] if lost is not None else wanted


def describe(events: object = None) -> str:
    """One line for the debug log: how an inotify queue overflow is noticed, if at all."""
    from watchdog.version import VERSION_STRING

    if lost_event_class(events) is not None:
        return f"watchdog {VERSION_STRING}: an inotify overflow rescans (EventsLostEvent)"
    return (
        f"watchdog {VERSION_STRING}: no EventsLostEvent (watchdog < 7.1.1): "
        "an inotify queue overflow would go unnoticed"
    )
