"""The minute sweep: publishes domain events a failed publish left behind, finishes fan-outs a dead sender
left and closes sockets opened with a rotated JWT secret; and the rotation's own closing function."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalice import Chalice

    from chalicelib.domain.changes import DomainEvent

# A younger event may still be being published by the request that wrote it.
MIN_AGE_S = 30.0
BATCH_EVENTS = 200
# One run stops taking new batches after this long (the next run, a minute later, goes on).
BUDGET_S = 40.0
RECENT_EVENTS = 2000
RECENT_S = 600


def publish_left_over(min_age_s: float = MIN_AGE_S, limit: int = BATCH_EVENTS, budget_s: float = BUDGET_S) -> int:
    """Publish unpublished events older than `min_age_s`, oldest first; returns how many were published.

    Each batch is published while its rows are locked (FOR UPDATE SKIP LOCKED), so concurrent
    sweeps never take the same events, and marked published in that transaction. Rooms log each
    event once (connections.append_messages), so an event that its writer did get into the room
    before crashing is not sent twice.
    """
    from chalicelib.realtime.sink import publish
    from chalicelib.store.postgres import fetch_all, transaction

    published = 0
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        with transaction() as conn:
            rows = fetch_all(conn, "unpublished_events", {"min_age_s": min_age_s, "limit": limit})
            if not rows or not publish([event_of(row) for row in rows], conn):
                return published
        published += len(rows)
        if len(rows) < limit:
            return published
    return published


def finish_fan_outs() -> int:
    """Send what rooms that published lately have logged but no live sender is sending; returns
    how many rooms needed it."""
    from chalicelib.realtime import broadcast
    from chalicelib.store.postgres import fetch_all, transaction

    with transaction() as conn:
        rows = fetch_all(conn, "recently_published_sessions", {"recent": RECENT_EVENTS, "window_s": RECENT_S})
    finished = 0
    for row in rows:
        session_id = str(row["session_id"])
        if broadcast.pending(session_id):
            broadcast.deliver(session_id)
            finished += 1
    return finished


def sweep() -> dict[str, int]:
    from chalicelib.observability import logger
    from chalicelib.realtime.access import close_stale_secret

    done = {
        "published": publish_left_over(),
        "fanOutsFinished": finish_fan_outs(),
        # The backstop of a rotation (its trigger is the close_stale_connections function): a cold
        # container with the new secret closes the sockets the old one signed.
        "staleSecretClosed": close_stale_secret(),
    }
    if any(done.values()):
        logger().warning("room sweep caught up", extra=done)
    return done


def event_of(row: dict[str, Any]) -> DomainEvent:
    from chalicelib.domain.changes import DomainEvent

    return DomainEvent(
        id=int(row["id"]),
        account_id=str(row["account_id"]),
        type=row["type"],
        entity=row["entity"],
        op=row["op"],
        entity_id=str(row["entity_id"]) if row["entity_id"] else None,
        session_id=str(row["session_id"]) if row["session_id"] else None,
        data=row["data"],
        actor=row["actor"],
        created_at=row["created_at"],
    )


def register(app: Chalice) -> None:
    from chalice import Rate
    from chalice.app import CloudWatchEvent

    @app.schedule(Rate(1, unit=Rate.MINUTES), name="room_sweep")
    def room_sweep(event: CloudWatchEvent) -> None:
        sweep()

    @app.lambda_function(name="close_stale_connections")
    def close_stale_connections(event: dict[str, Any], context: Any) -> dict[str, int]:
        """Invoked by the JWT secret rotation (docs/runbook.md): closes the sockets the old secret signed."""
        from chalicelib.realtime.access import close_stale_secret

        return {"closed": close_stale_secret()}
