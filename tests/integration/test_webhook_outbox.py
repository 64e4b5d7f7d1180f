"""The outbox against PostgreSQL: filters matched by the insert itself, one statement per recorded
batch, one query per transaction in an account without webhooks, and never another account's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from chalicelib.domain.changes import DomainEvent
from chalicelib.webhooks import outbox

pytestmark = pytest.mark.integration


class Counted:
    """A real connection that counts the statements sent through it."""

    def __init__(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        self.conn, self.statements = conn, 0

    def execute(self, sql: Any, params: Any = None) -> Any:
        self.statements += 1
        return self.conn.execute(sql, params)


@pytest.fixture()
def conn(database_url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(database_url, row_factory=dict_row) as connection:
        yield connection
        connection.rollback()  # each test's rows go with it


def account(conn: psycopg.Connection[dict[str, Any]]) -> str:
    slug = f"outbox-{uuid.uuid4().hex[:10]}"
    row = conn.execute("INSERT INTO accounts (name, slug) VALUES ('Outbox', %s) RETURNING id", (slug,)).fetchone()
    assert row is not None
    return str(row["id"])


def webhook(
    conn: psycopg.Connection[dict[str, Any]], account_id: str, entities: list[str], ops: list[str], enabled: bool = True
) -> str:
    row = conn.execute(
        "INSERT INTO webhooks (account_id, url, entity_types, operations, enabled, secret)"
        " VALUES (%s, 'https://example.test/hook', %s, %s, %s, 'whsec_test') RETURNING id",
        (account_id, entities, ops, enabled),
    ).fetchone()
    assert row is not None
    return str(row["id"])


def event(conn: psycopg.Connection[dict[str, Any]], account_id: str, entity: str, op: str) -> DomainEvent:
    row = conn.execute(
        "INSERT INTO domain_events (account_id, type, entity, op, actor, data) VALUES (%s, %s, %s, %s, %s, %s)"
        " RETURNING id, created_at",
        (account_id, f"{entity}.{op}", entity, op, Jsonb({}), Jsonb({"n": 1})),
    ).fetchone()
    assert row is not None
    return DomainEvent(row["id"], account_id, f"{entity}.{op}", entity, op, None, None, {}, {}, row["created_at"])


def deliveries(conn: psycopg.Connection[dict[str, Any]], messages: list[Any]) -> list[tuple[str, int]]:
    rows = conn.execute(
        "SELECT webhook_id, event_id FROM webhook_deliveries WHERE id = ANY(%s::uuid[]) ORDER BY event_id",
        ([m.delivery_id for m in messages],),
    ).fetchall()
    return sorted((str(r["webhook_id"]), r["event_id"]) for r in rows)


def test_each_event_goes_to_every_enabled_subscription_whose_filter_takes_it(
    conn: psycopg.Connection[dict[str, Any]],
) -> None:
    acc = account(conn)
    laps_created = webhook(conn, acc, ["lap"], ["create"])
    everything = webhook(conn, acc, [], ["create", "update", "delete"])
    deletes = webhook(conn, acc, [], ["delete"])
    webhook(conn, acc, [], ["create", "update", "delete"], enabled=False)
    created, updated, deleted = (
        event(conn, acc, "lap", "create"),
        event(conn, acc, "lap", "update"),
        event(conn, acc, "issue", "delete"),
    )
    counted = Counted(conn)
    messages = outbox.enqueue_for(counted, [created, updated, deleted])  # type: ignore[arg-type]
    assert counted.statements == 1  # matched and inserted in one round trip
    assert {m.account_id for m in messages} == {acc}
    assert deliveries(conn, messages) == sorted(
        [
            (laps_created, created.id),
            (everything, created.id),
            (everything, updated.id),
            (everything, deleted.id),
            (deletes, deleted.id),
        ]
    )
    payload = conn.execute(
        "SELECT payload FROM webhook_deliveries WHERE event_id = %s AND webhook_id = %s", (created.id, laps_created)
    ).fetchone()
    assert payload is not None and payload["payload"].startswith('{"type":"lap.create","timestamp":"')


def test_events_nobody_wants_insert_nothing(conn: psycopg.Connection[dict[str, Any]]) -> None:
    acc = account(conn)
    webhook(conn, acc, ["issue"], ["create"])
    assert outbox.enqueue_for(conn, [event(conn, acc, "lap", "create"), event(conn, acc, "issue", "update")]) == []
    assert conn.execute("SELECT count(*) AS n FROM webhook_deliveries WHERE account_id = %s", (acc,)).fetchone() == {
        "n": 0
    }


def test_an_account_without_webhooks_is_asked_once_per_transaction(conn: psycopg.Connection[dict[str, Any]]) -> None:
    acc = account(conn)
    counted, without = Counted(conn), set[str]()
    for _ in range(50):
        assert outbox.enqueue_for(counted, event(conn, acc, "lap", "create"), without) == []  # type: ignore[arg-type]
    assert counted.statements == 1
    assert without == {acc}


def test_an_account_whose_subscriptions_match_nothing_is_asked_again(conn: psycopg.Connection[dict[str, Any]]) -> None:
    acc = account(conn)
    hook = webhook(conn, acc, ["issue"], ["create"])
    counted, without = Counted(conn), set[str]()
    assert outbox.enqueue_for(counted, event(conn, acc, "lap", "create"), without) == []  # type: ignore[arg-type]
    wanted = event(conn, acc, "issue", "create")
    messages = outbox.enqueue_for(counted, wanted, without)  # type: ignore[arg-type]
    assert counted.statements == 2 and without == set()
    assert deliveries(conn, messages) == [(hook, wanted.id)]


def test_another_accounts_subscriptions_never_get_an_event(conn: psycopg.Connection[dict[str, Any]]) -> None:
    ours, theirs = account(conn), account(conn)
    webhook(conn, theirs, [], ["create", "update", "delete"])
    mine = webhook(conn, ours, ["lap"], ["create"])
    our_event, their_event = event(conn, ours, "lap", "create"), event(conn, theirs, "lap", "create")
    messages = outbox.enqueue_for(conn, [our_event])
    assert deliveries(conn, messages) == [(mine, our_event.id)]
    # An event whose account id was forged to ours still joins only its own account's subscriptions.
    when = their_event.created_at
    forged = DomainEvent(their_event.id, ours, "lap.create", "lap", "create", None, None, {}, {}, when)
    assert outbox.enqueue_for(conn, [forged]) == []


def test_a_batch_of_several_accounts_goes_to_each_accounts_own(conn: psycopg.Connection[dict[str, Any]]) -> None:
    first, second = account(conn), account(conn)
    hooks = {first: webhook(conn, first, [], ["create"]), second: webhook(conn, second, [], ["create"])}
    events = [event(conn, first, "lap", "create"), event(conn, second, "lap", "create")]
    messages = outbox.enqueue_for(conn, events)
    assert deliveries(conn, messages) == sorted((hooks[e.account_id], e.id) for e in events)
    assert sorted(m.account_id for m in messages) == sorted([first, second])


def plan(conn: psycopg.Connection[dict[str, Any]], account_id: str, event_ids: list[int]) -> list[str]:
    """The statement's plan as run (EXPLAIN ANALYZE inside the test's transaction), without the ids."""
    from chalicelib.store.sql import query

    rows = conn.execute(
        "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + query("insert_matching_webhook_deliveries"),
        {"account_id": account_id, "event_ids": event_ids},
    ).fetchall()
    return [row["QUERY PLAN"].split(" = ANY ('{")[0] for row in rows]


def many_events(conn: psycopg.Connection[dict[str, Any]], account_id: str, count: int) -> list[int]:
    rows = conn.execute(
        "INSERT INTO domain_events (account_id, type, entity, op, actor, data)"
        " SELECT %s, 'lap.create', 'lap', 'create', '{}', '{}' FROM generate_series(1, %s) RETURNING id",
        (account_id, count),
    ).fetchall()
    return [row["id"] for row in rows]


def test_a_big_import_in_an_account_without_webhooks_reads_no_event(conn: psycopg.Connection[dict[str, Any]]) -> None:
    acc = account(conn)
    lines = plan(conn, acc, many_events(conn, acc, 15_000))
    scans = [line for line in lines if "on domain_events" in line]
    assert scans and all("never executed" in line for line in scans), "\n".join(lines)


def test_with_a_subscription_only_the_batchs_events_are_read(conn: psycopg.Connection[dict[str, Any]]) -> None:
    acc = account(conn)
    webhook(conn, acc, ["issue"], ["create"])  # takes none of these: the plan reads, inserts nothing
    ids = many_events(conn, acc, 15_000)
    conn.execute("ANALYZE domain_events")
    lines = plan(conn, acc, ids[5000:5003])
    scans = [n for n, line in enumerate(lines) if "on domain_events" in line]
    assert len(scans) == 1 and "actual rows=3 " in lines[scans[0]], "\n".join(lines)
    assert not any("Rows Removed by Filter" in line for line in lines[scans[0] :]), "\n".join(lines)
