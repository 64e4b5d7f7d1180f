"""The room log's interface: numbered messages per session room and the one sender's turn.

`RoomLog` is what the room broadcast needs of a store; `DynamoRoomLog` keeps it in the DynamoDB
connections table (store/connections.py has the item layout); `tests/twins.py` has an in-memory
twin, and `tests/integration/test_room_log.py` runs one suite of ordering rules against both.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Protocol

from chalicelib.store import connections
from chalicelib.store.connections import LoggedMessage, RoomState

# (domain event id, render(seq) -> the JSON frame members receive as message seq)
Entry = tuple[int, Callable[[int], str]]


class RoomLog(Protocol):
    def append(self, session_id: str, entries: list[Entry], state: RoomState | None = None) -> list[LoggedMessage]:
        """Number and log the entries after the room's head, in order: a number is never given twice
        nor skipped, however many append at once; an event logged before is not logged again.
        Returns what was logged now, in seq order. `state`: the room's state if just read."""
        ...

    def append_in_turn(
        self, session_id: str, entries: list[Entry], expected: RoomState, holder: str, lease_ms: int
    ) -> list[LoggedMessage] | None:
        """Log the entries after `expected.seq` and make `holder` the sender, all at once, only if the
        room's state is still `expected` (head, sent, epoch, roster) with no lease running and no entry
        logged before; else None, and nothing was written."""
        ...

    def read(self, session_id: str, first_seq: int, last_seq: int, limit: int) -> list[LoggedMessage]:
        """Up to `limit` unexpired messages with first_seq <= seq <= last_seq, in seq order."""
        ...

    def state(self, session_id: str) -> RoomState:
        """The room's head, how far it has been sent, and who holds the turn (read consistently)."""
        ...

    def epoch(self, session_id: str) -> str:
        """The room's epoch: the id of its numbering, given once by whatever first writes the room's
        state (an append, a turn, or this); concurrent first writers all end up with one epoch."""
        ...

    def try_turn(self, session_id: str, holder: str, lease_ms: int) -> tuple[bool, RoomState | None]:
        """Become the room's only sender for `lease_ms` unless another's lease runs: (ours?, state)."""
        ...

    def advance_turn(self, session_id: str, holder: str, sent_seq: int, lease_ms: int) -> bool:
        """Record messages up to `sent_seq` as sent and extend the lease; False if the turn was lost."""
        ...

    def end_turn(self, session_id: str, holder: str, sent_seq: int | None = None) -> RoomState | None:
        """Give the turn up (recording `sent_seq`); the state after, or None if it was not ours."""
        ...


def take_turn(log: RoomLog, session_id: str, holder: str, lease_ms: int) -> RoomState | None:
    """The room's state if the turn is now `holder`'s, else None."""
    taken, state = log.try_turn(session_id, holder, lease_ms)
    return state if taken else None


class DynamoRoomLog:
    """The room log in the DynamoDB connections table."""

    def append(self, session_id: str, entries: list[Entry], state: RoomState | None = None) -> list[LoggedMessage]:
        return connections.append_messages(session_id, entries, state)

    def append_in_turn(
        self, session_id: str, entries: list[Entry], expected: RoomState, holder: str, lease_ms: int
    ) -> list[LoggedMessage] | None:
        return connections.append_in_turn(session_id, entries, expected, holder, lease_ms)

    def read(self, session_id: str, first_seq: int, last_seq: int, limit: int) -> list[LoggedMessage]:
        return connections.logged_messages(session_id, first_seq, last_seq, limit)

    def state(self, session_id: str) -> RoomState:
        return connections.room_state(session_id)

    def epoch(self, session_id: str) -> str:
        return connections.room_epoch(session_id)

    def try_turn(self, session_id: str, holder: str, lease_ms: int) -> tuple[bool, RoomState | None]:
        return connections.try_turn(session_id, holder, lease_ms)

    def advance_turn(self, session_id: str, holder: str, sent_seq: int, lease_ms: int) -> bool:
        return connections.advance_turn(session_id, holder, sent_seq, lease_ms)

    def end_turn(self, session_id: str, holder: str, sent_seq: int | None = None) -> RoomState | None:
        return connections.end_turn(session_id, holder, sent_seq)


@functools.cache
def dynamo() -> RoomLog:
    return DynamoRoomLog()
