"""Live rooms re-check authority, tried as an attacker would: a removed member, a revoked key, a key
whose creator left, a token of a rotated secret and another account's member, against the real
gateways, PostgreSQL and emulator. Runs the rooms matrix of docs/permissions.md."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.integration.conftest import JWT_SECRET, Api, Stack, cold_start_with, new_account

pytestmark = pytest.mark.integration
DOC = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"
# The issue's promise: a socket that lost access is closed within this long of the revoking answer.
CLOSE_WITHIN_S = 5.0


def rooms_matrix() -> tuple[list[str], list[tuple[str, dict[str, str]]]]:
    block = DOC.read_text().split("<!-- rooms:start -->")[1].split("<!-- rooms:end -->")[0]
    lines = block.strip().splitlines()
    callers = [c.strip() for c in lines[0].strip().strip("|").split("|")][1:]
    rows = []
    for line in lines[2:]:
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        rows.append((cells[0], dict(zip(callers, cells[1:], strict=True))))
    return callers, rows


class Socket:
    """One WebSocket client of the platform."""

    def __init__(self, stack: Stack, token: str) -> None:
        # Entered by hand: the socket outlives the statement that opens it (closed by `close` or the server).
        self.ws: ClientConnection = connect(f"{stack.ws_url}/?token={token}").__enter__()

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def frame(self, timeout_s: float = 10) -> dict[str, Any]:
        return json.loads(self.ws.recv(timeout=timeout_s))  # type: ignore[no-any-return]

    def reply(self, timeout_s: float = 10) -> dict[str, Any]:
        """The next frame that answers an action (presence frames of others are skipped)."""
        while True:
            message = self.frame(timeout_s)
            if message["type"] != "presence":
                return message

    def join(self, session_id: str) -> dict[str, Any]:
        self.send({"action": "join", "sessionId": session_id})
        return self.reply()

    def frames_until_closed(self, timeout_s: float = CLOSE_WITHIN_S) -> list[dict[str, Any]]:
        """Every frame still waiting, then the close; fails if the socket stays open `timeout_s`."""
        frames = []
        try:
            while True:
                frames.append(self.frame(timeout_s))
        except ConnectionClosed:
            return frames
        except TimeoutError:
            pytest.fail(f"the socket was still open {timeout_s} s later; it received {frames}")

    def pending(self) -> list[dict[str, Any]]:
        """What was sent to this (open) socket before now: everything before a ping's pong."""
        self.send({"action": "ping", "t": "marker"})
        frames = []
        while (message := self.frame())["type"] != "pong":
            frames.append(message)
        return frames

    def close(self) -> None:
        self.ws.close()


@dataclass
class Room:
    """A fresh account with one session (the room under attack) and its owner."""

    stack: Stack
    account_id: str
    owner: Api
    owner_id: str
    session_id: str
    event_id: str

    def db(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.stack.database_url, autocommit=True)

    def member(self, role: str = "engineer") -> tuple[str, str]:
        """A new member: (their JWT, their user id)."""
        from chalicelib.domain.tokens import issue_jwt

        with self.db() as conn:
            user_id = conn.execute(
                "INSERT INTO users (email, name) VALUES (%s, %s) RETURNING id",
                (f"{role}-{uuid.uuid4().hex[:8]}@rooms.test", f"{role.title()} Member"),
            ).fetchone()[0]  # type: ignore[index]
            conn.execute("INSERT INTO memberships VALUES (%s, %s, %s)", (self.account_id, user_id, role))
        return issue_jwt(JWT_SECRET, user_id=str(user_id), account_id=self.account_id, role=role, ttl_s=3600), str(
            user_id
        )

    def key(self, creator: Api | None = None) -> tuple[str, str]:
        """A new viewer API key: (its secret, its id)."""
        made = (creator or self.owner).post("/api-keys", {"name": "room key", "role": "viewer"})
        assert made.status_code == 201, made.text
        return made.json()["key"], made.json()["id"]

    def write(self, event_room: bool = False) -> str:
        """A committed write in the session, or with `event_room` a board card of the event alone
        (published before this returns); its data id. Written as the domain does for any caller, so
        it works whichever secret is current."""
        from chalicelib.domain import changes
        from chalicelib.domain.caller import Caller
        from chalicelib.store.postgres import transaction

        card_id = str(uuid.uuid4())
        with changes.write(Caller(self.account_id, "owner", user_id=self.owner_id)) as (_, recorder):
            if event_room:
                recorder.record("board_card", "create", {"id": card_id, "eventId": self.event_id, "title": "fuel"})
            else:
                recorder.record(
                    "board_card", "create", {"id": card_id, "title": "pit at lap 40"}, session_id=self.session_id
                )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the write answers first; the room publisher publishes it after
            with transaction() as conn:
                row = conn.execute(
                    "SELECT published_at IS NOT NULL AS done FROM domain_events WHERE entity_id = %s", (card_id,)
                ).fetchone()
            if row and row["done"]:
                break
            time.sleep(0.02)
        return card_id

    def connections_of_user(self, user_id: str) -> list[str]:
        from chalicelib.store import connections

        return connections.member_connections(self.account_id, user_id)


def _new_room(stack: Stack) -> Room:
    from tests.integration.conftest import token_for

    email, account_id = new_account("owner")
    owner = Api(stack.api_url, token_for(email))
    event = owner.post("/events", {"name": "Road America"}).json()
    session = owner.post("/sessions", {"eventId": event["id"], "name": "Race", "type": "race"}).json()
    owner_id = owner.get("/auth/me").json()["user"]["id"]
    return Room(stack, account_id, owner, owner_id, session["id"], event["id"])


@pytest.fixture()
def room(stack: Stack) -> Room:
    return _new_room(stack)


def _cards(frames: list[dict[str, Any]]) -> list[str]:
    return [f["data"]["id"] for f in frames if f.get("type") == "board_card.create"]


# ---- losing access closes the socket at once -------------------------------------------------------


def test_a_removed_member_and_their_keys_are_closed_and_get_nothing_more(stack: Stack, room: Room) -> None:
    token, user_id = room.member("admin")
    key, _ = room.key(Api(stack.api_url, token))
    owner = Socket(stack, room.owner.token or "")
    member, member_key = Socket(stack, token), Socket(stack, key)
    for socket in (owner, member, member_key):
        assert socket.join(room.session_id)["type"] == "joined"
    before = room.write()
    assert room.connections_of_user(user_id)

    assert room.owner.delete(f"/members/{user_id}").status_code in (200, 204)
    for socket in (member, member_key):  # closed by the removal itself, before anything else is written
        assert set(_cards(socket.frames_until_closed())) <= {before}
    after = room.write()
    assert after in _cards(owner.pending())
    assert room.connections_of_user(user_id) == []
    with pytest.raises(InvalidStatus):  # and the token cannot open a new one
        Socket(stack, token)
    owner.close()


def test_a_revoked_key_is_closed_and_gets_nothing_more(stack: Stack, room: Room) -> None:
    from chalicelib.store import connections

    key, key_id = room.key()
    socket = Socket(stack, key)
    assert socket.join(room.session_id)["type"] == "joined"
    assert connections.key_connections(key_id)
    assert room.owner.delete(f"/api-keys/{key_id}").status_code in (200, 204)
    assert _cards(socket.frames_until_closed()) == []
    assert connections.key_connections(key_id) == []


def test_rotating_the_secret_closes_the_sockets_it_signed_and_keeps_keys(stack: Stack, room: Room) -> None:
    from chalice.test import Client

    from app import app
    from chalicelib.store import connections

    old_token, _ = room.member()
    key, _ = room.key()
    old, keyed = Socket(stack, old_token), Socket(stack, key)
    for socket in (old, keyed):
        assert socket.join(room.session_id)["type"] == "joined"
    new_secret = secrets.token_hex(64)
    with cold_start_with(JWT_SECRET=new_secret):
        # What the rotation does in AWS after the new secret is in place (docs/runbook.md).
        with Client(app, stage_name="local") as client:  # the test client applies the stage's environment
            answer = client.lambda_.invoke("close_stale_connections", {})
        assert answer.payload["closed"] >= 1
        assert _cards(old.frames_until_closed()) == []
        assert room.write() in _cards(keyed.pending())
        from chalicelib.domain.access import current_fingerprint

        assert connections.stale_fingerprint_connections(current_fingerprint()) == {}
    keyed.close()


def test_the_minute_sweep_closes_sockets_of_a_rotated_secret(stack: Stack, room: Room) -> None:
    from chalicelib.realtime import sweep

    token, _ = room.member()
    socket = Socket(stack, token)
    assert socket.join(room.session_id)["type"] == "joined"
    with cold_start_with(JWT_SECRET=secrets.token_hex(64)):
        assert sweep.sweep()["staleSecretClosed"] >= 1
        socket.frames_until_closed()


# ---- isolation: no account speaks in another's room ------------------------------------------------


def test_a_foreign_leave_answers_not_found_and_emits_nothing(stack: Stack, room: Room) -> None:
    from tests.integration.conftest import token_for

    stranger_email, _ = new_account("owner")
    owner = Socket(stack, room.owner.token or "")
    assert owner.join(room.session_id)["type"] == "joined"
    stranger = Socket(stack, token_for(stranger_email))
    for _ in range(5):
        stranger.send({"action": "leave", "sessionId": room.session_id})
        error = stranger.reply()
        assert error["type"] == "error" and error["code"] == "not_found", error
        assert stranger_email not in json.dumps(error)
    assert owner.pending() == []  # no presence frame, no stranger's name
    stranger.close()
    owner.close()


def test_leaving_a_room_one_is_not_in_tells_nobody(stack: Stack, room: Room) -> None:
    token, _ = room.member()
    owner, member = Socket(stack, room.owner.token or ""), Socket(stack, token)
    assert owner.join(room.session_id)["type"] == "joined"
    member.send({"action": "leave", "sessionId": room.session_id})
    assert member.reply()["type"] == "left"
    assert owner.pending() == []
    owner.close()
    member.close()


# ---- the rooms matrix: each action after access was lost out of band (no socket closed yet) -------


@dataclass
class Caller:
    socket: Socket
    lose: Callable[[], AbstractContextManager[Any]]  # the loss of access, for the action's duration


def _sql(room: Room, statement: str, *args: str) -> Callable[[], AbstractContextManager[Any]]:
    @contextmanager
    def loss() -> Iterator[None]:
        with room.db() as conn:
            conn.execute(statement, args)  # out of band: no sink runs, so only the re-checks stand
        yield

    return loss


def _caller(stack: Stack, room: Room, kind: str) -> Caller:
    from tests.integration.conftest import token_for

    if kind == "member":
        return Caller(Socket(stack, room.member()[0]), nullcontext)
    if kind == "removed":
        token, user_id = room.member()
        return Caller(Socket(stack, token), _sql(room, "DELETE FROM memberships WHERE user_id = %s", user_id))
    if kind == "revoked-key":
        key, key_id = room.key()
        return Caller(Socket(stack, key), _sql(room, "DELETE FROM api_keys WHERE id = %s", key_id))
    if kind == "key-of-removed":
        token, user_id = room.member("admin")
        key, _ = room.key(Api(stack.api_url, token))
        return Caller(Socket(stack, key), _sql(room, "DELETE FROM memberships WHERE user_id = %s", user_id))
    if kind == "rotated":
        return Caller(Socket(stack, room.member()[0]), lambda: cold_start_with(JWT_SECRET=secrets.token_hex(64)))
    if kind == "other":
        return Caller(Socket(stack, token_for(new_account("owner")[0])), nullcontext)
    raise AssertionError(f"no caller {kind}: add it to _caller")


def _outcome(room: Room, caller: Caller, action: str) -> str:
    socket = caller.socket
    in_event = action.endswith(" (event room)")
    action = action.removesuffix(" (event room)")
    where = {"eventId": room.event_id} if in_event else {"sessionId": room.session_id}
    if action != "join":
        socket.send({"action": "join", **where})  # in the room before the loss (refused for another account)
        socket.reply()
        socket.pending()
    with caller.lose():
        if action == "push":
            card = room.write(event_room=in_event)
            try:
                return "pushed" if card in _cards(socket.pending()) else "none"
            except ConnectionClosed:
                return "none"
        message: dict[str, Any] = {"action": action, **where}
        if action == "resume":
            message["sinceSeq"] = 0
        socket.send(message)
        answer = socket.reply()
    if answer["type"] == "error":
        return str(answer["code"])
    return {"joined": "joined", "resumed": "resumed", "resync": "resumed", "left": "left"}[answer["type"]]


def test_rooms_matrix_names_every_action_and_caller() -> None:
    callers, rows = rooms_matrix()
    assert callers == ["member", "removed", "revoked-key", "key-of-removed", "rotated", "other"]
    assert [action for action, _ in rows] == ["join", "resume", "leave", "push"] + [
        f"{action} (event room)" for action in ("join", "resume", "leave", "push")
    ]


@pytest.mark.parametrize(("action", "expected"), rooms_matrix()[1], ids=lambda v: v if isinstance(v, str) else "")
def test_rooms_matrix_row(stack: Stack, action: str, expected: dict[str, str]) -> None:
    room = _new_room(stack)
    failures = []
    for kind, wanted in expected.items():
        caller = _caller(stack, room, kind)
        got = _outcome(room, caller, action)
        if got != wanted:
            failures.append(f"{kind}: expected {wanted}, got {got}")
        if got in ("unauthorized", "none") and kind != "other":  # refused: the socket is closed too
            caller.socket.frames_until_closed()
        caller.socket.close()
    assert not failures, f"{action}\n" + "\n".join(failures)
