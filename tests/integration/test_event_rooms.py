"""Event rooms: the account's screens on an event hear its board cards and strategy live, through the
room queue and publisher like session rooms; joins are checked against the account."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import Api, Stack, new_account, token_for
from tests.integration.test_room_access import Room, Socket, _new_room

pytestmark = pytest.mark.integration


def _ok(answer: Any) -> dict[str, Any]:
    assert answer.status_code in (200, 201), answer.text
    return answer.json()  # type: ignore[no-any-return]


def _pushes(socket: Socket, count: int) -> list[dict[str, Any]]:
    frames = []
    while len(frames) < count:
        frame = socket.frame()
        if frame["type"] not in ("presence", "pong"):
            frames.append(frame)
    return frames


@pytest.fixture()
def room(stack: Stack) -> Room:
    return _new_room(stack)


def test_board_cards_of_an_event_reach_its_room_in_order(stack: Stack, room: Room) -> None:
    socket = Socket(stack, room.owner.token or "")
    socket.send({"action": "join", "eventId": room.event_id})
    joined = socket.reply()
    assert (joined["type"], joined["eventId"], joined["seq"]) == ("joined", room.event_id, 0)
    assert "sessionId" not in joined
    card = _ok(room.owner.post("/board-cards", {"eventId": room.event_id, "title": "Order tyres", "column": "todo"}))
    _ok(room.owner.call("PATCH", f"/board-cards/{card['id']}", {"column": "doing"}))
    # A card of the event and a session goes to the event's room too: the board shows it there.
    both = _ok(room.owner.post("/board-cards", {"eventId": room.event_id, "sessionId": room.session_id, "title": "x"}))
    assert room.owner.delete(f"/board-cards/{card['id']}").status_code == 200
    frames = _pushes(socket, 4)
    assert [(f["type"], f["seq"], f["eventId"]) for f in frames] == [
        ("board_card.create", 1, room.event_id),
        ("board_card.update", 2, room.event_id),
        ("board_card.create", 3, room.event_id),
        ("board_card.delete", 4, room.event_id),
    ]
    assert frames[1]["data"]["column"] == "doing" and frames[2]["data"]["id"] == both["id"]
    # Resume replays from the event room's log.
    socket.send({"action": "resume", "eventId": room.event_id, "sinceSeq": 1})
    resumed = socket.reply()
    assert resumed["type"] == "resumed" and resumed["eventId"] == room.event_id
    assert [m["seq"] for m in resumed["messages"]] == [2, 3, 4]
    socket.close()


def test_session_cards_stay_in_the_session_room(stack: Stack, room: Room) -> None:
    in_event, in_session = Socket(stack, room.owner.token or ""), Socket(stack, room.owner.token or "")
    in_event.send({"action": "join", "eventId": room.event_id})
    assert in_event.reply()["type"] == "joined"
    assert in_session.join(room.session_id)["type"] == "joined"
    card = _ok(room.owner.post("/board-cards", {"sessionId": room.session_id, "title": "session only"}))
    assert [f["data"]["id"] for f in _pushes(in_session, 1)] == [card["id"]]
    assert in_event.pending() == []
    in_event.close()
    in_session.close()


def test_strategy_changes_reach_the_event_room(stack: Stack, room: Room) -> None:
    car = _ok(room.owner.post("/cars", {"eventId": room.event_id, "number": "7"}))
    socket = Socket(stack, room.owner.token or "")
    socket.send({"action": "join", "eventId": room.event_id})
    assert socket.reply()["type"] == "joined"
    plan = {"stints": [{"carId": car["id"], "stint": 1, "plannedLaps": 30, "fuelL": 95}]}
    _ok(room.owner.call("PUT", f"/events/{room.event_id}/strategy", plan))
    (frame,) = _pushes(socket, 1)
    assert frame["type"] == "strategy.update" and frame["eventId"] == room.event_id
    assert frame["data"]["stints"][0]["plannedLaps"] == 30
    socket.close()


def test_another_accounts_event_room_is_not_found_and_hears_nothing(stack: Stack, room: Room) -> None:
    stranger = Socket(stack, token_for(new_account("owner")[0]))
    for action in ("join", "resume", "leave"):
        stranger.send({"action": action, "eventId": room.event_id, "sinceSeq": 0})
        answer = stranger.reply()
        assert (answer["type"], answer["code"]) == ("error", "not_found"), answer
    _ok(room.owner.post("/board-cards", {"eventId": room.event_id, "title": "secret plan"}))
    assert room.write(event_room=True)
    assert stranger.pending() == []
    stranger.close()


def test_a_viewer_joins_an_event_room_and_bad_ids_are_refused(stack: Stack, room: Room) -> None:
    viewer_token, _ = room.member("viewer")
    socket = Socket(stack, viewer_token)
    socket.send({"action": "join", "eventId": room.event_id})
    assert socket.reply()["type"] == "joined"
    for bad in ("not-a-uuid", 7, None):
        socket.send({"action": "join", "eventId": bad})
        answer = socket.reply()
        assert (answer["type"], answer["code"], answer.get("field")) == ("error", "invalid", "eventId"), answer
    socket.close()


def test_a_board_card_of_another_accounts_event_is_refused(stack: Stack, room: Room) -> None:
    other = _new_room(stack)
    answer = room.owner.post("/board-cards", {"eventId": other.event_id, "title": "x"})
    assert answer.status_code == 404
    assert Api(stack.api_url, other.owner.token).get(f"/board-cards?eventId={other.event_id}").json()["items"] == []


def test_a_card_of_an_event_and_a_session_of_another_event_is_refused(stack: Stack, room: Room) -> None:
    other_event = _ok(room.owner.post("/events", {"name": "Elkhart Lake"}))
    answer = room.owner.post("/board-cards", {"eventId": other_event["id"], "sessionId": room.session_id, "title": "x"})
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "sessionId"
    card = _ok(room.owner.post("/board-cards", {"eventId": room.event_id, "sessionId": room.session_id, "title": "y"}))
    answer = room.owner.call("PATCH", f"/board-cards/{card['id']}", {"eventId": other_event["id"]})
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "sessionId"
    assert _ok(room.owner.get(f"/board-cards/{card['id']}"))["eventId"] == room.event_id


def test_actual_stints_carry_driver_and_fuel(stack: Stack, room: Room) -> None:
    car = _ok(room.owner.post("/cars", {"eventId": room.event_id, "number": "3"}))
    driver = _ok(room.owner.post("/drivers", {"carId": car["id"], "name": "Ana Ruiz", "number": "1"}))
    sheet = _ok(room.owner.post("/run-sheets", {"sessionId": room.session_id, "carId": car["id"]}))
    fuel = [90.0, 87.5, 85.0, 82.5, 100.0, 97.0, 94.0]
    laps = [
        {
            "runSheetId": sheet["id"],
            "lapNumber": n,
            "lapTimeMs": 100_000 + n,
            "driverId": driver["id"],
            "fuelL": fuel[n - 1],
            "isInLap": n == 4,
            "isOutLap": n == 5,
        }
        for n in range(1, 8)
    ]
    assert room.owner.post("/laps", {"laps": laps}).status_code == 201
    strategy = _ok(room.owner.get(f"/events/{room.event_id}/strategy?sessionId={room.session_id}"))
    (mine,) = [c for c in strategy["cars"] if c["carId"] == car["id"]]
    assert [(s["laps"], s["driver"], s["fuelStartL"], s["fuelEndL"], s["fuelUsedL"]) for s in mine["actual"]] == [
        (4, driver["id"], 90.0, 82.5, 7.5),
        (3, driver["id"], 100.0, 94.0, 6.0),
    ]
