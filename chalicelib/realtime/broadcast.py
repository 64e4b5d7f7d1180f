"""Publishing committed domain events to session rooms: `{"type","sessionId","seq","data"}` per member."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.realtime import push
from chalicelib.store import connections

if TYPE_CHECKING:
    from chalicelib.domain.changes import DomainEvent


def publish(events: list[DomainEvent]) -> None:
    """Send each event that belongs to a session to that session's room, in order."""
    for event in events:
        if not event.session_id:
            continue
        seq = connections.next_seq(event.session_id)
        message = {"type": event.type, "sessionId": event.session_id, "seq": seq, "data": event.data}
        for member in connections.members(event.session_id):
            if not push.send(member["connectionId"], message):
                connections.forget_connection(member["connectionId"])
