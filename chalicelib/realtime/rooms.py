"""Session rooms: who may join which session, presence, and the replies to client actions."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.domain import auth
from chalicelib.domain.caller import Caller
from chalicelib.domain.listing import parse_uuid
from chalicelib.domain.records import SESSIONS
from chalicelib.errors import Invalid, NotFound, PlatformError
from chalicelib.realtime import push
from chalicelib.store import connections, records
from chalicelib.store.postgres import fetch_one, transaction

MAX_MESSAGE_BYTES = 32 * 1024


def connect(connection_id: str, token: str | None) -> Caller:
    """Authenticate a new connection from its ?token= (JWT or race_ API key) and record it."""
    if not token:
        from chalicelib.errors import Unauthorized

        raise Unauthorized("connect with ?token=<JWT or race_ API key>")
    caller = auth.authenticate(None, token) if token.startswith("race_") else auth.authenticate_jwt(token)
    connections.save_connection(connection_id, caller.account_id, caller.role, caller.user_id,
                                caller.api_key_id, _display_name(caller))
    return caller


def _display_name(caller: Caller) -> str:
    if caller.user_id:
        with transaction() as conn:
            member = fetch_one(conn, "member", {"user_id": caller.user_id, "account_id": caller.account_id})
        if member:
            return str(member["name"])
    return "API key"


class Room:
    """Handles one client message for one connection; replies go back through `reply`."""

    def __init__(self, connection_id: str, endpoint_url: str) -> None:
        self.connection_id = connection_id
        self.endpoint_url = endpoint_url

    def reply(self, message: dict[str, Any]) -> None:
        push.send(self.connection_id, message, self.endpoint_url)

    def handle(self, raw: str | None) -> None:
        try:
            self._dispatch(raw)
        except PlatformError as exc:
            self.reply({"type": "error", "code": exc.code, "message": exc.message})

    def _dispatch(self, raw: str | None) -> None:
        if raw is None or len(raw.encode()) > MAX_MESSAGE_BYTES:
            raise Invalid("message must be a JSON object under 32 KB")
        try:
            message = json.loads(raw)
        except ValueError as exc:
            raise Invalid("message is not valid JSON") from exc
        if not isinstance(message, dict):
            raise Invalid("message must be a JSON object with an action")
        action = message.get("action")
        if action == "ping":
            self.reply({"type": "pong", "t": message.get("t")})
            return
        connection = connections.get_connection(self.connection_id)
        if connection is None:
            raise NotFound("connection is not registered; reconnect")
        if action == "join":
            self.join(connection, message.get("sessionId"))
        elif action == "leave":
            self.leave(connection, message.get("sessionId"))
        else:
            raise Invalid("action must be one of join, leave, ping, resume", field="action")

    def join(self, connection: dict[str, Any], session_id: Any) -> None:
        session_id = parse_uuid(session_id, "sessionId")
        with transaction() as conn:
            session = records.get_row(conn, SESSIONS, connection["accountId"], session_id)
        if session is None:
            # Another account's session is indistinguishable from a missing one.
            raise NotFound(f"session {session_id} not found")
        connections.join_room(session_id, connection)
        members = connections.members(session_id)
        self.reply({
            "type": "joined",
            "sessionId": session_id,
            "seq": connections.room_seq(session_id),
            "members": [_public(m) for m in members],
        })
        self._presence(session_id, "join", connection, members)

    def leave(self, connection: dict[str, Any], session_id: Any) -> None:
        session_id = parse_uuid(session_id, "sessionId")
        connections.leave_room(session_id, self.connection_id)
        self.reply({"type": "left", "sessionId": session_id})
        self._presence(session_id, "leave", connection, connections.members(session_id))

    def _presence(self, session_id: str, change: str, connection: dict[str, Any],
                  members: list[dict[str, Any]]) -> None:
        announce_presence(session_id, change, connection, members, self.endpoint_url, skip=self.connection_id)


def _public(member: dict[str, Any]) -> dict[str, Any]:
    return {k: member[k] for k in ("connectionId", "userId", "name", "role", "joinedAt")}


def announce_presence(session_id: str, change: str, connection: dict[str, Any], members: list[dict[str, Any]],
                      endpoint_url: str, skip: str | None = None) -> None:
    message = {
        "type": "presence",
        "sessionId": session_id,
        "change": change,
        "member": {"connectionId": connection["connectionId"], "userId": connection.get("userId"),
                   "name": connection["name"], "role": connection["role"]},
        "members": [_public(m) for m in members],
    }
    for member in members:
        if member["connectionId"] != skip and not push.send(member["connectionId"], message, endpoint_url):
            connections.forget_connection(member["connectionId"])


def disconnect(connection_id: str, endpoint_url: str) -> None:
    connection = connections.get_connection(connection_id)
    rooms = connections.forget_connection(connection_id)
    if connection is None:
        return
    for session_id in rooms:
        announce_presence(session_id, "leave", connection, connections.members(session_id), endpoint_url)
