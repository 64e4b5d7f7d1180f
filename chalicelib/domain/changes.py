"""The write path: a transaction that records a domain event per change, then publishes after commit.

    with changes.write(caller) as (conn, recorder):
        row = ...insert...
        recorder.record("lap", "create", LAPS.to_wire(row), session_id=row["session_id"])

Each event is inserted into `domain_events` in the same transaction as the write (the outbox).
Once the transaction commits, the events are published (session-room broadcast; webhooks hang
off the same events). Publishing never undoes a committed write: if it fails, the scheduled
sweep publishes what is left.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chalicelib.domain.caller import Caller
from chalicelib.store.postgres import fetch_one, transaction

if TYPE_CHECKING:
    import psycopg

OPS = ("create", "update", "delete")
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
    events: list[DomainEvent] = field(default_factory=list)
    deliveries: list[Any] = field(default_factory=list)  # webhook queue messages to send after commit
    webhook_subscriptions: dict[str, Any] = field(default_factory=dict)  # read once per transaction

    def record(self, entity: str, op: str, data: dict[str, Any], *, session_id: str | None = None) -> DomainEvent:
        from psycopg.types.json import Jsonb

        if op not in OPS:
            raise ValueError(f"op must be one of {OPS}")
        actor = {"userId": self.caller.user_id} if self.caller.user_id else {"apiKeyId": self.caller.api_key_id}
        entity_id = data.get("id") if isinstance(data.get("id"), str) else None
        row = fetch_one(
            self.conn,
            "insert_domain_event",
            {
                "account_id": self.caller.account_id,
                "type": f"{entity}.{op}",
                "entity": entity,
                "op": op,
                "entity_id": entity_id,
                "session_id": session_id,
                "actor": Jsonb(actor),
                "data": Jsonb(data),
            },
        )
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
        from chalicelib.webhooks import outbox

        self.deliveries += outbox.enqueue_for(self.conn, event, self.webhook_subscriptions)  # same transaction
        return event

    def record_many(
        self, entity: str, op: str, changes: list[tuple[dict[str, Any], str | None]], *, push: bool = True
    ) -> list[DomainEvent]:
        """`record` for many (data, session id) changes: the events in one COPY, then their webhook
        deliveries in one statement. push=False stores them as published: webhooks get each, session
        rooms do not."""
        from chalicelib.webhooks import outbox

        if op not in OPS:
            raise ValueError(f"op must be one of {OPS}")
        if not changes:
            return []
        actor = {"userId": self.caller.user_id} if self.caller.user_id else {"apiKeyId": self.caller.api_key_id}
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
        self._copy(events, published_at=None if push else now)
        if push:
            self.events.extend(events)
        self.deliveries += outbox.enqueue_for(self.conn, events)  # same transaction: the outbox
        return events

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
def write(caller: Caller) -> Iterator[tuple[psycopg.Connection[dict[str, Any]], Recorder]]:
    """A transaction whose recorded events are published once it has committed."""
    from chalicelib.domain import idempotency

    with transaction() as conn:
        idempotency.claim_in(conn)  # a keyed request's write records its key: a retry never applies it twice
        recorder = Recorder(conn, caller)
        yield conn, recorder
    after_commit(recorder)


def after_commit(recorder: Recorder) -> None:
    """Once the recorder's transaction has committed: push its events to the rooms and send its
    webhook queue messages (whatever fails here, the sweeps do later)."""
    if recorder.events:
        publish(recorder.events)
    if recorder.deliveries:
        from chalicelib.webhooks import outbox

        outbox.dispatch(recorder.deliveries)


def publish(events: list[DomainEvent], conn: psycopg.Connection[dict[str, Any]] | None = None) -> bool:
    """Push committed events to their session rooms and mark them published (on `conn` when given:
    the sweep's, which holds the rows' locks); False when publishing failed."""
    from chalicelib.observability import logger
    from chalicelib.realtime import broadcast

    try:
        broadcast.publish(events)
    except Exception:
        # The write is committed; the sweep publishes whatever this missed.
        logger().exception("publishing domain events failed", extra={"events": [e.id for e in events]})
        return False
    from chalicelib.store.postgres import execute

    if conn is not None:
        execute(conn, "mark_published", {"ids": [e.id for e in events]})
        return True
    with transaction() as own:
        execute(own, "mark_published", {"ids": [e.id for e in events]})
    return True
