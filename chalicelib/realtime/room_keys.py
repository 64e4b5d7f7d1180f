"""Room keys: which room hears a committed domain event, and how frames and joins name that room.

A session room's key is the session id (as it always was). An event room's key is `event:<event id>`:
it carries what belongs to an event but to no one session's screens, the team board's cards tied to an
event and the event's strategy plan, so every screen of the account on that event sees them live. The
room log, the room queue (one FIFO group per room) and the publisher take any key; only here is the
kind of room told apart.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.domain.changes import DomainEvent

EVENT_PREFIX = "event:"
# Entities an event's screens follow: a board card with an event goes to the event room (even when it
# also names a session: the board shows it under its event), strategy always does.
EVENT_ROOM_ENTITIES = frozenset({"board_card", "strategy"})


def event_room(event_id: str) -> str:
    return EVENT_PREFIX + event_id


def room_of(event: DomainEvent) -> str | None:
    """The room that hears `event`, or None (no room: published at once)."""
    data = event.data if isinstance(event.data, dict) else {}
    if event.entity in EVENT_ROOM_ENTITIES and isinstance(data.get("eventId"), str):
        return event_room(data["eventId"])
    return event.session_id


def fields(room: str) -> dict[str, Any]:
    """How frames name the room: `{"sessionId": ...}` or `{"eventId": ...}`."""
    if room.startswith(EVENT_PREFIX):
        return {"eventId": room[len(EVENT_PREFIX) :]}
    return {"sessionId": room}


def parse(value: Any) -> str | None:
    """A room key from a queue message, normalised, or None when it is not one."""
    if not isinstance(value, str):
        return None
    prefix = EVENT_PREFIX if value.startswith(EVENT_PREFIX) else ""
    try:
        return prefix + str(uuid.UUID(value[len(prefix) :]))
    except ValueError:
        return None
