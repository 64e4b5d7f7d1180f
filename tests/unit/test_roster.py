"""The publisher's remembered room members: reused only under the same epoch and roster number."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.realtime import roster
from chalicelib.store.connections import RoomState


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[dict[str, Any]]]]:
    """The member lists the room's Query returns, one per read; what was read is popped."""
    answers: list[list[dict[str, Any]]] = []

    def member_principals(session_id: str) -> list[dict[str, Any]]:
        return answers.pop(0)

    monkeypatch.setattr(roster.connections, "member_principals", member_principals)
    roster.forget()
    yield answers
    roster.forget()


def _state(epoch: str | None = "e1", number: int | None = 1) -> RoomState:
    return RoomState(seq=5, sent_seq=4, holder="me", lease_until_ms=0, epoch=epoch, roster=number)


def _member(cid: str, expires_in_s: float = 3600) -> dict[str, Any]:
    return {"connectionId": cid, "accountId": "a", "expiresAt": int(time.time() + expires_in_s)}


def test_the_same_roster_number_reuses_the_list_and_another_reads_it_again(reads: list[Any]) -> None:
    reads += [[_member("A")], [_member("A"), _member("B")]]
    assert [m["connectionId"] for m in roster.principals("s", _state(number=1))] == ["A"]
    assert [m["connectionId"] for m in roster.principals("s", _state(number=1))] == ["A"]
    assert len(reads) == 1  # the second round read nothing
    assert [m["connectionId"] for m in roster.principals("s", _state(number=2))] == ["A", "B"]
    assert reads == []


def test_a_room_that_restarted_reads_its_members_again_even_under_the_same_number(reads: list[Any]) -> None:
    reads += [[_member("A")], [_member("B")]]
    roster.principals("s", _state(epoch="e1", number=1))
    assert [m["connectionId"] for m in roster.principals("s", _state(epoch="e2", number=1))] == ["B"]


@pytest.mark.parametrize("state", [_state(number=None), _state(epoch=None)])
def test_without_a_roster_number_or_an_epoch_every_round_reads(reads: list[Any], state: RoomState) -> None:
    reads += [[_member("A")], [_member("A")]]
    roster.principals("s", state)
    roster.principals("s", state)
    assert reads == []


def test_a_membership_that_expired_since_it_was_read_is_dropped(reads: list[Any]) -> None:
    reads += [[_member("A"), _member("B", expires_in_s=0.2)]]
    roster.principals("s", _state())
    time.sleep(0.3)
    assert [m["connectionId"] for m in roster.principals("s", _state())] == ["A"]


def test_rooms_are_remembered_apart_and_the_least_recent_falls_out(
    reads: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(roster, "MAX_ROOMS", 2)
    reads += [[_member("A")], [_member("B")], [_member("C")], [_member("A2")]]
    roster.principals("r1", _state())
    roster.principals("r2", _state())
    roster.principals("r3", _state())  # r1 falls out
    assert [m["connectionId"] for m in roster.principals("r2", _state())] == ["B"]
    assert [m["connectionId"] for m in roster.principals("r1", _state())] == ["A2"]
    assert reads == []
