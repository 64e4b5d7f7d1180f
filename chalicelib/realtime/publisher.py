"""The room publisher: the room queue's SQS handler. Numbers, logs and fans out each session's events in queue order.

SQS FIFO hands a session's messages out one batch at a time, in the order they were queued, so
seq follows that order without any lease between writers (the room's turn now only keeps a join's
or resume's answer in order with the pushes). A session's messages of one batch are published
together (one turn, one log transaction, one fan-out round); if that fails, all of them are
reported as failed, so no later one overtakes an earlier one; other sessions' messages go on. A
round also takes the events its session committed since, whose messages are still queued behind
it (`waiting`): those messages then find nothing left to publish.
After `maxReceiveCount` tries a message goes to the DLQ and the minute sweep publishes its events
(they stay unpublished in PostgreSQL).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.observability import logger
from chalicelib.realtime.room_queue import PAGE_EVENTS, RoomMessage

if TYPE_CHECKING:
    import psycopg

    from chalicelib.domain.changes import DomainEvent


def handle(
    event: dict[str, Any], context: Any = None, publish: Callable[[RoomMessage], bool] | None = None
) -> dict[str, Any]:
    """One batch of room queue records -> `batchItemFailures` (Lambda's ReportBatchItemFailures);
    `publish` is what publishes one message (default: `publish_message`)."""
    from chalicelib.realtime import room_queue

    publish = publish or publish_message

    # A session's messages of the batch are published together, in queue order: one turn, one log
    # transaction and one fan-out round for all of them (a busy room's backlog drains ten at a time).
    sessions: dict[tuple[str, str], list[tuple[str, RoomMessage]]] = {}
    for record in event.get("Records", []):
        message_id = record.get("messageId", "")
        message = room_queue.parse(record.get("body", ""))
        if message is None:
            logger().error("room queue message is not ours; dropped", extra={"messageId": message_id})
            continue
        group = record.get("attributes", {}).get("MessageGroupId") or message.session_id
        sessions.setdefault((group, message.session_id), []).append((message_id, message))
    failed: list[str] = []
    for (_, session_id), items in sessions.items():
        together = RoomMessage(session_id, tuple(i for _, message in items for i in message.event_ids))
        if not publish(together):
            failed += [message_id for message_id, _ in items]  # none of the session's later ones overtakes
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


def in_wire_order(event: DomainEvent) -> DomainEvent:
    """The event with its data's fields in the API's order (PostgreSQL's jsonb reorders them), as
    the write recorded it: the resource's fields first, then any others."""
    import dataclasses

    resource = _resources().get(event.entity)
    if resource is None or not isinstance(event.data, dict):
        return event
    names = [f.name for f in resource.fields if f.name in event.data]
    ordered = {name: event.data[name] for name in names} | event.data
    return dataclasses.replace(event, data=ordered)


@functools.cache
def _resources() -> dict[str, Any]:
    from chalicelib.domain import records

    return {r.name: r for r in vars(records).values() if isinstance(r, records.Resource)}


def publish_message(message: RoomMessage) -> bool:
    """Publish the still unpublished events of one room message (a redelivery or the sweep may have
    published some: the room logs an event once), and those its room committed since (`waiting`);
    False when it must be retried."""
    from chalicelib.realtime.room_keys import room_of
    from chalicelib.realtime.sink import publish as publish_events
    from chalicelib.realtime.sweep import event_of
    from chalicelib.store.postgres import fetch_all, transaction

    try:
        with transaction() as conn:
            ids = [*message.event_ids, *waiting(conn, message)]
            rows = fetch_all(conn, "room_events_to_publish", {"ids": ids})
            events = [event for event in map(event_of, rows) if room_of(event) == message.session_id]
            return not events or publish_events([in_wire_order(event) for event in events], conn)
    except Exception:
        logger().exception("room message not published; it is retried", extra={"session_id": message.session_id})
        return False


def waiting(conn: psycopg.Connection[dict[str, Any]], message: RoomMessage) -> list[int]:
    """Ids of the other committed, unpublished events of the message's session room (up to a
    message's page in all). Four engineers writing at once send four messages to one FIFO group:
    the first took a round alone and the other three waited for it, then took the next. Read ahead,
    the first round sends all four; the later messages find their events published and end at once.
    The order is the log's, as before (the log numbers what it is given, in id order here), and an
    event is logged once whoever publishes it first. Event rooms are not read ahead (their events
    are rare and not found by session)."""
    from chalicelib.realtime.room_keys import EVENT_PREFIX, room_of
    from chalicelib.realtime.sweep import event_of
    from chalicelib.store.postgres import fetch_all

    room = message.session_id
    room_limit = PAGE_EVENTS - len(message.event_ids)
    if room.startswith(EVENT_PREFIX) or room_limit <= 0:
        return []
    own = set(message.event_ids)
    rows = fetch_all(
        conn, "room_events_waiting", {"session_id": room, "own_id": message.event_ids[0], "limit": room_limit}
    )
    return [event.id for event in map(event_of, rows) if event.id not in own and room_of(event) == room]
