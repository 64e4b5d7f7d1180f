"""A real write through the app: sinks hear its events inside the transaction, then only once it has committed."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest

from chalicelib.domain import sinks
from chalicelib.domain.changes import DomainEvent
from tests.integration.conftest import Stack
from tests.integration.test_laps import Sheet, lap, ok
from tests.integration.test_laps import team as team  # the fixture

pytestmark = pytest.mark.integration


class Probe:
    """A sink that notes each batch, and on commit whether another connection already sees its events."""

    def __init__(self, database_url: str, heard: list[dict[str, Any]], conn: Any) -> None:
        self.database_url, self.heard, self.events = database_url, heard, []  # type: list[DomainEvent]
        self.writer = conn

    def recorded(self, events: Sequence[DomainEvent], *, live: bool) -> None:
        self.events += events
        self.heard.append({"recorded": [e.type for e in events], "live": live, "in_transaction": self._open()})

    def pending(self) -> bool:
        return True

    def committed(self) -> None:
        with psycopg.connect(self.database_url) as other:
            ids = [e.id for e in self.events]
            seen = other.execute("SELECT count(*) FROM domain_events WHERE id = ANY(%s)", (ids,)).fetchone()
        self.heard.append({"committed": len(ids), "visible_to_others": seen and seen[0]})

    def _open(self) -> bool:
        return self.writer.info.transaction_status != psycopg.pq.TransactionStatus.IDLE


@pytest.fixture()
def heard(stack: Stack) -> Iterator[list[dict[str, Any]]]:
    log: list[dict[str, Any]] = []
    sinks.register("probe", lambda conn: Probe(stack.database_url, log, conn))
    yield log
    sinks.unregister("probe")


def test_a_lap_write_is_heard_in_its_transaction_then_after_commit(
    heard: list[dict[str, Any]],
    team: Sheet,
) -> None:
    heard.clear()  # the team's own setup writes
    ok(team.api.post("/laps", {"laps": [lap(team, 1), lap(team, 2)]}), 201)
    assert heard == [
        {"recorded": ["lap.create", "lap.create"], "live": True, "in_transaction": True},
        {"committed": 2, "visible_to_others": 2},
    ]


def test_a_refused_write_is_never_heard_as_committed(
    heard: list[dict[str, Any]],
    team: Sheet,
) -> None:
    ok(team.api.post("/laps", {"laps": [lap(team, 1)]}), 201)
    heard.clear()
    answer = team.api.post("/laps", {"laps": [lap(team, 2), lap(team, 1)]})  # lap 1 exists: the batch rolls back
    assert answer.status_code == 409, answer.text
    assert not [h for h in heard if "committed" in h]


def test_the_app_process_is_wired_with_access_rooms_and_webhooks(stack: Stack) -> None:
    assert list(sinks._registered)[:3] == ["access", "rooms", "webhooks"]


@pytest.mark.parametrize(("count", "pipelined"), [(1, True), (10, True), (11, False)])
def test_a_few_rows_go_in_the_same_round_trip_as_their_events(
    stack: Stack, team: Sheet, count: int, pipelined: bool
) -> None:
    """`record_many(along=...)`: a few events and the rows' own statement in one pipeline (one wait);
    more than INSERT_MAX_EVENTS, the rows' statement alone first (it may be a COPY, which a pipeline
    cannot carry). Either way the rows and events commit together."""
    from psycopg.rows import dict_row

    from chalicelib.domain.caller import Caller
    from chalicelib.domain.changes import Recorder

    seen: list[bool] = []
    caller = Caller(account_id=team.account_id, role="engineer", user_id=None, api_key_id=str(uuid.uuid4()))
    marker = f"along-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(stack.database_url, row_factory=dict_row) as conn:
        recorder = Recorder(conn, caller, sinks={})

        def along() -> None:
            seen.append(conn.pgconn.pipeline_status != psycopg.pq.PipelineStatus.OFF)
            conn.execute("UPDATE accounts SET name = %s WHERE id = %s", (marker, team.account_id))

        events = recorder.record_many("note", "create", [({"n": n}, None) for n in range(count)], along=along)
    assert seen == [pipelined]
    assert [e.id for e in events] == sorted(e.id for e in events) and len({e.created_at for e in events}) == 1
    with psycopg.connect(stack.database_url) as other:
        name = other.execute("SELECT name FROM accounts WHERE id = %s", (team.account_id,)).fetchone()
        stored = other.execute("SELECT count(*) FROM domain_events WHERE id = ANY(%s)", ([e.id for e in events],))
        assert name == (marker,) and stored.fetchone() == (count,)


def test_a_refusal_inside_one_round_trip_is_raised_as_itself_without_a_driver_warning(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """A refusal whose answer is read inside the pipeline (while a later statement is still queued) is
    what raises, once the pipeline has ended: not psycopg's "pipeline aborted", and no driver warning."""
    from chalicelib.domain.changes import one_round_trip

    caplog.set_level(logging.WARNING, logger="psycopg")
    with psycopg.connect(stack.database_url) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero), one_round_trip(conn):  # type: ignore[arg-type]
            conn.execute("SELECT 1 / 0")
            time.sleep(0.2)  # its answer is in: sending the next statement reads it, and raises here
            conn.execute("SELECT 1")
        conn.rollback()
        assert conn.execute("SELECT 2").fetchone() == (2,)
        with pytest.raises(psycopg.errors.DivisionByZero), one_round_trip(conn):  # type: ignore[arg-type]
            conn.execute("SELECT 1 / 0")  # read only where the pipeline ends
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")]
