"""The outbox hook: one query per write transaction without subscriptions, filters matched, one insert."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from chalicelib.domain.changes import DomainEvent
from chalicelib.store.sql import query
from chalicelib.webhooks import outbox

pytestmark = pytest.mark.unit

ACCOUNT = "a0000000-0000-0000-0000-000000000001"


class FakeConnection:
    """Answers the outbox's two queries; records what was asked."""

    def __init__(self, webhooks: list[dict[str, Any]]) -> None:
        self.webhooks = webhooks
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._rows: list[dict[str, Any]] = []

    def execute(self, sql: str, params: dict[str, Any]) -> FakeConnection:
        name = next(n for n in ("enabled_webhooks", "insert_webhook_deliveries") if query(n) == sql)
        self.calls.append((name, params))
        if name == "enabled_webhooks":
            self._rows = self.webhooks
        else:
            self._rows = [{"id": f"d{i}", "account_id": ACCOUNT} for i in range(len(params["webhook_ids"]))]
        return self

    def fetchall(self) -> list[dict[str, Any]]:
        return self._rows


def event(event_id: int, entity: str, op: str) -> DomainEvent:
    return DomainEvent(event_id, ACCOUNT, f"{entity}.{op}", entity, op, None, None, {}, {}, dt.datetime.now(dt.UTC))


def test_without_subscriptions_a_whole_transaction_costs_one_query() -> None:
    conn = FakeConnection([])
    cache: outbox.SubscriptionCache = {}
    for n in range(1000):
        assert outbox.enqueue_for(conn, event(n, "lap", "create"), cache) == []  # type: ignore[arg-type]
    assert [name for name, _ in conn.calls] == ["enabled_webhooks"]


def test_matching_pairs_are_inserted_with_one_statement() -> None:
    conn = FakeConnection(
        [
            {"id": "w-laps", "entity_types": ["lap"], "operations": ["create"]},
            {"id": "w-all", "entity_types": [], "operations": ["create", "update", "delete"]},
            {"id": "w-deletes", "entity_types": [], "operations": ["delete"]},
        ]
    )
    events = [event(1, "lap", "create"), event(2, "lap", "update"), event(3, "issue", "delete")]
    messages = outbox.enqueue_for(conn, events)  # type: ignore[arg-type]
    assert len(messages) == 5
    (_, _), (name, params) = conn.calls
    assert name == "insert_webhook_deliveries"
    assert list(zip(params["webhook_ids"], params["event_ids"], strict=True)) == [
        ("w-laps", 1),
        ("w-all", 1),
        ("w-all", 2),
        ("w-all", 3),
        ("w-deletes", 3),
    ]


def test_events_nobody_wants_insert_nothing() -> None:
    conn = FakeConnection([{"id": "w", "entity_types": ["issue"], "operations": ["create"]}])
    assert outbox.enqueue_for(conn, [event(1, "lap", "create"), event(2, "issue", "update")]) == []  # type: ignore[arg-type]
    assert [name for name, _ in conn.calls] == ["enabled_webhooks"]


def test_filters() -> None:
    everything = outbox.Subscription("w", frozenset(), frozenset({"create", "update", "delete"}))
    laps_created = outbox.Subscription("w", frozenset({"lap"}), frozenset({"create"}))
    assert everything.matches("board_card", "delete")
    assert laps_created.matches("lap", "create")
    assert not laps_created.matches("lap", "update")
    assert not laps_created.matches("run_sheet", "create")
