"""Session rooms: who may join which session, presence, and the replies to client actions."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from chalicelib.domain import access, auth
from chalicelib.domain.caller import Caller
from chalicelib.domain.listing import parse_uuid
from chalicelib.domain.records import EVENTS, SESSIONS
from chalicelib.errors import Invalid, NotFound, PlatformError, Unauthorized
from chalicelib.realtime import broadcast, push, room_keys
from chalicelib.realtime.access import close, reachable
from chalicelib.store import connections, records
from chalicelib.store.postgres import fetch_one, transaction

MAX_MESSAGE_BYTES = 32 * 1024
# A room epoch is about 24 characters (store/connections.py new_epoch); anything longer is not one.
EPOCH_MAX_CHARS = 64
PRESENCE_LIST_MAX = 50


def connect(connection_id: str, token: str | None) -> Caller:
    """Authenticate a new connection from its ?token= (JWT or race_ API key) and record it."""
    if not token:
        from chalicelib.errors import Unauthorized

        raise Unauthorized("connect with ?token=<JWT or race_ API key>")
    caller = auth.authenticate(None, token) if token.startswith("race_") else auth.authenticate_jwt(token)
    # A JWT was just verified with the current secret: its fingerprint tells later whether it still is.
    secret_fp = None if caller.api_key_id else access.current_fingerprint()
    connections.save_connection(
        connection_id,
        caller.account_id,
        caller.role,
        caller.user_id,
        caller.api_key_id,
        _display_name(caller),
        secret_fp,
    )
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
            error: dict[str, Any] = {"type": "error", "code": exc.code, "message": exc.message}
            if isinstance(exc, Invalid) and exc.field:
                error["field"] = exc.field
            self.reply(error)

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
            # The heartbeat: keeps idle connections open and lets clients measure clock skew.
            self.reply({"type": "pong", "t": message.get("t"), "serverTime": _now_iso()})
            return
        connection = connections.get_connection(self.connection_id)
        if connection is None:
            raise NotFound("connection is not registered; reconnect")
        if action not in ("join", "resume", "leave"):
            raise Invalid("action must be one of join, leave, ping, resume", field="action")
        connection = self._recheck(connection)
        if connection is None:
            return
        if action == "join":
            self.join(connection, message)
        elif action == "resume":
            self.resume(connection, message, message.get("sinceSeq"), message.get("epoch"))
        else:
            self.leave(connection, message)

    def _recheck(self, connection: dict[str, Any]) -> dict[str, Any] | None:
        """The connection with its principal's role now; None (after telling it why and closing it)
        when the principal lost access since it connected."""
        try:
            caller = access.recheck(access.Principal.of(connection))
        except Unauthorized as exc:
            self.reply({"type": "error", "code": exc.code, "message": exc.message})
            close([self.connection_id], self.endpoint_url)
            return None
        return {**connection, "role": caller.role}

    def join(self, connection: dict[str, Any], message: dict[str, Any]) -> None:
        """Enter the room; `joined.seq` is the last message sent before this member was in it, so
        every later one reaches it as a push (the reply is sent inside the room's turn)."""
        session_id = _room_of_account(connection, message)
        members = connections.members(session_id)  # read before the turn, which is kept short
        with broadcast.turn(session_id, self.endpoint_url) as at:
            members, entered = self._enter(session_id, connection, members)
            self.reply(
                {
                    "type": "joined",
                    **room_keys.fields(session_id),
                    "seq": at.seq,
                    "epoch": at.epoch,
                    "members": [_public(m) for m in members],
                }
            )
        if entered:
            self._presence(session_id, "join", connection, members)

    def resume(self, connection: dict[str, Any], message: dict[str, Any], since_seq: Any, epoch: Any = None) -> None:
        """Re-enter the room and replay what was sent after `sinceSeq`, in `resumed` frames
        (`{"type","sessionId","fromSeq","toSeq","epoch","final","messages":[...]}`, members on the final
        one); beyond the window, or when `epoch` (optional: the one `joined`/`resumed`/`resync` gave) is
        not the room's now, `{"type":"resync","sessionId","seq","epoch","reason","members"}`: refetch,
        pushes continue after `seq`. Answered inside the room's turn, so no push overtakes the replay."""
        if isinstance(since_seq, bool) or not isinstance(since_seq, int) or since_seq < 0:
            raise Invalid("sinceSeq must be the last seq the client applied (an integer >= 0)", field="sinceSeq")
        if epoch is not None and (not isinstance(epoch, str) or not 0 < len(epoch) <= EPOCH_MAX_CHARS):
            raise Invalid(
                f"epoch must be the room's epoch from joined, resumed or resync (a string of at most "
                f"{EPOCH_MAX_CHARS} characters), or left out",
                field="epoch",
            )
        session_id = _room_of_account(connection, message)
        members = connections.members(session_id)
        with broadcast.turn(session_id, self.endpoint_url) as at:
            members, entered = self._enter(session_id, connection, members)
            frames = broadcast.resume_frames(session_id, since_seq, at, [_public(m) for m in members], epoch)
            push.fan_out([self.connection_id], frames, self.endpoint_url)
        if entered:
            self._presence(session_id, "join", connection, members)

    def _enter(
        self, session_id: str, connection: dict[str, Any], members: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], bool]:
        """Join the room (idempotent): the members with this connection, and whether it is new there."""
        if connections.is_member(session_id, self.connection_id):
            if any(m["connectionId"] == self.connection_id for m in members):
                return members, False
            return connections.members(session_id), False
        me = connections.join_room(session_id, connection)
        return [*(m for m in members if m["connectionId"] != self.connection_id), me], True

    def leave(self, connection: dict[str, Any], message: dict[str, Any]) -> None:
        """Leave the room; its members hear it only if this connection was in it."""
        session_id = _room_of_account(connection, message)
        was_member = connections.is_member(session_id, self.connection_id)
        connections.leave_room(session_id, self.connection_id)
        self.reply({"type": "left", **room_keys.fields(session_id)})
        if was_member:
            announce_presence(session_id, "leave", connection, self.endpoint_url)

    def _presence(
        self, session_id: str, change: str, connection: dict[str, Any], members: list[dict[str, Any]]
    ) -> None:
        announce_presence(session_id, change, connection, self.endpoint_url, members=members)


def _room_of_account(connection: dict[str, Any], message: dict[str, Any]) -> str:
    """The room a join/resume/leave names: `sessionId` (a session room) or `eventId` (the event's room,
    realtime/room_keys.py); either must be of the connection's account (else 404, like a missing one)."""
    if "eventId" in message and "sessionId" not in message:
        event_id = parse_uuid(message["eventId"], "eventId")
        with transaction() as conn:
            event = records.get_row(conn, EVENTS, connection["accountId"], event_id)
        if event is None:
            raise NotFound(f"event {event_id} not found")
        return room_keys.event_room(event_id)
    return _session_of_account(connection, message.get("sessionId"))


def _session_of_account(connection: dict[str, Any], session_id: Any) -> str:
    """The session id, if it is a session of the connection's account (else 404, like a missing one)."""
    session_id = parse_uuid(session_id, "sessionId")
    with transaction() as conn:
        session = records.get_row(conn, SESSIONS, connection["accountId"], session_id)
    if session is None:
        raise NotFound(f"session {session_id} not found")
    return session_id


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _public(member: dict[str, Any]) -> dict[str, Any]:
    return {k: member[k] for k in ("connectionId", "userId", "name", "role", "joinedAt")}


def announce_presence(
    session_id: str,
    change: str,
    connection: dict[str, Any],
    endpoint_url: str,
    members: list[dict[str, Any]] | None = None,
) -> None:
    """Tell the room's other members who came or went (`members`: the room now, if already read).

    The whole member list rides along only in rooms of up to PRESENCE_LIST_MAX: above that, a room
    filling up (everyone reconnecting after a network blip) would send every member the whole list
    on every join, O(members^2) bytes; clients apply `change` + `member` to the list `joined` gave.
    """
    principals = connections.member_principals(session_id)
    if members is None:
        ids = [m["connectionId"] for m in principals]
        if len(ids) <= PRESENCE_LIST_MAX:
            members = connections.members(session_id)
    else:
        ids = [m["connectionId"] for m in members]
    # Only to members whose principal holds access now (those that lost it are being closed).
    others = [m for m in principals if m["connectionId"] != connection["connectionId"]]
    recipients = reachable(others, endpoint_url, close_others=False)
    message: dict[str, Any] = {
        "type": "presence",
        **room_keys.fields(session_id),
        "change": change,
        "member": {
            "connectionId": connection["connectionId"],
            "userId": connection.get("userId"),
            "name": connection["name"],
            "role": connection["role"],
        },
        "count": len(ids),
    }
    if members is not None and len(members) <= PRESENCE_LIST_MAX:
        message["members"] = [_public(m) for m in members]
    # Best effort: a member that is gone (410) is left to its own $disconnect (or the next room
    # message); forgetting it here too would multiply DynamoDB work when many leave at once.
    push.fan_out(recipients, [push.encode(message)], endpoint_url)


def disconnect(connection_id: str, endpoint_url: str) -> None:
    connection = connections.get_connection(connection_id)
    rooms = connections.forget_connection(connection_id, connection)
    if connection is None:
        return
    for session_id in rooms:
        announce_presence(session_id, "leave", connection, endpoint_url)
