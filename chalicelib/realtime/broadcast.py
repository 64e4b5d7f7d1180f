"""Publishing committed domain events to session rooms: numbered, logged, fanned out in seq order.

What a member of a room is promised:
- Every committed write that belongs to the session becomes one message
  `{"type":"<entity>.<op>","sessionId","seq","data"}`; `seq` counts 1, 2, 3... per room, never
  repeating and never skipping, however many processes publish at once: a number is taken by
  conditionally writing its log entry (connections.append_messages), and each domain event is
  logged once, however often it is published (a retry, the sweep).
- The server sends a room's messages in seq order: only the holder of the room's turn (a lease in
  DynamoDB) fans out, it sends messages strictly one after another per connection, and a publisher
  that finds the turn taken leaves its (already logged) message to the holder, who looks again
  after giving the turn up. `joined`/`resumed` replies are sent inside a turn too, so a member
  never receives a push older than its `joined.seq`, nor one that skips ahead of a replay.
- Seqs are of one numbering, named by the room's `epoch` (in `joined`, `resumed` and `resync`): if the
  room's state is lost (a recreated table) numbering starts over under a new epoch, and a `resume`
  that names the old one is answered `resync` (reason `room_restarted`), never with the new messages.
- Published means logged: a sender that dies mid fan-out leaves `sentSeq` behind; the next
  publish, join or resume in the room (or the minute sweep) takes over once its lease ends and
  sends the rest, so a connection may get a message twice in that case (clients drop seq <= last).
- A message over 32 KB goes out as a pointer: `data = {"id", "truncated": true, "href"}`.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

from chalicelib.realtime import push, room_keys, roster
from chalicelib.realtime.access import reachable
from chalicelib.store import connections
from chalicelib.store.connections import LoggedMessage
from chalicelib.store.room_log import RoomLog, dynamo, take_turn

if TYPE_CHECKING:
    from chalicelib.domain.changes import DomainEvent

# A sender's turn; renewed after each page, taken over by others once it runs out (sender died).
LEASE_MS = 15_000
# How long a join/resume waits for the turn while one holder keeps it before answering outside it
# (a stuck sender); while the turn passes from holder to holder (a busy room: a reconnect storm's
# joins, rounds) it waits on, up to TURN_WAIT_MAX_S in all.
TURN_WAIT_S = 3.0
TURN_WAIT_MAX_S = 10.0
TURN_POLL_S = 0.01
TURN_POLL_MAX_S = 0.1  # a publisher waiting for the turn: every member's push waits with it
# A join or resume waiting for the turn answers one person, and in a reconnect storm dozens wait at
# once: polling every 0.1 s, 50 waiters' attempts crowded out the holders' own calls (50 joins took
# 4.5-5.6 s, 37 of 100 answered outside the turn); every 0.3 s at most, 3.5-3.6 s and none.
JOIN_POLL_MAX_S = 0.3
PAGE_MESSAGES = 100
# How long one call of `deliver` may keep sending or waiting for the turn.
DELIVER_BUDGET_S = 10.0
# How long a publisher whose messages are out goes on sending others' (they wait for the turn).
CARRY_ON_S = 1.0
PUBLISHER_POLL_S = 0.01
# Resume replays at most this many messages, and only while they are logged (MESSAGE_TTL_S).
WINDOW_MESSAGES = 500
WINDOW_S = connections.MESSAGE_TTL_S

# Where a client fetches an entity whose message was too large to push.
ENTITY_PATHS = {
    "event": "/events/{id}",
    "session": "/sessions/{id}",
    "car": "/cars/{id}",
    "driver": "/drivers/{id}",
    "run_sheet": "/run-sheets/{id}",
    "lap": "/laps/{id}",
    "setup": "/setups/{id}",
    "issue": "/issues/{id}",
    "board_card": "/board-cards/{id}",
    "attachment": "/attachments/{id}",
    "timing_import": "/sessions/{sessionId}/timing-imports/{id}",
    "strategy": "/events/{eventId}/strategy",
}


def _log() -> RoomLog:
    return dynamo()


class Position(NamedTuple):
    """Where a join/resume enters the room: pushes continue after `seq`, of the numbering `epoch`."""

    seq: int
    epoch: str


def href(event: DomainEvent) -> str:
    template = ENTITY_PATHS.get(event.entity, "/" + event.entity.replace("_", "-") + "s/{id}")
    data = event.data if isinstance(event.data, dict) else {}
    return template.format(
        id=event.entity_id or data.get("id") or "",
        sessionId=event.session_id or "",
        eventId=data.get("eventId") or event.entity_id or "",
    )


def render(event: DomainEvent, seq: int) -> str:
    """The frame members receive for `event` as message `seq`, or its pointer when over 32 KB."""
    room = room_keys.fields(room_keys.room_of(event) or "")
    body = _json({"type": event.type, **room, "seq": seq, "data": event.data})
    if len(body.encode()) <= push.MAX_FRAME_BYTES:
        return body
    pointer = {"id": event.entity_id or event.data.get("id"), "truncated": True, "href": href(event)}
    return _json({"type": event.type, **room, "seq": seq, "data": pointer})


def _json(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False, default=str)


def publish(events: list[DomainEvent]) -> None:
    """Log each event that belongs to a room (a session's or an event's) in it (numbered), then fan the room out.

    Raises if an event could not be logged (it stays unpublished; the sweep retries; an event
    already logged is never logged twice).
    """
    rooms: dict[str, list[DomainEvent]] = {}
    for event in events:
        room = room_keys.room_of(event)
        if room:
            rooms.setdefault(room, []).append(event)
    for session_id, room_events in rooms.items():
        # A page at a time, so members of a busy room hear the first changes while the rest are logged.
        for start in range(0, len(room_events), PAGE_MESSAGES):
            page = room_events[start : start + PAGE_MESSAGES]
            _publish_page(session_id, [(event.id, partial(render, event)) for event in page])


def _publish_page(session_id: str, entries: list[tuple[int, Callable[[int], str]]]) -> None:
    """Log the entries, then send them (or wait for the turn's holder to). When the room is as this
    process's last round left it (nobody logged, sent, joined or left since, no lease runs), logging
    and taking the turn are one transaction: the page costs two DynamoDB calls (log with turn, end
    of turn). Otherwise the turn is tried first: its answer says where the log ends, so when it is
    free the page costs three (turn, log, end of turn; plus the members when someone joined or left
    since the last round, realtime/roster.py), and the page is sent as logged, not read back; when
    it is taken, the same answer serves the logging and the publisher waits for the holder as before."""
    holder = uuid.uuid4().hex
    last_round = _last_rounds.get(session_id)
    if last_round is not None:
        logged = _log().append_in_turn(session_id, entries, last_round, holder, LEASE_MS)
        if logged:
            now_ms = int(time.time() * 1000)
            in_turn = replace(last_round, seq=logged[-1].seq, holder=holder, lease_until_ms=now_ms + LEASE_MS)
            deliver(session_id, until_seq=in_turn.seq, held=(holder, in_turn), written=logged)
            return
    ours, state = _log().try_turn(session_id, holder, LEASE_MS)
    if not ours:
        logged = _log().append(session_id, entries, state)
        deliver(session_id, until_seq=_last_seq(logged))
        return
    assert state is not None
    try:
        logged = _log().append(session_id, entries, state)
    except BaseException:
        _log().end_turn(session_id, holder)
        raise
    until_seq = _last_seq(logged)
    # Every number up to our last message is written (numbers are taken by writing them), so the
    # holder may send up to it; what others logged after it, end_turn's answer shows.
    head = max(state.seq, until_seq or 0)
    deliver(session_id, until_seq=until_seq, held=(holder, replace(state, seq=head)), written=logged)


class _LastRounds:
    """How each room was left by this process's last turn that sent everything (bounded, per container)."""

    MAX_ROOMS = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rooms: OrderedDict[str, connections.RoomState] = OrderedDict()

    def get(self, session_id: str) -> connections.RoomState | None:
        with self._lock:
            return self._rooms.get(session_id)

    def remember(self, session_id: str, after: connections.RoomState | None) -> None:
        with self._lock:
            if after is None or _unsent(after) or after.holder is not None or after.epoch is None:
                self._rooms.pop(session_id, None)
                return
            self._rooms[session_id] = after
            self._rooms.move_to_end(session_id)
            while len(self._rooms) > self.MAX_ROOMS:
                self._rooms.popitem(last=False)

    def forget(self) -> None:
        with self._lock:
            self._rooms.clear()


_last_rounds = _LastRounds()


def forget_last_rounds() -> None:
    """Every remembered room state (another emulator, a restored table: chalicelib/caches.py)."""
    _last_rounds.forget()


def _last_seq(logged: list[LoggedMessage]) -> int | None:
    return max((m.seq for m in logged), default=None)


def deliver(
    session_id: str,
    endpoint_url: str | None = None,
    until_seq: int | None = None,
    held: tuple[str, connections.RoomState] | None = None,
    written: list[LoggedMessage] | None = None,
) -> None:
    """Send what the room has logged but not sent yet.

    A publisher passes `until_seq`, the last message it logged: it sends (or, while another sender
    holds the turn, waits for) the messages up to that one. Having the turn, it also sends what
    others logged meanwhile (one fan-out serves several writes) for up to CARRY_ON_S after its own,
    then leaves the rest to their publishers, who are waiting for the turn: no request ends up
    sending a busy room's traffic for everyone else. Without `until_seq` (the sweep), it sends
    until nothing is left or DELIVER_BUDGET_S runs out, and returns at once when the turn is taken
    (the holder looks again after its turn). `held` is (holder, room state) when the caller already
    holds the turn: the first round sends from there, and `written` (what the caller has just logged)
    spares it reading those messages back.
    """
    deadline = time.monotonic() + DELIVER_BUDGET_S
    pause_s = PUBLISHER_POLL_S
    own_sent_at: float | None = None
    while True:
        known: dict[int, str] = {}
        if held is not None:
            (holder, state), held = held, None
            known = {m.seq: m.body for m in written or ()}
        else:
            if until_seq is not None and own_sent_at is None:
                seen = _log().state(session_id)
                if seen.sent_seq >= until_seq:
                    return  # the holder sent ours
                if seen.holder is not None and seen.lease_until_ms >= time.time() * 1000:
                    if time.monotonic() > deadline:
                        return  # left to the holder, the next publisher or the minute sweep
                    time.sleep(random.uniform(pause_s / 2, pause_s))
                    pause_s = min(pause_s * 2, TURN_POLL_MAX_S)
                    continue
            holder = uuid.uuid4().hex
            taken = take_turn(_log(), session_id, holder, LEASE_MS)
            if taken is None:
                if until_seq is None or own_sent_at is not None:
                    return  # the holder looks again after its turn
                continue
            state = taken
        after = _drain_and_end(session_id, holder, state, endpoint_url, known)
        if after is None or not _unsent(after):
            return
        now = time.monotonic()
        if until_seq is not None and own_sent_at is None and after.sent_seq >= until_seq:
            own_sent_at = now
        if now > deadline or (own_sent_at is not None and now - own_sent_at > CARRY_ON_S):
            return  # later messages: their publishers are waiting for the turn (or the sweep finds them)


def pending(session_id: str) -> bool:
    """Whether the room has logged messages that no sender has sent (and nobody is sending)."""
    state = _log().state(session_id)
    return _unsent(state) and (state.holder is None or state.lease_until_ms < time.time() * 1000)


def _unsent(state: connections.RoomState) -> bool:
    return state.seq > state.sent_seq


@contextmanager
def turn(session_id: str, endpoint_url: str | None = None) -> Iterator[Position]:
    """Hold the room's turn while answering a join/resume: what the block sends reaches its
    connection before any later push of the room. Yields the room's `sentSeq` and epoch; on exit,
    sends what was logged meanwhile. If one holder keeps the turn for TURN_WAIT_S the block runs
    anyway; a turn that moves on between attempts is waited for, up to TURN_WAIT_MAX_S.

    50 members joining at once (a team's screens after the circuit's network dropped) take ~70 ms of
    turn each locally: the last ones waited ~3.5 s, and a fixed 3 s answered a few of them outside
    the turn although nothing was stuck."""
    holder = uuid.uuid4().hex
    started = time.monotonic()
    deadline = started + TURN_WAIT_S
    taken, state = _log().try_turn(session_id, holder, LEASE_MS)
    seen = state.holder if state is not None and not taken else None
    pause_s = TURN_POLL_S
    while not taken and time.monotonic() < deadline:
        time.sleep(random.uniform(pause_s / 2, pause_s))
        pause_s = min(pause_s * 2, JOIN_POLL_MAX_S)
        taken, state = _log().try_turn(session_id, holder, LEASE_MS)
        if not taken and state is not None and state.holder != seen:
            seen = state.holder  # the turn moved on: a busy room, not a stuck sender
            deadline = min(time.monotonic() + TURN_WAIT_S, started + TURN_WAIT_MAX_S)
    if not taken or state is None:
        from chalicelib.observability import logger

        logger().warning("room turn not free; answering outside it", extra={"session_id": session_id})
        found = _log().state(session_id)
        yield Position(found.sent_seq, found.epoch or _log().epoch(session_id))
        deliver(session_id, endpoint_url)
        return
    try:
        # Taking the turn gave the room an epoch if it had none (only a room older than epochs lacks one).
        yield Position(state.sent_seq, state.epoch or _log().epoch(session_id))
    except BaseException:
        _log().end_turn(session_id, holder)
        raise
    # What was logged while the block ran is sent by the holder's next round (the head is re-read).
    after = _drain_and_end(session_id, holder, _log().state(session_id), endpoint_url)
    if after is not None and _unsent(after):
        deliver(session_id, endpoint_url)


def _drain_and_end(
    session_id: str,
    holder: str,
    state: connections.RoomState,
    endpoint_url: str | None,
    known: dict[int, str] | None = None,
) -> connections.RoomState | None:
    """While holding the turn: send the logged messages after `state.sentSeq` up to `state.seq`, a
    page at a time, then give the turn up recording how far it got. Returns the room's state after
    (None when the turn was lost). `known` maps seqs to the frames just logged under them: a page
    made only of those is not read back from the log."""
    sent_seq = state.sent_seq
    try:
        while state.seq > sent_seq:
            # Access is re-checked before every page: a connection whose principal lost it gets nothing more.
            members = reachable(roster.principals(session_id, state), endpoint_url)
            # An empty room has nobody to send to: its log is kept for resumes, the turn moves on.
            page = _page(session_id, sent_seq, state.seq, known or {}) if members else []
            # Absent entries (expired: the room was not sent to for WINDOW_S) are skipped.
            upto = page[-1].seq if len(page) == PAGE_MESSAGES else state.seq
            if page:
                outcome = push.fan_out(members, [m.body.encode() for m in page], endpoint_url)
                forget(outcome.gone, session_id)
            if upto < state.seq and not _log().advance_turn(session_id, holder, upto, LEASE_MS):
                from chalicelib.observability import logger

                logger().warning("room turn lost mid fan-out", extra={"session_id": session_id, "seq": upto})
                _last_rounds.remember(session_id, None)
                return None
            sent_seq = upto
    except BaseException:
        _last_rounds.remember(session_id, None)
        _log().end_turn(session_id, holder, sent_seq)
        raise
    after = _log().end_turn(session_id, holder, sent_seq)
    _last_rounds.remember(session_id, after)
    return after


def _page(session_id: str, sent_seq: int, head: int, known: dict[int, str]) -> list[LoggedMessage]:
    """The next page after `sent_seq`: from `known` when it holds every one of its seqs, else from the log."""
    wanted = range(sent_seq + 1, min(head, sent_seq + PAGE_MESSAGES) + 1)
    if known and all(seq in known for seq in wanted):
        return [LoggedMessage(seq, known[seq]) for seq in wanted]
    return _log().read(session_id, sent_seq + 1, head, PAGE_MESSAGES)


def forget(connection_ids: set[str], session_id: str) -> None:
    """Remove connections that API Gateway says are gone (410) from this room and every other."""
    for connection_id in connection_ids:
        connections.leave_room(session_id, connection_id)
        connections.forget_connection(connection_id)


def catch_up(
    session_id: str, since_seq: int, at: Position, since_epoch: str | None = None, log: RoomLog | None = None
) -> list[LoggedMessage] | str:
    """The messages after `since_seq` up to `at.seq`, or why they cannot be replayed: "room_restarted"
    (`since_epoch` is given and is not the room's: its seq is of another numbering), "unknown_seq"
    (the client is ahead of the room) or "beyond_window" (too many or too old)."""
    if since_epoch is not None and since_epoch != at.epoch:
        return "room_restarted"
    missed = at.seq - since_seq
    if missed < 0:
        return "unknown_seq"
    if missed > WINDOW_MESSAGES:
        return "beyond_window"
    messages = (log or _log()).read(session_id, since_seq + 1, at.seq, missed)
    if len(messages) != missed:
        return "beyond_window"
    return messages


def resume_frames(
    session_id: str,
    since_seq: int,
    at: Position,
    members: list[dict[str, Any]],
    since_epoch: str | None = None,
    log: RoomLog | None = None,
) -> list[bytes]:
    """The answer to a resume: `resumed` frames carrying the missed messages in order, each under
    32 KB of messages (`fromSeq`..`toSeq` of its own; the last has `final: true` and the members),
    or one `resync` frame (refetch; pushes continue after `seq`). Every frame carries the room's `epoch`."""
    missed = catch_up(session_id, since_seq, at, since_epoch, log)
    if isinstance(missed, str):
        return [
            push.encode(
                {
                    "type": "resync",
                    **room_keys.fields(session_id),
                    "seq": at.seq,
                    "epoch": at.epoch,
                    "reason": missed,
                    "members": members,
                }
            )
        ]
    pages: list[list[LoggedMessage]] = [[]]
    size = 0
    for message in missed:
        body_bytes = len(message.body.encode())
        if pages[-1] and size + body_bytes > push.MAX_FRAME_BYTES:
            pages.append([])
            size = 0
        pages[-1].append(message)
        size += body_bytes + 1
    frames = []
    first = since_seq + 1
    for number, page in enumerate(pages, 1):
        last = page[-1].seq if page else since_seq
        frame: dict[str, Any] = {
            "type": "resumed",
            **room_keys.fields(session_id),
            "fromSeq": first,
            "toSeq": last,
            "epoch": at.epoch,
            "final": number == len(pages),
            "messages": [json.loads(m.body) for m in page],
        }
        if frame["final"]:
            frame["members"] = members
        frames.append(push.encode(frame))
        first = last + 1
    return frames
