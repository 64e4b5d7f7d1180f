"""Which room hears a domain event, and how a room key travels in queue messages and frames."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from chalicelib.domain.changes import DomainEvent
from chalicelib.realtime import room_keys, room_queue


def _event(entity: str, data: dict[str, Any], session_id: str | None = None, event_id: int = 1) -> DomainEvent:
    return DomainEvent(
        event_id,
        "acct",
        f"{entity}.create",
        entity,
        "create",
        data.get("id"),
        session_id,
        data,
        {},
        dt.datetime.now(dt.UTC),
    )


EVENT = str(uuid.uuid4())
SESSION = str(uuid.uuid4())


def test_board_cards_of_an_event_and_strategy_go_to_the_event_room() -> None:
    assert room_keys.room_of(_event("board_card", {"eventId": EVENT})) == f"event:{EVENT}"
    assert room_keys.room_of(_event("board_card", {"eventId": EVENT}, SESSION)) == f"event:{EVENT}"
    assert room_keys.room_of(_event("strategy", {"eventId": EVENT})) == f"event:{EVENT}"


def test_everything_else_stays_in_its_session_room_or_none() -> None:
    assert room_keys.room_of(_event("board_card", {"eventId": None}, SESSION)) == SESSION
    assert room_keys.room_of(_event("lap", {"eventId": EVENT}, SESSION)) == SESSION
    assert room_keys.room_of(_event("issue", {})) is None


def test_frames_name_the_room() -> None:
    assert room_keys.fields(SESSION) == {"sessionId": SESSION}
    assert room_keys.fields(f"event:{EVENT}") == {"eventId": EVENT}


def test_queue_messages_carry_the_room_key_and_refuse_others() -> None:
    messages = room_queue.messages_for(
        [_event("board_card", {"eventId": EVENT}, event_id=5), _event("lap", {}, SESSION, event_id=6)]
    )
    assert [(m.session_id, m.event_ids) for m in messages] == [(f"event:{EVENT}", (5,)), (SESSION, (6,))]
    assert room_queue.parse(messages[0].body()) == messages[0]
    for bad in ("event:nope", "session:" + SESSION, "event:", 7):
        assert room_queue.parse(f'{{"sessionId": {bad!r}, "eventIds": [1]}}'.replace("'", '"')) is None
