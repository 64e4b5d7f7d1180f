"""The session rooms' sink: after a write commits, its live events are pushed to their rooms and marked published."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

    from chalicelib.domain.changes import DomainEvent


class RoomSink:
    """One write transaction's part: collects the live events, publishes them after commit."""

    def __init__(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        self.events: list[DomainEvent] = []

    def recorded(self, events: Sequence[DomainEvent], *, live: bool) -> None:
        if live:
            self.events.extend(events)

    def committed(self) -> None:
        if self.events:
            publish(self.events)


def publish(events: list[DomainEvent], conn: psycopg.Connection[dict[str, Any]] | None = None) -> bool:
    """Push committed events to their session rooms and mark them published (on `conn` when given:
    the sweep's, which holds the rows' locks); False when publishing failed."""
    from chalicelib.observability import logger
    from chalicelib.realtime import broadcast
    from chalicelib.store.postgres import execute, transaction

    try:
        broadcast.publish(events)
    except Exception:
        # The write is committed; the sweep publishes whatever this missed.
        logger().exception("publishing domain events failed", extra={"events": [e.id for e in events]})
        return False
    if conn is not None:
        execute(conn, "mark_published", {"ids": [e.id for e in events]})
        return True
    with transaction() as own:
        execute(own, "mark_published", {"ids": [e.id for e in events]})
    return True
