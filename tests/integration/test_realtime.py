"""Session-room handshake over the local WebSocket gateway, with rooms in DynamoDB (emulator)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.integration.conftest import Api, Stack, token_for

pytestmark = pytest.mark.integration


def _session_id(api: Api, name: str = "Sebring") -> str:
    event = next(e for e in api.get("/events").json()["items"] if name in e["name"])
    return str(api.get(f"/sessions?eventId={event['id']}").json()["items"][0]["id"])


def _next(ws: ClientConnection, wanted: str, timeout_s: float = 10) -> dict[str, Any]:
    while True:
        message = json.loads(ws.recv(timeout=timeout_s))
        if message["type"] == wanted:
            return message  # type: ignore[no-any-return]


def test_join_answers_joined_with_members(stack: Stack, jamie: Api) -> None:
    session_id = _session_id(jamie)
    with connect(f"{stack.ws_url}/?token={jamie.token}") as ws:
        ws.send(json.dumps({"action": "join", "sessionId": session_id}))
        joined = _next(ws, "joined")
    assert joined["sessionId"] == session_id
    assert isinstance(joined["seq"], int)
    assert any(m["name"] == "Jamie Hart" for m in joined["members"])


def test_ping_pong(stack: Stack, jamie: Api) -> None:
    with connect(f"{stack.ws_url}/?token={jamie.token}") as ws:
        ws.send(json.dumps({"action": "ping", "t": 42}))
        assert _next(ws, "pong")["t"] == 42


@pytest.mark.parametrize("query", ["", "?token=", "?token=garbage", "?token=race_notarealkeynotarealkey"])
def test_connect_without_a_valid_token_is_refused(stack: Stack, query: str) -> None:
    with pytest.raises(InvalidStatus) as refused, connect(f"{stack.ws_url}/{query}"):
        pass
    assert refused.value.response.status_code == 401


def test_api_key_can_connect(stack: Stack, jamie: Api) -> None:
    key = jamie.post("/api-keys", {"name": "ws", "role": "viewer"}).json()["key"]
    session_id = _session_id(jamie)
    with connect(f"{stack.ws_url}/?token={key}") as ws:
        ws.send(json.dumps({"action": "join", "sessionId": session_id}))
        assert _next(ws, "joined")["sessionId"] == session_id


def test_join_of_another_accounts_session_is_refused(stack: Stack, jamie: Api, alex: Api) -> None:
    theirs = _session_id(alex, "Road Atlanta")
    with connect(f"{stack.ws_url}/?token={jamie.token}") as ws:
        ws.send(json.dumps({"action": "join", "sessionId": theirs}))
        error = _next(ws, "error")
    assert error["code"] == "not_found"


@pytest.mark.parametrize(
    "message", ["not json", "[]", json.dumps({"action": "dance"}), json.dumps({"action": "join", "sessionId": "x"})]
)
def test_bad_messages_get_an_error_and_the_connection_stays_usable(stack: Stack, jamie: Api, message: str) -> None:
    with connect(f"{stack.ws_url}/?token={jamie.token}") as ws:
        ws.send(message)
        assert _next(ws, "error")["code"] == "invalid"
        ws.send(json.dumps({"action": "ping"}))
        assert _next(ws, "pong")


def test_presence_tells_members_who_joined_and_left(stack: Stack, jamie: Api) -> None:
    session_id = _session_id(jamie)
    sam = token_for("sam@apexracing.io")
    with connect(f"{stack.ws_url}/?token={jamie.token}") as first:
        first.send(json.dumps({"action": "join", "sessionId": session_id}))
        _next(first, "joined")
        with connect(f"{stack.ws_url}/?token={sam}") as second:
            second.send(json.dumps({"action": "join", "sessionId": session_id}))
            _next(second, "joined")
            joined = _next(first, "presence")
            assert joined["change"] == "join" and joined["member"]["name"] == "Sam Patel"
        left = _next(first, "presence")
        assert left["change"] == "leave" and left["member"]["name"] == "Sam Patel"
