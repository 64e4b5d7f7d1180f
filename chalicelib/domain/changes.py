"""The write path: a transaction that records a domain event per change, then publishes after commit.

    with changes.write(caller) as (conn, recorder):
        row = ...insert...
        recorder.record("lap", "create", LAPS.to_wire(row), session_id=row["session_id"])

Each event is inserted into `domain_events` in the same transaction as the write (the outbox) and
handed to every registered sink (domain/sinks.py: the webhook outbox inserts its deliveries there);
once the transaction commits, each sink's after-commit part runs (the room push, the webhook queue
messages). Those never undo a committed write: whatever fails, the consumers' sweeps do later.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chalicelib.domain.caller import Caller
from chalicelib.domain.sinks import SinkTransaction, open_all
from chalicelib.store.postgres import fetch_one, transaction

if TYPE_CHECKING:
    import psycopg

OPS = ("create", "update", "delete")
INSERT_MAX_EVENTS = 10  # a write's first few events go in as pipelined INSERTs (one round trip), more as a COPY
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


@dataclass(frozen=True)
class DomainEvent:
    id: int
    account_id: str
    type: str  # "<entity>.<op>", e.g. "lap.create"
    entity: str
    op: str
    entity_id: str | None
    session_id: str | None
    data: dict[str, Any]
    actor: dict[str, Any]
    created_at: dt.datetime


@dataclass
class Recorder:
    conn: psycopg.Connection[dict[str, Any]]
    caller: Caller
    events: list[DomainEvent] = field(default_factory=list)  # the live ones: published after commit
    sinks: dict[str, SinkTransaction] = field(default_factory=dict)  # each consumer's part, by name

    def __post_init__(self) -> None:
        if not self.sinks:
            self.sinks = open_all(self.conn)

    def record(self, entity: str, op: str, data: dict[str, Any], *, session_id: str | None = None) -> DomainEvent:
        if op not in OPS:
            raise ValueError(f"op must be one of {OPS}")
        actor = {"userId": self.caller.user_id} if self.caller.user_id else {"apiKeyId": self.caller.api_key_id}
        entity_id = data.get("id") if isinstance(data.get("id"), str) else None
        row = fetch_one(self.conn, "insert_domain_event", self._row(entity, op, data, session_id, actor))
        assert row is not None
        event = DomainEvent(
            row["id"],
            self.caller.account_id,
            f"{entity}.{op}",
            entity,
            op,
            entity_id,
            session_id,
            data,
            actor,
            row["created_at"],
        )
        self.events.append(event)
        self._tell([event], live=True)
        return event

    def record_many(
        self,
        entity: str,
        op: str,
        changes: list[tuple[dict[str, Any], str | None]],
        *,
        push: bool = True,
        along: Callable[[], None] | None = None,
    ) -> list[DomainEvent]:
        """`record` for many (data, session id) changes: the events in one COPY (a few: pipelined
        INSERTs, one round trip), then to the sinks as one batch. push=False stores them as
        published: webhooks get each, session rooms do not.

        `along` writes the changed rows themselves (statements whose results nobody reads, e.g. the
        laps' INSERT): with a few events it is sent in the same round trip as theirs, so a single lap
        and its event cost one wait; its errors then surface here. Otherwise it runs first, alone."""
        if op not in OPS:
            raise ValueError(f"op must be one of {OPS}")
        if not changes:
            if along:
                along()
            return []
        actor = {"userId": self.caller.user_id} if self.caller.user_id else {"apiKeyId": self.caller.api_key_id}
        inserted = push and len(changes) <= INSERT_MAX_EVENTS  # else reserved ids, then one COPY
        if along and not inserted:
            along()  # e.g. a COPY, which a pipeline cannot carry
        if inserted:
            ids, now = self._insert(entity, op, changes, actor, along)
        else:
            ids, now = self._reserve_ids(len(changes))
        events = [
            DomainEvent(
                event_id,
                self.caller.account_id,
                f"{entity}.{op}",
                entity,
                op,
                data.get("id") if isinstance(data.get("id"), str) else None,
                session,
                data,
                actor,
                now,
            )
            for event_id, (data, session) in zip(ids, changes, strict=True)
        ]
        if not inserted:
            self._copy(events, published_at=None if push else now)
        if push:
            self.events.extend(events)
        self._tell(events, live=push)
        return events

    def _tell(self, events: list[DomainEvent], *, live: bool) -> None:
        for sink in self.sinks.values():
            sink.recorded(events, live=live)  # same transaction: a failure here rolls the write back

    def _insert(
        self,
        entity: str,
        op: str,
        changes: list[tuple[dict[str, Any], str | None]],
        actor: dict[str, Any],
        along: Callable[[], None] | None = None,
    ) -> tuple[list[int], dt.datetime]:
        """Insert a few events (pipelined: one round trip) and return their ids, in input order, and
        the transaction's now() (every row's created_at)."""
        from chalicelib.store.sql import query

        params = [self._row(entity, op, data, session, actor) for data, session in changes]
        if along:
            # The rows' statements and the events' in one pipeline: one Sync, read when it ends.
            with one_round_trip(self.conn):
                along()
                cursors = [self.conn.execute(query("insert_domain_event"), row) for row in params]
            inserted = [cursor.fetchone() for cursor in cursors]
            rows = [row for row in inserted if row is not None]
            assert len(rows) == len(params)
            return [row["id"] for row in rows], rows[0]["created_at"]
        if len(params) == 1:  # one event (a single lap): a plain INSERT, one wait; executemany pipelines (three)
            row = self.conn.execute(query("insert_domain_event"), params[0]).fetchone()
            assert row is not None
            return [row["id"]], row["created_at"]
        ids: list[int] = []
        now: dt.datetime | None = None
        with self.conn.cursor() as cursor:
            cursor.executemany(query("insert_domain_event"), params, returning=True)
            while True:
                row = cursor.fetchone()
                assert row is not None
                ids.append(row["id"])
                now = row["created_at"]
                if not cursor.nextset():
                    break
        assert now is not None
        return ids, now

    def _row(
        self, entity: str, op: str, data: dict[str, Any], session_id: str | None, actor: dict[str, Any]
    ) -> dict[str, Any]:
        """The parameters of `insert_domain_event` for one change."""
        from psycopg.types.json import Jsonb

        return {
            "account_id": self.caller.account_id,
            "type": f"{entity}.{op}",
            "entity": entity,
            "op": op,
            "entity_id": data.get("id") if isinstance(data.get("id"), str) else None,
            "session_id": session_id,
            "actor": Jsonb(actor),
            "data": Jsonb(data),
        }

    def _reserve_ids(self, count: int) -> tuple[list[int], dt.datetime]:
        """`count` new event ids, ascending (so in input order, as one INSERT would draw them), and the
        transaction's now()."""
        row = fetch_one(self.conn, "reserve_domain_event_ids", {"count": count})
        assert row is not None
        return sorted(row["ids"]), row["now"]

    def _copy(self, events: list[DomainEvent], *, published_at: dt.datetime | None) -> None:
        from chalicelib.store.sql import query

        to_json = _COMPACT_JSON.encode  # one encoder for the batch: json.dumps(separators=...) builds one per call
        actor_json = to_json(events[0].actor)
        with self.conn.cursor().copy(query("copy_domain_events")) as copy:
            for event in events:
                copy.write_row(
                    (
                        event.id,
                        event.account_id,
                        event.type,
                        event.entity,
                        event.op,
                        event.entity_id,
                        event.session_id,
                        actor_json,
                        to_json(event.data),
                        event.created_at,
                        published_at,
                    )
                )


@contextmanager
def one_round_trip(conn: psycopg.Connection[dict[str, Any]]) -> Iterator[None]:
    """The block's statements in one pipeline, and its first refusal raised once the pipeline has ended.

    psycopg raises a refusal inside the block when its answer is already in (a later statement sends
    and reads what came back), and then, ending the pipeline, logs a warning that it was aborted: a
    plain 409 (a lap number taken) would log as a fault. The refusal is kept and raised after."""
    import psycopg

    refused: psycopg.Error | None = None
    try:
        with conn.pipeline():
            try:
                yield
            except psycopg.Error as exc:
                refused = exc
    except psycopg.Error:
        if refused is None:
            raise
    if refused is not None:
        raise refused


@contextmanager
def write(caller: Caller) -> Iterator[tuple[psycopg.Connection[dict[str, Any]], Recorder]]:
    """A transaction whose recorded events are published once it has committed."""
    from chalicelib.domain import idempotency

    with transaction() as conn:
        idempotency.claim_in(conn)  # a keyed request's write records its key: a retry never applies it twice
        recorder = Recorder(conn, caller)
        yield conn, recorder
    after_commit(recorder)


def after_commit(recorder: Recorder) -> None:
    """Once the recorder's transaction has committed: every sink's after-commit part, in the writer's
    thread; the write answers when the slowest is done (whatever fails here, the consumers' sweeps do
    later).

    The parts are independent network calls (the room message and the webhook messages are sends to
    two queues; closing sockets is the management API). Each part starts (writes its request) before
    any finishes (reads its answer), so a lap write's two SQS sends are in flight together: one
    after the other it waited for their sum (~17 + 16 ms p50 under bench_load). They were on two
    threads before: under load each handoff between them waited for the interpreter lock (see
    docs/decisions.md). No order between the parts is promised to anyone: each consumer is downstream
    of its own queue, and the room publisher re-checks access before every push whatever the access
    sink has closed yet. Registration order starts the latency-sensitive parts first.
    """
    finishing: list[tuple[str, Callable[[], None]]] = []
    for name, sink in recorder.sinks.items():
        if not sink.pending():
            continue
        try:
            finish = sink.committed()
        except Exception:
            _failed(name)
            continue
        if finish is not None:
            finishing.append((name, finish))
    for name, finish in finishing:
        try:
            finish()
        except Exception:
            _failed(name)


def _failed(name: str) -> None:
    from chalicelib.observability import logger

    logger().exception("an after-commit sink failed; its sweep catches up", extra={"sink": name})
