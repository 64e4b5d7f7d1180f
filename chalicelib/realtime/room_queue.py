"""The room queue (SQS FIFO, one message group per session): committed events on their way to the publisher.

A message is `{"sessionId", "eventIds"}` (at most PAGE_EVENTS ids, all of one write and one room;
`sessionId` holds the room key: a session id, or `event:<id>` for an event room, realtime/room_keys.py):
ids, not frames, so a message stays small whatever the events hold; the publisher reads the events
from PostgreSQL. Its deduplication id is the session and its event ids, so a retried send within
SQS's five minutes is queued once.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.config import settings
from chalicelib.store import sqs_send
from chalicelib.store.aws import client, translated_errors

if TYPE_CHECKING:
    from chalicelib.domain.changes import DomainEvent

MAX_BATCH = 10  # SQS SendMessageBatch limit
PAGE_EVENTS = 100  # events per message: a page of the room's log


@dataclass(frozen=True)
class RoomMessage:
    session_id: str
    event_ids: tuple[int, ...]

    def body(self) -> str:
        return json.dumps({"sessionId": self.session_id, "eventIds": list(self.event_ids)}, separators=(",", ":"))

    def deduplication_id(self) -> str:
        return hashlib.sha256(self.body().encode()).hexdigest()


def messages_for(events: Sequence[DomainEvent]) -> list[RoomMessage]:
    """The queue messages of committed events that belong to a room, per room, in id order."""
    from chalicelib.realtime.room_keys import room_of

    rooms: dict[str, list[int]] = {}
    for event in events:
        room = room_of(event)
        if room:
            rooms.setdefault(room, []).append(event.id)
    return [
        RoomMessage(session_id, tuple(ids[start : start + PAGE_EVENTS]))
        for session_id, ids in rooms.items()
        for start in range(0, len(ids), PAGE_EVENTS)
    ]


@functools.cache
def _queue_url(name: str) -> str:
    with translated_errors("sqs"):
        return str(client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


def send(messages: Sequence[RoomMessage]) -> list[RoomMessage]:
    """Queue the messages in order (batches of 10); returns those NOT queued (the sweep publishes them)."""
    return start_send(messages)()


def start_send(messages: Sequence[RoomMessage]) -> Callable[[], list[RoomMessage]]:
    """`send` with its first batch written now: the returned call reads the answers (sending any
    later batch after the one before it has answered, so a session's messages stay in order) and
    returns the messages NOT queued."""
    chunks = [messages[start : start + MAX_BATCH] for start in range(0, len(messages), MAX_BATCH)]
    first = _start_batch(chunks[0]) if chunks else None

    def answers() -> list[RoomMessage]:
        unsent: list[RoomMessage] = []
        for index, chunk in enumerate(chunks):
            pending = first if index == 0 and first is not None else _start_batch(chunk)
            unsent += pending()
        return unsent

    return answers


def _start_batch(chunk: Sequence[RoomMessage]) -> Callable[[], list[RoomMessage]]:
    """SendMessageBatch of up to 10 messages written now; the returned call gives those NOT queued."""
    entries = [
        {
            "Id": str(index),
            "MessageBody": message.body(),
            "MessageGroupId": message.session_id,
            "MessageDeduplicationId": message.deduplication_id(),
        }
        for index, message in enumerate(chunk)
    ]
    pending = sqs_send.start_unsent(
        lambda: _queue_url(settings().room_queue), entries, forget_url=_queue_url.cache_clear
    )
    return lambda: [chunk[index] for index in pending()]


def parse(body: str) -> RoomMessage | None:
    """The message a queue body carries, or None when it is not one of ours."""
    from chalicelib.realtime.room_keys import parse as parse_room

    try:
        payload: Any = json.loads(body)
        session_id = parse_room(payload["sessionId"])
        ids = payload["eventIds"]
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    if session_id is None or not isinstance(ids, list) or not ids or not all(type(i) is int and i > 0 for i in ids):
        return None
    return RoomMessage(session_id, tuple(ids))
