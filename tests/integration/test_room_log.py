"""The room log's ordering rules, one suite run against the in-memory twin and DynamoDB (the emulator)."""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from typing import Any

import pytest

from chalicelib.store.connections import RoomState
from chalicelib.store.room_log import DynamoRoomLog, Entry, RoomLog, take_turn
from tests.integration.conftest import lose_room
from tests.twins import MemoryRoomLog

pytestmark = pytest.mark.integration

_event_ids = itertools.count(10_000_000)


@pytest.fixture(params=["memory", "dynamodb"])
def log(request: pytest.FixtureRequest) -> RoomLog:
    if request.param == "memory":
        return MemoryRoomLog()
    request.getfixturevalue("stack")  # the emulator, provisioned, and the app's environment
    return DynamoRoomLog()


@pytest.fixture()
def room() -> str:
    return str(uuid.uuid4())


def entries(n: int, tag: str = "m") -> list[Entry]:
    """n new events, each rendered as a frame carrying its seq (as the broadcast renders them)."""
    return [
        (next(_event_ids), lambda seq, i=i: json.dumps({"seq": seq, "data": {"title": f"{tag}{i}"}})) for i in range(n)
    ]


def titles(messages: list) -> list[str]:  # type: ignore[type-arg]
    return [json.loads(m.body)["data"]["title"] for m in messages]


def test_numbers_start_at_one_in_entry_order_and_each_frame_carries_its_number(log: RoomLog, room: str) -> None:
    assert log.state(room).seq == 0
    logged = log.append(room, entries(3))
    assert [m.seq for m in logged] == [1, 2, 3]
    assert [json.loads(m.body)["seq"] for m in logged] == [1, 2, 3]
    assert titles(logged) == ["m0", "m1", "m2"]
    assert log.state(room).seq == 3
    assert [m.seq for m in log.append(room, entries(2))] == [4, 5]


def test_an_event_is_logged_once_however_often_it_is_appended(log: RoomLog, room: str) -> None:
    first = entries(3)
    log.append(room, first)
    again = log.append(room, [first[1], *entries(1, "new"), first[2]])  # a retry carrying an old event
    assert [(m.seq, titles([m])[0]) for m in again] == [(4, "new0")]
    assert titles(log.read(room, 1, 10, 10)) == ["m0", "m1", "m2", "new0"]


def test_concurrent_appends_never_share_or_skip_a_number(log: RoomLog, room: str) -> None:
    writers, per_writer = 6, 5
    got: dict[int, list[int]] = {}
    start = threading.Barrier(writers)

    def write(n: int) -> None:
        start.wait(timeout=30)
        got[n] = [m.seq for _ in range(per_writer) for m in log.append(room, entries(1, f"w{n}-"))]

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    numbers = sorted(seq for seqs in got.values() for seq in seqs)
    assert numbers == list(range(1, writers * per_writer + 1))
    assert all(seqs == sorted(seqs) for seqs in got.values())  # each writer's own appends keep their order
    assert log.state(room).seq == writers * per_writer


def test_reading_is_in_order_bounded_and_limited(log: RoomLog, room: str) -> None:
    log.append(room, entries(7))
    assert [m.seq for m in log.read(room, 2, 5, 100)] == [2, 3, 4, 5]
    assert [m.seq for m in log.read(room, 2, 7, 3)] == [2, 3, 4]
    assert log.read(room, 8, 20, 10) == [] and log.read(room, 5, 4, 10) == [] and log.read(room, 1, 7, 0) == []
    assert log.read(str(uuid.uuid4()), 1, 10, 10) == []  # another room's log is its own


def test_one_sender_holds_the_turn_until_it_ends_or_its_lease_runs_out(log: RoomLog, room: str) -> None:
    log.append(room, entries(4))
    state = take_turn(log, room, "a", lease_ms=60_000)
    assert state is not None and (state.seq, state.sent_seq, state.holder) == (4, 0, "a")
    taken, seen = log.try_turn(room, "b", 60_000)
    assert not taken and (seen is None or seen.holder == "a")
    assert not log.advance_turn(room, "b", 4, 60_000)  # only the holder records progress
    assert log.end_turn(room, "b", 4) is None
    assert log.advance_turn(room, "a", 2, 60_000) and log.state(room).sent_seq == 2
    after = log.end_turn(room, "a", 4)
    assert after is not None and (after.seq, after.sent_seq, after.holder) == (4, 4, None)
    assert take_turn(log, room, "b", 60_000) is not None  # free again


def test_a_dead_senders_turn_is_taken_over_once_its_lease_ran_out(log: RoomLog, room: str) -> None:
    assert take_turn(log, room, "dead", lease_ms=-1) is not None  # a lease that has already run out
    taken = take_turn(log, room, "alive", lease_ms=60_000)
    assert taken is not None and taken.holder == "alive"
    assert not log.advance_turn(room, "dead", 1, 60_000)


def test_numbers_continue_after_what_was_sent(log: RoomLog, room: str) -> None:
    log.append(room, entries(2))
    holder = uuid.uuid4().hex
    state = take_turn(log, room, holder, 60_000)
    assert state is not None
    log.end_turn(room, holder, 2)
    assert [m.seq for m in log.append(room, entries(1), log.state(room))] == [3]


# Logging and taking the turn at once, while the room is as a publisher's last round left it


def _after_a_round(log: RoomLog, room: str, n: int = 2) -> RoomState:
    """The room as a publisher's end_turn leaves it: n messages logged and sent, nobody's turn."""
    log.append(room, entries(n))
    holder = uuid.uuid4().hex
    assert take_turn(log, room, holder, 60_000) is not None
    after = log.end_turn(room, holder, n)
    assert after is not None and after.epoch is not None
    return after


def test_appending_in_turn_logs_after_the_head_and_makes_the_holder_sender(log: RoomLog, room: str) -> None:
    expected = _after_a_round(log, room)
    logged = log.append_in_turn(room, entries(2, "x"), expected, "me", 60_000)
    assert logged is not None and [m.seq for m in logged] == [3, 4]
    assert [json.loads(m.body)["seq"] for m in logged] == [3, 4] and titles(logged) == ["x0", "x1"]
    state = log.state(room)
    assert (state.seq, state.sent_seq, state.holder, state.epoch) == (4, 2, "me", expected.epoch)
    assert not log.try_turn(room, "other", 60_000)[0]  # the turn is ours
    assert log.end_turn(room, "me", 4) is not None
    assert titles(log.read(room, 3, 4, 10)) == ["x0", "x1"]


def test_appending_in_turn_writes_nothing_once_another_logged_meanwhile(log: RoomLog, room: str) -> None:
    expected = _after_a_round(log, room)
    log.append(room, entries(1, "other"))  # another publisher's message: the head moved
    assert log.append_in_turn(room, entries(1, "x"), expected, "me", 60_000) is None
    state = log.state(room)
    assert (state.seq, state.holder) == (3, None)
    assert titles(log.read(room, 1, 10, 10)) == ["m0", "m1", "other0"]


def test_appending_in_turn_writes_nothing_while_anothers_lease_runs(log: RoomLog, room: str) -> None:
    expected = _after_a_round(log, room)
    assert take_turn(log, room, "joiner", 60_000) is not None  # e.g. a join answering inside the turn
    assert log.append_in_turn(room, entries(1), expected, "me", 60_000) is None
    assert log.state(room).holder == "joiner" and log.read(room, 3, 10, 10) == []
    log.end_turn(room, "joiner")
    # The join logged nothing and gave the turn back: the room is as expected again.
    assert log.append_in_turn(room, entries(1), expected, "me", 60_000) is not None


def test_appending_in_turn_writes_nothing_once_more_was_sent(log: RoomLog, room: str) -> None:
    expected = _after_a_round(log, room)
    log.append(room, entries(1))
    _sent(log, room)
    moved = log.state(room)
    stale = RoomState(moved.seq, expected.sent_seq, None, 0, expected.epoch, expected.roster)
    assert log.append_in_turn(room, entries(1), stale, "me", 60_000) is None
    assert log.append_in_turn(room, entries(1), moved, "me", 60_000) is not None


def test_appending_in_turn_writes_nothing_for_an_event_logged_before(log: RoomLog, room: str) -> None:
    first = entries(1)
    log.append(room, first)
    holder = uuid.uuid4().hex
    assert take_turn(log, room, holder, 60_000) is not None
    expected = log.end_turn(room, holder, 1)
    assert expected is not None
    assert log.append_in_turn(room, [*entries(1, "new"), first[0]], expected, "me", 60_000) is None
    assert log.state(room).seq == 1 and log.state(room).holder is None


def test_appending_in_turn_needs_a_room_with_a_numbering(log: RoomLog, room: str) -> None:
    assert log.append_in_turn(room, entries(1), RoomState(0, 0, None, 0), "me", 60_000) is None
    assert log.state(room).seq == 0


# The room's epoch: the id of its numbering


def _lose_room(log: RoomLog, room: str) -> None:
    """Everything of the room gone (its state item, log and claims), as a table recreated by a redeploy."""
    if isinstance(log, MemoryRoomLog):
        log.lose_room(room)
        return
    lose_room(room)


def _room_older_than_epochs(log: RoomLog, room: str, seq: int) -> None:
    """A room whose state item was written before rooms had epochs: a head, no epoch."""
    if isinstance(log, MemoryRoomLog):
        log._states[room] = RoomState(seq, seq, None, 0)
        return
    from chalicelib.config import settings
    from chalicelib.store.aws import client

    client("dynamodb").put_item(
        TableName=settings().connections_table,
        Item={"pk": {"S": f"room#{room}"}, "sk": {"S": "turn"}, "seq": {"N": str(seq)}, "sentSeq": {"N": str(seq)}},
    )


def _resume(log: RoomLog, room: str, since_seq: int, since_epoch: str | None) -> dict[str, Any]:
    """The answer to a resume (broadcast.resume_frames over this log), as the final frame."""
    from chalicelib.realtime.broadcast import Position, resume_frames

    state = log.state(room)
    assert state.epoch is not None
    frames = resume_frames(room, since_seq, Position(state.sent_seq, state.epoch), [], since_epoch, log)
    return json.loads(frames[-1])  # type: ignore[no-any-return]


def _sent(log: RoomLog, room: str) -> None:
    """Record everything logged as sent (what the fan-out does after pushing it)."""
    holder = uuid.uuid4().hex
    assert take_turn(log, room, holder, 60_000) is not None
    log.end_turn(room, holder, log.state(room).seq)


def test_a_rooms_epoch_is_set_by_its_first_write_and_kept_by_every_later_one(log: RoomLog, room: str) -> None:
    assert log.state(room).epoch is None  # nothing written yet
    log.append(room, entries(2))
    epoch = log.state(room).epoch
    assert isinstance(epoch, str) and 0 < len(epoch) <= 64
    state = take_turn(log, room, "a", 60_000)
    assert state is not None and state.epoch == epoch
    assert log.advance_turn(room, "a", 1, 60_000)
    after = log.end_turn(room, "a", 2)
    assert after is not None and after.epoch == epoch
    log.append(room, entries(3))
    assert log.epoch(room) == log.state(room).epoch == epoch


def test_a_rooms_first_turn_or_epoch_read_gives_it_its_epoch(log: RoomLog, room: str) -> None:
    state = take_turn(log, room, "a", 60_000)
    assert state is not None and state.epoch is not None
    assert log.epoch(room) == state.epoch
    other = str(uuid.uuid4())
    assert log.epoch(other) == log.state(other).epoch != state.epoch  # each room has its own


def test_concurrent_first_writers_agree_on_one_epoch(log: RoomLog, room: str) -> None:
    writers = 6
    seen: list[str | None] = []
    start = threading.Barrier(writers)

    def write(n: int) -> None:
        start.wait(timeout=30)
        if n % 3 == 0:
            log.append(room, entries(1, f"w{n}-"))
            seen.append(log.state(room).epoch)
        elif n % 3 == 1:
            seen.append(log.try_turn(room, f"h{n}", 60_000)[1].epoch)  # type: ignore[union-attr]
        else:
            seen.append(log.epoch(room))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == writers and set(seen) == {log.state(room).epoch} and None not in seen


def test_a_room_older_than_epochs_gets_one_lazily_and_keeps_its_numbers(log: RoomLog, room: str) -> None:
    _room_older_than_epochs(log, room, 7)
    assert log.state(room).epoch is None
    state = take_turn(log, room, "a", 60_000)
    assert state is not None and state.epoch is not None and (state.seq, state.sent_seq) == (7, 7)
    log.end_turn(room, "a")
    assert [m.seq for m in log.append(room, entries(1))] == [8]
    assert log.epoch(room) == state.epoch


def test_a_lost_room_numbers_from_one_again_under_a_new_epoch(log: RoomLog, room: str) -> None:
    log.append(room, entries(5))
    before = log.epoch(room)
    _lose_room(log, room)
    assert [m.seq for m in log.append(room, entries(2))] == [1, 2]
    assert log.epoch(room) != before


def test_a_resume_from_before_the_room_was_lost_answers_resync_room_restarted(log: RoomLog, room: str) -> None:
    log.append(room, entries(3))
    _sent(log, room)
    old = log.epoch(room)
    _lose_room(log, room)
    log.append(room, entries(6, "new"))  # the new numbering passes the client's seq 3
    _sent(log, room)
    resync = _resume(log, room, 3, old)
    assert (resync["type"], resync["reason"], resync["seq"]) == ("resync", "room_restarted", 6)
    assert resync["epoch"] == log.epoch(room) != old
    # The right epoch replays; no epoch (a client from before epochs) is answered as before.
    for epoch in (log.epoch(room), None):
        resumed = _resume(log, room, 3, epoch)
        assert (resumed["type"], resumed["fromSeq"], resumed["toSeq"], resumed["final"]) == ("resumed", 4, 6, True)
        assert resumed["epoch"] == log.epoch(room)
        assert [m["data"]["title"] for m in resumed["messages"]] == ["new3", "new4", "new5"]


def test_a_resume_naming_another_rooms_epoch_answers_resync(log: RoomLog, room: str) -> None:
    other = str(uuid.uuid4())
    log.append(room, entries(2))
    log.append(other, entries(2))
    _sent(log, room)
    resync = _resume(log, room, 1, log.epoch(other))
    assert (resync["type"], resync["reason"], resync["epoch"]) == ("resync", "room_restarted", log.epoch(room))


def test_the_right_epoch_with_a_seq_the_room_never_reached_is_still_unknown_seq(log: RoomLog, room: str) -> None:
    log.append(room, entries(2))
    _sent(log, room)
    resync = _resume(log, room, 9, log.epoch(room))
    assert (resync["type"], resync["reason"], resync["seq"]) == ("resync", "unknown_seq", 2)


def test_appending_in_turn_writes_nothing_once_someone_joined_or_left(stack: Any, room: str) -> None:
    """DynamoDB's state item counts joins and leaves (the twin has no members): a publisher must read
    a changed room's members again, so its remembered state no longer holds."""
    from chalicelib.store import connections

    log = DynamoRoomLog()
    expected = _after_a_round(log, room)
    connections.leave_room(room, "gone-connection")  # counted even when nobody was there
    assert log.append_in_turn(room, entries(1), expected, "me", 60_000) is None
    assert log.append_in_turn(room, entries(1), log.state(room), "me", 60_000) is not None
