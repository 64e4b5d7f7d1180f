"""Live session rooms: seq-ordered pushes after writes, resume/resync, concurrent publishers, gone
members, oversized messages and the sweep, over the real gateways, PostgreSQL and emulator."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import psycopg
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.integration.conftest import Api, Stack, lose_room, new_account, token_for

pytestmark = pytest.mark.integration


def _ok(answer: Any) -> dict[str, Any]:
    assert answer.status_code in (200, 201), answer.text
    return answer.json()  # type: ignore[no-any-return]


def _add_member(database_url: str, account_id: str, role: str, name: str) -> str:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.test"
    with psycopg.connect(database_url) as conn:
        user_id = conn.execute(
            "INSERT INTO users (email, name) VALUES (%s, %s) RETURNING id", (email, name)
        ).fetchone()[0]  # type: ignore[index]
        conn.execute("INSERT INTO memberships VALUES (%s, %s, %s)", (account_id, user_id, role))
    return email


@dataclass
class Team:
    """A fresh account (owner + engineer) with one event and one session: the room under test."""

    stack: Stack
    account_id: str
    owner: Api
    engineer: Api
    session_id: str

    def caller(self) -> Any:
        from chalicelib.domain.caller import Caller

        return Caller(account_id=self.account_id, role="owner", api_key_id=str(uuid.uuid4()))

    def record(
        self,
        n: int = 1,
        entity: str = "board_card",
        op: str = "update",
        data: Callable[[int], dict[str, Any]] | None = None,
    ) -> list[str]:
        """Commit one write recording `n` events in the session; their data ids, once the room publisher
        has logged them (the write itself answers before)."""
        from chalicelib.domain import changes

        ids = []
        with changes.write(self.caller()) as (_, recorder):
            for i in range(n):
                item = data(i) if data else {"id": str(uuid.uuid4()), "title": f"card {i}"}
                recorder.record(entity, op, item, session_id=self.session_id)
                ids.append(item["id"])
        _eventually(lambda: _drained(self))
        return ids

    def record_unpublished(self, n: int = 1) -> list[Any]:
        """Events committed as a write would, but never published (the emulator was down, say)."""
        from chalicelib.domain.changes import Recorder
        from chalicelib.store.postgres import transaction

        with transaction() as conn:
            recorder = Recorder(conn, self.caller())
            for i in range(n):
                recorder.record(
                    "board_card", "update", {"id": str(uuid.uuid4()), "title": f"late {i}"}, session_id=self.session_id
                )
        return recorder.events


@pytest.fixture()
def team(stack: Stack) -> Team:
    email, account_id = new_account("owner")
    owner = Api(stack.api_url, token_for(email))
    engineer = Api(stack.api_url, token_for(_add_member(stack.database_url, account_id, "engineer", "Riley Engineer")))
    event = _ok(owner.post("/events", {"name": "Petit Le Mans", "startsAt": "2026-10-03T16:10:00Z"}))
    session = _ok(owner.post("/sessions", {"eventId": event["id"], "name": "Race", "type": "race"}))
    return Team(stack, account_id, owner, engineer, session["id"])


class Member:
    """A WebSocket client in the bench of the pit wall."""

    def __init__(self, stack: Stack, token: str) -> None:
        # Entered by hand (the socket outlives this statement): a bare connect() is deprecated in websockets 17.
        self.ws: ClientConnection = connect(f"{stack.ws_url}/?token={token}").__enter__()

    def __enter__(self) -> Member:
        return self

    def __exit__(self, *exc: object) -> None:
        self.ws.close()

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def frame(self, timeout_s: float = 10) -> dict[str, Any]:
        return json.loads(self.ws.recv(timeout=timeout_s))  # type: ignore[no-any-return]

    def next(self, wanted: str, timeout_s: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            message = self.frame(max(0.1, deadline - time.monotonic()))
            if message["type"] == wanted:
                return message

    def join(self, session_id: str) -> dict[str, Any]:
        self.send({"action": "join", "sessionId": session_id})
        return self.next("joined")

    def changes(self, n: int, timeout_s: float = 20) -> list[dict[str, Any]]:
        """The next `n` room messages (entity changes), skipping presence and replies."""
        deadline = time.monotonic() + timeout_s
        found: list[dict[str, Any]] = []
        while len(found) < n:
            message = self.frame(max(0.1, deadline - time.monotonic()))
            if "seq" in message and "data" in message:
                found.append(message)
        return found

    def resume(
        self, session_id: str, since_seq: Any, timeout_s: float = 20, epoch: str | None = None
    ) -> list[dict[str, Any]]:
        """Send a resume (naming `epoch` if given); every frame of the answer, up to the final `resumed`
        (or a `resync`)."""
        message = {"action": "resume", "sessionId": session_id, "sinceSeq": since_seq}
        self.send({**message, **({"epoch": epoch} if epoch is not None else {})})
        deadline = time.monotonic() + timeout_s
        frames = [self.frame(max(0.1, deadline - time.monotonic()))]
        while not (frames[-1]["type"] == "resync" or (frames[-1]["type"] == "resumed" and frames[-1]["final"])):
            frames.append(self.frame(max(0.1, deadline - time.monotonic())))
        return frames

    def quiet(self) -> bool:
        """True if nothing is waiting for this client: a ping's pong is the very next frame
        (anything pushed before the ping was posted to the socket before the pong)."""
        self.send({"action": "ping", "t": "quiet?"})
        return self.frame()["type"] == "pong"


def _seqs(messages: list[dict[str, Any]]) -> list[int]:
    return [m["seq"] for m in messages]


def _drained(team: Team) -> bool:
    """Whether the room publisher has logged every committed event of the session."""
    from chalicelib.store.postgres import transaction

    with transaction() as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM domain_events WHERE session_id = %s AND published_at IS NULL", (team.session_id,)
        ).fetchone()
    return row is not None and row["n"] == 0


def _room_seq(team: Team) -> int:
    """The room's last seq, once the writes that created the session are in its room."""
    from chalicelib.store import connections

    _eventually(lambda: _drained(team))
    return connections.last_seq(team.session_id)


def _eventually(check: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


# Writes reach every member, numbered, in one order


def test_members_see_each_others_writes_in_the_same_order(stack: Stack, team: Team) -> None:
    sid = team.session_id
    with Member(stack, team.owner.token or "") as a, Member(stack, team.engineer.token or "") as b:
        base = a.join(sid)["seq"]
        assert b.join(sid)["seq"] == base

        def write(api: Api, who: str) -> None:
            for i in range(5):
                _ok(api.post("/board-cards", {"sessionId": sid, "title": f"{who}-{i}"}))

        writers = [
            threading.Thread(target=write, args=(api, who)) for api, who in ((team.owner, "a"), (team.engineer, "b"))
        ]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        seen_by_a, seen_by_b = a.changes(10), b.changes(10)
    assert seen_by_a == seen_by_b
    assert _seqs(seen_by_a) == list(range(base + 1, base + 11))
    assert {m["type"] for m in seen_by_a} == {"board_card.create"}
    assert {m["sessionId"] for m in seen_by_a} == {sid}
    titles = [m["data"]["title"] for m in seen_by_a]
    assert sorted(titles) == sorted(f"{w}-{i}" for w in "ab" for i in range(5))
    for who in "ab":  # each writer's own writes keep their order
        assert [t for t in titles if t.startswith(who)] == [f"{who}-{i}" for i in range(5)]


def test_ping_answers_pong_with_the_server_time(stack: Stack, team: Team) -> None:
    with Member(stack, team.owner.token or "") as a:
        a.send({"action": "ping", "t": 1234})
        pong = a.next("pong")
    assert pong["t"] == 1234
    assert pong["serverTime"].endswith("Z") and pong["serverTime"][:4].isdigit()


# The roster: the publisher reuses a room's member list until someone joins or leaves


def test_a_member_who_joins_between_two_writes_gets_the_second(stack: Stack, team: Team) -> None:
    sid = team.session_id
    with Member(stack, team.owner.token or "") as a, Member(stack, team.engineer.token or "") as b:
        with Member(stack, team.owner.token or "") as c:  # joins and leaves: whatever counts, counts from here
            c.join(sid)
        a.join(sid)
        team.record(1)
        first = a.changes(1)[0]["seq"]  # the publisher now knows the room as [a]
        assert b.join(sid)["seq"] == first
        team.record(1)
        assert _seqs(a.changes(1)) == _seqs(b.changes(1)) == [first + 1]


def test_a_member_who_leaves_gets_nothing_more_while_still_connected(stack: Stack, team: Team) -> None:
    sid = team.session_id
    with Member(stack, team.owner.token or "") as a, Member(stack, team.engineer.token or "") as b:
        a.join(sid)
        b.join(sid)
        team.record(1)
        assert len(a.changes(1)) == len(b.changes(1)) == 1  # the publisher now knows the room as [a, b]
        b.send({"action": "leave", "sessionId": sid})
        b.next("left")
        team.record(1)
        assert len(a.changes(1)) == 1
        assert b.quiet()


class _FailingWrite:
    """The DynamoDB client, except that its `fail_at`-th write call raises (as a throttle or a
    network error between two writes would)."""

    WRITES = ("put_item", "delete_item", "update_item", "transact_write_items")

    def __init__(self, real: Any, fail_at: int) -> None:
        self.real, self.fail_at, self.calls = real, fail_at, 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.real, name)
        if name not in self.WRITES:
            return method

        def write(**kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self.fail_at:
                raise ConnectionError("DynamoDB went away")
            return method(**kwargs)

        return write


@pytest.mark.parametrize("change", ["join", "leave"])
@pytest.mark.parametrize("fail_at", [1, 2, 3])
def test_a_membership_change_is_never_written_without_its_roster_count(
    stack: Stack, team: Team, monkeypatch: pytest.MonkeyPatch, change: str, fail_at: int
) -> None:
    """Whichever write of a join or leave fails, the membership item and the roster number move
    together: a publisher never keeps a member list that misses an uncounted change."""
    from chalicelib.store import connections

    # The session's own creation is published first: a publisher round in this room while the
    # client is patched would take the ghost (a principal with no access) out of the room itself.
    _eventually(lambda: _drained(team))
    ghost = f"rosterConn{fail_at}{change}="
    connections.save_connection(ghost, team.account_id, "viewer", None, str(uuid.uuid4()), "Roster")
    record = connections.get_connection(ghost)
    assert record is not None
    if change == "leave":
        connections.join_room(team.session_id, record)

    def member() -> bool:
        return ghost in [m["connectionId"] for m in connections.members(team.session_id)]

    before = (member(), connections.room_state(team.session_id).roster or 0)
    failing = _FailingWrite(connections.client("dynamodb"), fail_at)
    monkeypatch.setattr(connections, "client", lambda service: failing)
    try:
        if change == "join":
            connections.join_room(team.session_id, record)
        else:
            connections.leave_room(team.session_id, ghost)
    except Exception:  # which write failed is the parameter; the outcome is what counts
        pass
    monkeypatch.undo()
    after = (member(), connections.room_state(team.session_id).roster or 0)
    assert (after[0] != before[0]) == (after[1] != before[1]), (before, after)


def test_the_publisher_reads_a_rooms_members_again_only_after_a_join_or_leave(
    stack: Stack, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.realtime import roster

    reads: list[str] = []
    read = roster.connections.member_principals

    def counted(session_id: str) -> list[dict[str, Any]]:
        reads.append(session_id)
        return read(session_id)

    monkeypatch.setattr(roster.connections, "member_principals", counted)
    with Member(stack, team.owner.token or "") as a, Member(stack, team.engineer.token or "") as b:
        a.join(team.session_id)
        team.record(1)
        a.changes(1)
        reads.clear()
        for _ in range(3):
            team.record(1)
            a.changes(1)
        assert reads == []  # three rounds, one list
        b.join(team.session_id)
        reads.clear()
        team.record(1)
        a.changes(1)
        b.changes(1)
        assert reads.count(team.session_id) >= 1


def test_the_publisher_sends_what_it_has_just_logged_without_reading_it_back(
    stack: Stack, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.store import connections

    reads: list[tuple[int, int]] = []
    read = connections.logged_messages

    def counted(session_id: str, first_seq: int, last_seq: int, limit: int) -> list[Any]:
        reads.append((first_seq, last_seq))
        return read(session_id, first_seq, last_seq, limit)

    monkeypatch.setattr(connections, "logged_messages", counted)
    with Member(stack, team.owner.token or "") as a:
        a.join(team.session_id)
        reads.clear()
        team.record(3)
        assert len(a.changes(3)) == 3
    assert reads == []


def test_a_round_in_a_room_nobody_touched_logs_and_takes_the_turn_at_once(
    stack: Stack, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.store import connections

    turns: list[str] = []
    at_once: list[bool] = []
    try_turn, append_in_turn = connections.try_turn, connections.append_in_turn

    def counted_turn(session_id: str, holder: str, lease_ms: int) -> Any:
        turns.append(session_id)
        return try_turn(session_id, holder, lease_ms)

    def counted_at_once(session_id: str, entries: Any, expected: Any, holder: str, lease_ms: int) -> Any:
        logged = append_in_turn(session_id, entries, expected, holder, lease_ms)
        at_once.append(logged is not None)
        return logged

    monkeypatch.setattr(connections, "try_turn", counted_turn)
    monkeypatch.setattr(connections, "append_in_turn", counted_at_once)
    with Member(stack, team.owner.token or "") as a, Member(stack, team.engineer.token or "") as b:
        a.join(team.session_id)
        seqs = [m["seq"] for m in a.changes(0)]
        team.record(1)
        seqs += [m["seq"] for m in a.changes(1)]
        turns.clear()
        at_once.clear()
        for _ in range(3):
            team.record(1)
            seqs += [m["seq"] for m in a.changes(1)]
        assert turns == [] and at_once == [True, True, True]
        b.join(team.session_id)  # the room changed (a member, a turn): the next round checks again
        team.record(1)
        last = a.changes(1)[0]["seq"]
        assert [m["seq"] for m in b.changes(1)] == [last]
        assert [*seqs, last] == list(range(seqs[0], seqs[0] + 5))


def test_a_round_whose_remembered_room_is_stale_takes_the_turn_as_before(stack: Stack, team: Team) -> None:
    from dataclasses import replace

    from chalicelib.realtime import broadcast

    with Member(stack, team.owner.token or "") as a:
        a.join(team.session_id)
        team.record(1)
        first = a.changes(1)[0]["seq"]
        remembered = broadcast._last_rounds.get(team.session_id)
        assert remembered is not None
        # Another process logged and sent two messages since (the head this process knows is behind).
        broadcast._last_rounds.remember(team.session_id, replace(remembered, seq=first - 1, sent_seq=first - 1))
        team.record(2)
        assert [m["seq"] for m in a.changes(2)] == [first + 1, first + 2]
        assert broadcast._last_rounds.get(team.session_id) is not None  # remembered afresh


# Resume and resync


def test_a_client_that_reconnects_and_resumes_gets_exactly_what_it_missed(stack: Stack, team: Team) -> None:
    sid = team.session_id
    with Member(stack, team.owner.token or "") as a:
        a.join(sid)
        team.record(1)
        last = a.changes(1)[0]["seq"]
    missed = team.record(3)  # while the client is away
    with Member(stack, team.owner.token or "") as again:
        (resumed,) = again.resume(sid, last)
        assert [m["data"]["id"] for m in resumed["messages"]] == missed
        assert _seqs(resumed["messages"]) == [last + 1, last + 2, last + 3]
        assert {m["type"] for m in resumed["messages"]} == {"board_card.update"}
        assert (resumed["type"], resumed["sessionId"], resumed["fromSeq"], resumed["toSeq"], resumed["final"]) == (
            "resumed",
            sid,
            last + 1,
            last + 3,
            True,
        )
        assert [m["name"] for m in resumed["members"]] == ["Test User"]
        team.record(1)  # and it is back in the room
        assert again.changes(1)[0]["seq"] == last + 4


def test_resume_with_nothing_missed_answers_an_empty_resumed(stack: Stack, team: Team) -> None:
    team.record(2)
    now = _room_seq(team)
    with Member(stack, team.owner.token or "") as a:
        (resumed,) = a.resume(team.session_id, now)
    assert (resumed["fromSeq"], resumed["toSeq"], resumed["messages"], resumed["final"]) == (now + 1, now, [], True)


def test_resume_beyond_the_message_window_answers_resync(stack: Stack, team: Team) -> None:
    from chalicelib.realtime.broadcast import WINDOW_MESSAGES

    sid = team.session_id
    start = _room_seq(team)
    team.record(WINDOW_MESSAGES + 1)  # nobody in the room
    with Member(stack, team.owner.token or "") as a:
        (resync,) = a.resume(sid, start)
        assert resync["type"] == "resync" and resync["reason"] == "beyond_window"
        assert resync["seq"] == start + WINDOW_MESSAGES + 1
        # Exactly the window is still replayed, in frames of at most 32 KB of messages.
        frames = a.resume(sid, start + 1)
        assert len(frames) > 1 and all(f["type"] == "resumed" for f in frames)
        assert [f["final"] for f in frames] == [False] * (len(frames) - 1) + [True]
        assert all(len(json.dumps(f["messages"], separators=(",", ":"))) <= 32 * 1024 for f in frames)
        assert [f["fromSeq"] for f in frames[1:]] == [f["toSeq"] + 1 for f in frames[:-1]]
        assert _seqs([m for f in frames for m in f["messages"]]) == list(range(start + 2, start + WINDOW_MESSAGES + 2))
        team.record(1)  # pushes carry on after the resync point
        assert a.changes(1)[0]["seq"] == start + WINDOW_MESSAGES + 2


def test_resume_past_expired_messages_answers_resync(stack: Stack, team: Team) -> None:
    from chalicelib.config import settings
    from chalicelib.store.aws import client

    sid = team.session_id
    start = _room_seq(team)
    team.record(2)
    # The first message's time in the log is up (the emulator never deletes expired items).
    client("dynamodb").update_item(
        TableName=settings().connections_table,
        Key={"pk": {"S": f"log#{sid}"}, "sk": {"S": f"msg#{start + 1:012d}"}},
        UpdateExpression="SET expiresAt = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    with Member(stack, team.owner.token or "") as a:
        assert a.resume(sid, start)[0]["reason"] == "beyond_window"
        (resumed,) = a.resume(sid, start + 1)
        assert _seqs(resumed["messages"]) == [start + 2]


def test_resume_from_a_seq_the_room_never_reached_answers_resync(stack: Stack, team: Team) -> None:
    team.record(1)
    now = _room_seq(team)
    with Member(stack, team.owner.token or "") as a:
        (resync,) = a.resume(team.session_id, now + 40)
    assert (resync["reason"], resync["seq"]) == ("unknown_seq", now)


def test_joined_and_every_resumed_frame_carry_the_rooms_epoch(stack: Stack, team: Team) -> None:
    sid = team.session_id
    with Member(stack, team.owner.token or "") as a:
        joined = a.join(sid)
        epoch = joined["epoch"]
        assert isinstance(epoch, str) and 0 < len(epoch) <= 64
        team.record(3)
        a.changes(3)  # pushed while in the room; the resume replays them again
        frames = a.resume(sid, joined["seq"], epoch=epoch)
        assert [f["epoch"] for f in frames] == [epoch] and _seqs(frames[0]["messages"]) == [
            joined["seq"] + 1,
            joined["seq"] + 2,
            joined["seq"] + 3,
        ]
        (resync,) = a.resume(sid, joined["seq"] + 40, epoch=epoch)  # the right epoch, a seq never reached
        assert (resync["reason"], resync["epoch"]) == ("unknown_seq", epoch)
    with Member(stack, team.engineer.token or "") as b:
        assert b.join(sid)["epoch"] == epoch  # one room, one epoch


def test_a_resume_from_before_the_room_restarted_answers_resync_even_past_the_old_seq(stack: Stack, team: Team) -> None:
    sid = team.session_id
    with Member(stack, team.owner.token or "") as a:
        joined = a.join(sid)
        team.record(2)
        last = a.changes(2)[-1]["seq"]
    lose_room(sid)
    team.record(last + 3)  # the new numbering passes the client's last seq
    now = _room_seq(team)
    assert now == last + 3
    with Member(stack, team.owner.token or "") as again:
        (resync,) = again.resume(sid, last, epoch=joined["epoch"])
        assert (resync["type"], resync["reason"], resync["seq"]) == ("resync", "room_restarted", now)
        assert resync["epoch"] != joined["epoch"] and [m["name"] for m in resync["members"]] == ["Test User"]
        team.record(1)  # pushes continue after the resync's seq
        assert again.changes(1)[0]["seq"] == now + 1
        # The new epoch replays as usual; without one, the answer is as before epochs (the new messages).
        (resumed,) = again.resume(sid, last, epoch=resync["epoch"])
        assert (resumed["type"], resumed["fromSeq"], resumed["toSeq"]) == ("resumed", last + 1, now + 1)
        (legacy,) = again.resume(sid, last)
        assert (legacy["type"], legacy["epoch"]) == ("resumed", resync["epoch"])


def test_a_resume_naming_another_rooms_epoch_answers_resync(stack: Stack, team: Team) -> None:
    event = _ok(team.owner.post("/events", {"name": "Road Atlanta test", "startsAt": "2026-09-01T14:00:00Z"}))
    other = _ok(team.owner.post("/sessions", {"eventId": event["id"], "name": "FP1", "type": "practice"}))["id"]
    # The other session's creation is pushed to its room by now: no push of it can come after the join.
    _eventually(lambda: _drained(replace(team, session_id=other)))
    with Member(stack, team.owner.token or "") as a:
        theirs = a.join(other)["epoch"]
        now = _room_seq(team)
        (resync,) = a.resume(team.session_id, now, epoch=theirs)
    assert (resync["reason"], resync["seq"], resync["sessionId"]) == ("room_restarted", now, team.session_id)
    assert resync["epoch"] != theirs


@pytest.mark.parametrize("epoch", [123, "", "e" * 65, ["a"], {"epoch": "a"}, True, "e" * 40_000])
def test_resume_needs_a_short_string_epoch(stack: Stack, team: Team, epoch: Any) -> None:
    with Member(stack, team.owner.token or "") as a:
        a.send({"action": "resume", "sessionId": team.session_id, "sinceSeq": 0, "epoch": epoch})
        error = a.next("error")
    from chalicelib.store import connections

    expected = ("invalid", "epoch") if not (isinstance(epoch, str) and len(epoch) > 30_000) else ("invalid", None)
    assert (error["code"], error.get("field")) == expected  # a 40 KB epoch is over the message limit itself
    assert connections.members(team.session_id) == []  # refused before entering the room


@pytest.mark.parametrize("since_seq", ["3", -1, True, None, 1.5])
def test_resume_needs_an_integer_since_seq(stack: Stack, team: Team, since_seq: Any) -> None:
    with Member(stack, team.owner.token or "") as a:
        a.send({"action": "resume", "sessionId": team.session_id, "sinceSeq": since_seq})
        error = a.next("error")
    assert (error["code"], error["field"]) == ("invalid", "sinceSeq")


def test_a_member_of_another_account_can_neither_join_nor_resume(stack: Stack, team: Team) -> None:
    from chalicelib.store import connections

    outsider_email, _ = new_account("owner")
    with Member(stack, token_for(outsider_email)) as outsider:
        outsider.send({"action": "join", "sessionId": team.session_id})
        assert outsider.next("error")["code"] == "not_found"
        outsider.send({"action": "resume", "sessionId": team.session_id, "sinceSeq": 0})
        assert outsider.next("error")["code"] == "not_found"
        assert connections.members(team.session_id) == []
        team.record(1)
        assert outsider.quiet()


# Concurrent publishers


def test_concurrent_publishers_get_unique_contiguous_seqs_in_send_order(stack: Stack, team: Team) -> None:
    with Member(stack, team.owner.token or "") as a:
        base = a.join(team.session_id)["seq"]
        start = threading.Barrier(6)

        def publisher(tag: str) -> None:
            start.wait()
            for i in range(5):
                team.record(1, data=lambda _, i=i: {"id": str(uuid.uuid4()), "title": f"{tag}-{i}"})

        threads = [threading.Thread(target=publisher, args=(f"t{n}",)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        got = a.changes(30)
        assert a.quiet()
    assert _seqs(got) == list(range(base + 1, base + 31))
    titles = [m["data"]["title"] for m in got]
    for n in range(6):
        assert [t for t in titles if t.startswith(f"t{n}-")] == [f"t{n}-{i}" for i in range(5)]


def _publish_from_another_process(account_id: str, session_id: str, tag: str, n: int, start: Any) -> None:
    """An API Lambda of its own: separate process, caches, clients and pools."""
    from chalicelib import wiring
    from chalicelib.domain import changes

    wiring.install()  # as app.py does at cold start
    from chalicelib.domain.caller import Caller

    caller = Caller(account_id=account_id, role="owner", api_key_id=str(uuid.uuid4()))
    start.wait(timeout=60)
    for i in range(n):
        with changes.write(caller) as (_, recorder):
            recorder.record(
                "board_card", "update", {"id": str(uuid.uuid4()), "title": f"{tag}-{i}"}, session_id=session_id
            )


def test_publishers_in_separate_processes_never_share_or_skip_a_seq(stack: Stack, team: Team) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(3)
    with Member(stack, team.owner.token or "") as a:
        base = a.join(team.session_id)["seq"]
        processes = [
            context.Process(
                target=_publish_from_another_process, args=(team.account_id, team.session_id, f"p{n}", 8, start)
            )
            for n in range(3)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=120)
        assert [p.exitcode for p in processes] == [0, 0, 0]
        got = a.changes(24)
        assert a.quiet()
    assert _seqs(got) == list(range(base + 1, base + 25))
    titles = [m["data"]["title"] for m in got]
    for n in range(3):
        assert [t for t in titles if t.startswith(f"p{n}-")] == [f"p{n}-{i}" for i in range(8)]


# Fan-out: gone members, oversized messages, a sender that died


def test_a_member_whose_connection_is_gone_is_removed_from_the_room(stack: Stack, team: Team) -> None:
    from chalicelib.store import connections

    ghost = "ghostConnId0="
    key = _ok(team.owner.post("/api-keys", {"name": "ghost", "role": "viewer"}))  # holds access: only 410 removes it
    connections.save_connection(ghost, team.account_id, "viewer", None, key["id"], "Ghost")
    record = connections.get_connection(ghost)
    assert record is not None
    connections.join_room(team.session_id, record)
    with Member(stack, team.owner.token or "") as a:
        a.join(team.session_id)
        team.record(1)
        assert len(a.changes(1)) == 1

        def ghost_gone() -> bool:
            members = [m["connectionId"] for m in connections.members(team.session_id)]
            return ghost not in members and len(members) == 1

        _eventually(ghost_gone)
        assert connections.get_connection(ghost) is None


def test_a_message_over_32_kb_becomes_a_pointer(stack: Stack, team: Team) -> None:
    lap_id, card_id = str(uuid.uuid4()), str(uuid.uuid4())
    with Member(stack, team.owner.token or "") as a:
        a.join(team.session_id)
        team.record(1, entity="lap", data=lambda _: {"id": lap_id, "notes": "x" * 40_000})
        team.record(1, entity="board_card", data=lambda _: {"id": card_id, "body": "é" * 17_000})
        team.record(1, entity="board_card", data=lambda _: {"id": card_id, "body": "small"})
        lap, big_card, small_card = a.changes(3)
    assert lap["type"] == "lap.update"
    assert lap["data"] == {"id": lap_id, "truncated": True, "href": f"/laps/{lap_id}"}
    assert big_card["data"] == {"id": card_id, "truncated": True, "href": f"/board-cards/{card_id}"}
    assert small_card["data"] == {"id": card_id, "body": "small"}


def test_pointer_paths_fit_the_entity() -> None:
    import datetime as dt

    from chalicelib.domain.changes import DomainEvent
    from chalicelib.realtime.broadcast import render

    def frame(entity: str, data: dict[str, Any]) -> dict[str, Any]:
        event = DomainEvent(
            1,
            "acc",
            f"{entity}.update",
            entity,
            "update",
            data.get("id"),
            "sess",
            {**data, "blob": "x" * 40_000},
            {},
            dt.datetime.now(dt.UTC),
        )
        rendered = render(event, 7)
        assert len(rendered.encode()) < 1024
        return json.loads(rendered)  # type: ignore[no-any-return]

    assert frame("run_sheet", {"id": "r1"})["data"]["href"] == "/run-sheets/r1"
    assert frame("issue", {"id": "i1"})["data"]["href"] == "/issues/i1"
    assert frame("timing_import", {"id": "t1"})["data"]["href"] == "/sessions/sess/timing-imports/t1"
    assert frame("strategy", {"id": "e1", "eventId": "e1"})["data"]["href"] == "/events/e1/strategy"
    assert frame("lap", {"id": "l1"}) == {
        "type": "lap.update",
        "sessionId": "sess",
        "seq": 7,
        "data": {"id": "l1", "truncated": True, "href": "/laps/l1"},
    }


def _strand(team: Team) -> int:
    """What a sender that died mid fan-out leaves: a logged message nobody sent, and its turn,
    whose lease has run out. Returns the stranded message's seq."""
    from chalicelib.realtime.broadcast import render
    from chalicelib.store import connections

    (event,) = team.record_unpublished(1)
    with psycopg.connect(team.stack.database_url) as conn:
        conn.execute("UPDATE domain_events SET published_at = now() WHERE id = %s", (event.id,))
    # (The join that just answered may still hold the turn for a moment.)
    _eventually(lambda: connections.take_turn(team.session_id, "dead-sender", lease_ms=-1) is not None)
    (logged,) = connections.append_messages(team.session_id, [(event.id, lambda seq: render(event, seq))])
    return logged.seq


def test_a_message_a_dead_sender_left_goes_out_with_the_next_join(stack: Stack, team: Team) -> None:
    with Member(stack, team.owner.token or "") as a:
        base = a.join(team.session_id)["seq"]
        stranded = _strand(team)
        assert stranded == base + 1
        with Member(stack, team.engineer.token or "") as b:
            assert b.join(team.session_id)["seq"] == base
            assert _seqs(b.changes(1)) == [stranded]
        assert _seqs(a.changes(1)) == [stranded]


def test_the_sweep_finishes_a_fan_out_a_dead_sender_left(stack: Stack, team: Team) -> None:
    from chalicelib.realtime import sweep

    with Member(stack, team.owner.token or "") as a:
        a.join(team.session_id)
        stranded = _strand(team)
        assert sweep.finish_fan_outs() >= 1
        assert _seqs(a.changes(1)) == [stranded]
        sweep.finish_fan_outs()
        assert a.quiet()


# The sweep


def _published_at(stack: Stack, event_ids: list[int]) -> list[Any]:
    with psycopg.connect(stack.database_url) as conn:
        rows = conn.execute(
            "SELECT published_at FROM domain_events WHERE id = ANY(%s) ORDER BY id", (event_ids,)
        ).fetchall()
    return [row[0] for row in rows]


def test_the_sweep_publishes_an_unpublished_event_exactly_once(stack: Stack, team: Team) -> None:
    from chalicelib.realtime import sweep

    with Member(stack, team.owner.token or "") as a:
        base = a.join(team.session_id)["seq"]
        late = team.record_unpublished(2)
        assert _published_at(stack, [e.id for e in late]) == [None, None]
        sweeps = [threading.Thread(target=sweep.publish_left_over, kwargs={"min_age_s": 0}) for _ in range(3)]
        for thread in sweeps:
            thread.start()
        for thread in sweeps:
            thread.join()
        sweep.publish_left_over(min_age_s=0)
        (sentinel,) = team.record(1)
        got = a.changes(3)
        assert a.quiet()
    assert [m["data"]["id"] for m in got] == [*(e.data["id"] for e in late), sentinel]
    assert _seqs(got) == [base + 1, base + 2, base + 3]
    assert None not in _published_at(stack, [e.id for e in late])


def test_the_sweep_does_not_resend_an_event_its_writer_got_into_the_room(stack: Stack, team: Team) -> None:
    from chalicelib.realtime import broadcast, sweep

    with Member(stack, team.owner.token or "") as a:
        base = a.join(team.session_id)["seq"]
        late = team.record_unpublished(1)
        broadcast.publish(late)  # ...and the writer crashed before marking it published
        assert _seqs(a.changes(1)) == [base + 1]
        sweep.publish_left_over(min_age_s=0)
        assert None not in _published_at(stack, [late[0].id])
        team.record(1)
        assert _seqs(a.changes(1)) == [base + 2]


def test_a_round_also_sends_what_its_session_committed_since_and_their_messages_send_nothing(
    stack: Stack, team: Team
) -> None:
    from chalicelib.realtime import publisher
    from chalicelib.realtime.room_queue import RoomMessage

    with Member(stack, team.owner.token or "") as a:
        base = a.join(team.session_id)["seq"]
        waiting = team.record_unpublished(2)  # committed; their queue messages not handled yet
        (card,) = team.record(1)  # its round reads ahead
        got = a.changes(3)
        assert [m["data"]["id"] for m in got] == [*(e.data["id"] for e in waiting), card]
        assert _seqs(got) == [base + 1, base + 2, base + 3]
        assert None not in _published_at(stack, [e.id for e in waiting])
        # Their own messages, coming next, find the events published: nothing is sent twice.
        assert publisher.publish_message(RoomMessage(team.session_id, tuple(e.id for e in waiting)))
        assert a.quiet()


def test_a_round_reads_ahead_only_its_own_session(stack: Stack, team: Team) -> None:
    from chalicelib.realtime import publisher
    from chalicelib.realtime.room_queue import RoomMessage
    from chalicelib.store.postgres import transaction

    event_id = _ok(team.owner.get(f"/sessions/{team.session_id}"))["eventId"]
    other = _ok(team.owner.post("/sessions", {"eventId": event_id, "name": "Qualifying", "type": "qualifying"}))
    _eventually(lambda: _drained(team))  # the session's own creation, published by its round
    mine = team.record_unpublished(2)
    elsewhere = Team(stack, team.account_id, team.owner, team.engineer, other["id"]).record_unpublished(1)
    with transaction() as conn:
        ahead = publisher.waiting(conn, RoomMessage(team.session_id, (mine[0].id,)))
    assert ahead == [mine[1].id]  # not another session's, not the message's own again
    assert elsewhere[0].id not in ahead


def test_a_round_never_reads_ahead_into_another_account(stack: Stack, team: Team) -> None:
    """An event of another account naming this session (no route lets a write do that; a bug or a
    forged row might) is not taken by this session's round."""
    from chalicelib.realtime import publisher
    from chalicelib.realtime.room_queue import RoomMessage
    from chalicelib.store.postgres import transaction

    _eventually(lambda: _drained(team))
    mine = team.record_unpublished(2)
    _, other_account = new_account("owner")
    intruder = replace(team, account_id=other_account)
    (theirs,) = intruder.record_unpublished(1)  # same session id, the other account
    with transaction() as conn:
        ahead = publisher.waiting(conn, RoomMessage(team.session_id, (mine[0].id,)))
    assert ahead == [mine[1].id]  # its own account's waiting event only
    with psycopg.connect(stack.database_url) as conn:  # leave nothing for the sweep to push into the room
        conn.execute("UPDATE domain_events SET published_at = now() WHERE id = %s", (theirs.id,))


def test_the_sweep_runs_every_minute_from_the_schedule(stack: Stack) -> None:
    from app import app
    from infra.local.scheduler import Scheduler

    scheduler = Scheduler(app)
    now = time.time()
    scheduler.run_due(now=now)
    assert "room_sweep" in scheduler.run_due(now=now + 60)
