"""In-memory twins of the platform's stores, held to the same suites as the real ones."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from chalicelib.store.connections import LoggedMessage, RoomState, new_epoch
from chalicelib.store.room_log import Entry


class MemoryRoomLog:
    """The room log (chalicelib.store.room_log.RoomLog) in one process's memory; `ttl_s` as DynamoDB's."""

    def __init__(self, ttl_s: float = 15 * 60) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._messages: dict[str, dict[int, tuple[LoggedMessage, float]]] = {}
        self._claims: dict[str, dict[int, int]] = {}  # session -> event id -> seq
        self._states: dict[str, RoomState] = {}

    def append(self, session_id: str, entries: list[Entry], state: RoomState | None = None) -> list[LoggedMessage]:
        with self._lock:
            messages = self._messages.setdefault(session_id, {})
            claims = self._claims.setdefault(session_id, {})
            current = self._state(session_id)
            seq = max(current.seq, current.sent_seq)
            logged = []
            for event_id, render in entries:
                if event_id in claims:
                    continue
                seq += 1
                message = LoggedMessage(seq, render(seq))
                messages[seq] = (message, time.time() + self.ttl_s)
                claims[event_id] = seq
                logged.append(message)
            if logged:  # as DynamoDB: an append that logs nothing writes no state
                self._states[session_id] = RoomState(
                    seq, current.sent_seq, current.holder, current.lease_until_ms, current.epoch or new_epoch()
                )
            return logged

    def append_in_turn(
        self, session_id: str, entries: list[Entry], expected: RoomState, holder: str, lease_ms: int
    ) -> list[LoggedMessage] | None:
        now_ms = int(time.time() * 1000)
        with self._lock:
            current = self._state(session_id)
            claims = self._claims.setdefault(session_id, {})
            as_expected = (current.seq, current.sent_seq, current.epoch, current.roster) == (
                expected.seq,
                expected.sent_seq,
                expected.epoch,
                expected.roster,
            )
            lease_runs = current.holder is not None and current.lease_until_ms >= now_ms
            if (
                not entries
                or expected.epoch is None
                or expected.seq < 1
                or not as_expected
                or lease_runs
                or any(event_id in claims for event_id, _ in entries)
            ):
                return None
            messages = self._messages.setdefault(session_id, {})
            logged = []
            for seq, (event_id, render) in enumerate(entries, current.seq + 1):
                message = LoggedMessage(seq, render(seq))
                messages[seq] = (message, time.time() + self.ttl_s)
                claims[event_id] = seq
                logged.append(message)
            self._states[session_id] = replace(
                current, seq=logged[-1].seq, holder=holder, lease_until_ms=now_ms + lease_ms
            )
            return logged

    def read(self, session_id: str, first_seq: int, last_seq: int, limit: int) -> list[LoggedMessage]:
        now = time.time()
        with self._lock:
            found = sorted(
                (message for message, expires_at in self._messages.get(session_id, {}).values() if expires_at > now),
                key=lambda m: m.seq,
            )
        return [m for m in found if first_seq <= m.seq <= last_seq][: max(limit, 0)]

    def state(self, session_id: str) -> RoomState:
        with self._lock:
            return self._state(session_id)

    def epoch(self, session_id: str) -> str:
        with self._lock:
            state = self._state(session_id)
            if state.epoch is None:
                state = self._states[session_id] = RoomState(
                    state.seq, state.sent_seq, state.holder, state.lease_until_ms, new_epoch()
                )
            return state.epoch

    def lose_room(self, session_id: str) -> None:
        """Forget everything of the room (state, log, claims), as a table recreated by a redeploy would."""
        with self._lock:
            for kept in (self._states, self._messages, self._claims):
                kept.pop(session_id, None)

    def try_turn(self, session_id: str, holder: str, lease_ms: int) -> tuple[bool, RoomState | None]:
        now_ms = int(time.time() * 1000)
        with self._lock:
            state = self._state(session_id)
            if state.holder is not None and state.lease_until_ms >= now_ms:
                return False, state
            epoch = state.epoch or new_epoch()
            self._states[session_id] = RoomState(state.seq, state.sent_seq, holder, now_ms + lease_ms, epoch)
            return True, self._states[session_id]

    def advance_turn(self, session_id: str, holder: str, sent_seq: int, lease_ms: int) -> bool:
        with self._lock:
            state = self._state(session_id)
            if state.holder != holder:
                return False
            until_ms = int(time.time() * 1000) + lease_ms
            self._states[session_id] = RoomState(state.seq, sent_seq, holder, until_ms, state.epoch)
            return True

    def end_turn(self, session_id: str, holder: str, sent_seq: int | None = None) -> RoomState | None:
        with self._lock:
            state = self._state(session_id)
            if state.holder != holder:
                return None
            sent = state.sent_seq if sent_seq is None else sent_seq
            self._states[session_id] = RoomState(state.seq, sent, None, 0, state.epoch)
            return self._states[session_id]

    def _state(self, session_id: str) -> RoomState:
        return self._states.get(session_id, RoomState(0, 0, None, 0))
