"""The session rooms' sink: after a write commits, its live events are queued for the room publisher.

The write answers without waiting for any socket: the room queue (SQS FIFO, one group per session)
hands a session's messages to the publisher (realtime/publisher.py) one batch at a time, in order.
Events of no session need no room: they are marked published at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

    from chalicelib.domain.changes import DomainEvent


class RoomSink:
    """One write transaction's part: collects the live events, queues them after commit."""

    def __init__(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        self.events: list[DomainEvent] = []

    def recorded(self, events: Sequence[DomainEvent], *, live: bool) -> None:
        if live:
            self.events.extend(events)

    def pending(self) -> bool:
        return bool(self.events)

    def committed(self) -> Callable[[], None] | None:
        return start_enqueue(self.events) if self.events else None


def enqueue(events: Sequence[DomainEvent]) -> None:
    """Queue the session events for their rooms; mark the others published. Never raises: what is
    not queued stays unpublished, and the minute sweep publishes it (realtime/sweep.py)."""
    start_enqueue(events)()


def start_enqueue(events: Sequence[DomainEvent]) -> Callable[[], None]:
    """`enqueue` with its queue request written now; the returned call (which never raises either)
    reads the answer, marks the roomless events published and logs what was not queued."""
    from chalicelib.realtime import room_queue
    from chalicelib.realtime.room_keys import room_of

    roomless = [event.id for event in events if not room_of(event)]
    try:
        pending = room_queue.start_send(room_queue.messages_for(events))
    except Exception:
        _not_queued(len(events))
        return lambda: None

    def answered() -> None:
        from chalicelib.observability import logger

        try:
            unsent = pending()
            if roomless:
                _mark_published(roomless)
        except Exception:
            _not_queued(len(events))
            return
        if unsent:
            logger().warning(
                "room events not queued; the sweep publishes them",
                extra={"events": [i for message in unsent for i in message.event_ids][:20]},
            )

    return answered


def _not_queued(count: int) -> None:
    from chalicelib.observability import logger

    logger().exception("queueing room events failed; the sweep publishes them", extra={"events": count})


def _mark_published(ids: list[int], conn: psycopg.Connection[dict[str, Any]] | None = None) -> None:
    from chalicelib.store.postgres import execute, transaction

    if conn is not None:
        execute(conn, "mark_published", {"ids": ids})
        return
    with transaction() as own:
        execute(own, "mark_published", {"ids": ids})


def publish(events: list[DomainEvent], conn: psycopg.Connection[dict[str, Any]] | None = None) -> bool:
    """Log committed events in their session rooms, fan them out, and mark them published (on `conn`
    when given: the caller's, which holds the rows' locks); False when publishing failed."""
    from chalicelib.observability import logger
    from chalicelib.realtime import broadcast

    try:
        broadcast.publish(events)
    except Exception:
        # The events stay unpublished: the queue retries the message, the sweep finds what is left.
        logger().exception("publishing domain events failed", extra={"events": [e.id for e in events]})
        return False
    _mark_published([e.id for e in events], conn)
    return True
