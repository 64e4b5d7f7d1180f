"""A join waits for the room's turn while it passes from holder to holder (a reconnect storm), and
answers outside it only when one holder keeps it (a stuck sender)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from chalicelib.realtime import broadcast
from tests.twins import MemoryRoomLog

pytestmark = pytest.mark.unit

ROOM = str(uuid.uuid4())


@pytest.fixture()
def log(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryRoomLog]:
    twin = MemoryRoomLog()
    monkeypatch.setattr(broadcast, "_log", lambda: twin)
    monkeypatch.setattr(broadcast, "TURN_WAIT_S", 0.2)
    monkeypatch.setattr(broadcast, "TURN_WAIT_MAX_S", 5.0)
    monkeypatch.setattr(broadcast, "JOIN_POLL_MAX_S", 0.02)
    yield twin


def _holders_in_turn(log: MemoryRoomLog, for_s: float, hold_s: float, holders: list[str]) -> None:
    """Other joins taking the turn one after another, each for `hold_s`, for `for_s` in all."""
    until = time.monotonic() + for_s
    while time.monotonic() < until:
        holder = uuid.uuid4().hex
        if log.try_turn(ROOM, holder, 15_000)[0]:
            holders.append(holder)
            time.sleep(hold_s)
            log.end_turn(ROOM, holder)


def test_a_join_waits_through_a_storm_of_others_and_answers_inside_the_turn(
    log: MemoryRoomLog, caplog: pytest.LogCaptureFixture
) -> None:
    others: list[str] = []
    # Busy for 3x TURN_WAIT_S, the turn passing from one holder to the next every 0.04 s.
    storm = threading.Thread(target=_holders_in_turn, args=(log, 0.6, 0.04, others), daemon=True)
    storm.start()
    time.sleep(0.02)
    with broadcast.turn(ROOM):
        holder = log.state(ROOM).holder
    storm.join(5)
    assert holder is not None and holder not in others  # the block ran in a turn of its own
    assert "answering outside it" not in caplog.text
    assert log.state(ROOM).holder is None  # given back after the block


def test_a_turn_one_holder_keeps_is_answered_outside_after_the_wait(
    log: MemoryRoomLog, caplog: pytest.LogCaptureFixture
) -> None:
    stuck = uuid.uuid4().hex
    assert log.try_turn(ROOM, stuck, 15_000)[0]  # a sender that died holding it
    started = time.monotonic()
    with broadcast.turn(ROOM) as at:
        assert log.state(ROOM).holder == stuck
        assert at.seq == 0
    assert time.monotonic() - started < broadcast.TURN_WAIT_MAX_S  # after TURN_WAIT_S, not the cap
    assert "answering outside it" in caplog.text


def test_a_storm_longer_than_the_cap_is_answered_outside_at_the_cap(
    log: MemoryRoomLog, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broadcast, "TURN_WAIT_MAX_S", 0.4)
    others: list[str] = []
    storm = threading.Thread(target=_holders_in_turn, args=(log, 1.5, 0.04, others), daemon=True)
    storm.start()
    time.sleep(0.02)
    started = time.monotonic()
    with broadcast.turn(ROOM):
        waited = time.monotonic() - started
    storm.join(5)
    assert "answering outside it" in caplog.text
    assert waited < 1.4  # gave up at the cap, not when the storm ended
