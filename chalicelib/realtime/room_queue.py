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
from collections.abc import Sequence
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
    unsent: list[RoomMessage] = []
    for start in range(0, len(messages), MAX_BATCH):
        chunk = messages[start : start + MAX_BATCH]
        entries = [
            {
                "Id": str(index),
                "MessageBody": message.body(),
                "MessageGroupId": message.session_id,
                "MessageDeduplicationId": message.deduplication_id(),
            }
            for index, message in enumerate(chunk)
        ]
        try:
            with translated_errors("sqs"):
                answer = sqs_send.send_message_batch(_queue_url(settings().room_queue), entries)
        except Exception:
            _queue_url.cache_clear()  # the queue may be back under another URL (emulator restart)
            unsent += chunk
            continue
        unsent += [chunk[int(failure["Id"])] for failure in answer.get("Failed", [])]
    return unsent


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
