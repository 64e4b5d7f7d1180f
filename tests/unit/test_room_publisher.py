"""The room publisher's batch rule: a failed message holds back the later ones of its session, not others."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest

from chalicelib.domain.changes import DomainEvent
from chalicelib.realtime import publisher, room_queue
from chalicelib.realtime.room_queue import RoomMessage

pytestmark = pytest.mark.unit

A, B = str(uuid.uuid4()), str(uuid.uuid4())


def record(message_id: str, session_id: str, *event_ids: int) -> dict[str, Any]:
    body = RoomMessage(session_id, event_ids).body()
    return {"messageId": message_id, "body": body, "attributes": {"MessageGroupId": session_id}}


def test_a_sessions_messages_are_published_together_and_fail_together_other_sessions_go_on() -> None:
    published: list[tuple[str, tuple[int, ...]]] = []

    def publish(message: RoomMessage) -> bool:
        published.append((message.session_id, message.event_ids))
        return 2 not in message.event_ids  # event 2 cannot be published now

    batch = [record("m1", A, 1), record("m2", A, 2), record("m3", B, 3), record("m4", A, 4), record("m5", B, 5, 6)]
    answer = publisher.handle({"Records": batch}, publish=publish)
    # A's messages come back in order (none overtakes the failed one); B's are done
    assert answer == {"batchItemFailures": [{"itemIdentifier": m} for m in ("m1", "m2", "m4")]}
    assert published == [(A, (1, 2, 4)), (B, (3, 5, 6))]  # one publish per session, in queue order


def test_a_message_that_is_not_ours_is_dropped_not_retried() -> None:
    batch = [{"messageId": "x", "body": "{nope", "attributes": {}}, record("m", A, 7)]
    assert publisher.handle({"Records": batch}, publish=lambda message: True) == {"batchItemFailures": []}


@pytest.mark.parametrize(
    "body",
    [
        {"sessionId": "not-a-uuid", "eventIds": [1]},
        {"sessionId": A, "eventIds": []},
        {"sessionId": A, "eventIds": [1, "2"]},
        {"sessionId": A, "eventIds": [True]},
        {"sessionId": A},
        [A],
    ],
)
def test_parse_refuses_what_is_not_a_room_message(body: Any) -> None:
    assert room_queue.parse(json.dumps(body)) is None


def event(event_id: int, entity: str, op: str, session_id: str | None = None) -> DomainEvent:
    now = dt.datetime.now(dt.UTC)
    return DomainEvent(
        event_id, "a0000000-0000-0000-0000-000000000001", f"{entity}.{op}", entity, op, None, session_id, {}, {}, now
    )


def test_messages_are_per_session_pages_in_id_order() -> None:
    events = [event(n, "lap", "create", A if n % 2 else B) for n in range(1, 251)]
    events.append(event(999, "issue", "create"))  # no session: no room message
    messages = room_queue.messages_for(events)
    assert [(m.session_id, len(m.event_ids)) for m in messages] == [(A, 100), (A, 25), (B, 100), (B, 25)]
    assert messages[0].event_ids[:3] == (1, 3, 5)
    assert (
        len(messages[0].body().encode()) < 256 * 1024
        and messages[0].deduplication_id() != messages[2].deduplication_id()
    )


def test_forgetting_the_containers_caches_forgets_the_remembered_rooms() -> None:
    from chalicelib import caches
    from chalicelib.realtime import broadcast
    from chalicelib.store.connections import RoomState

    broadcast._last_rounds.remember("room-a", RoomState(3, 3, None, 0, "epoch-1", 2))
    assert broadcast._last_rounds.get("room-a") is not None
    broadcast._last_rounds.remember("room-b", RoomState(4, 3, None, 0, "epoch-1", 2))  # not all sent
    assert broadcast._last_rounds.get("room-b") is None
    caches.forget()
    assert broadcast._last_rounds.get("room-a") is None
