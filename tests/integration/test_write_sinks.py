"""A real write through the app: sinks hear its events inside the transaction, then only once it has committed."""

from __future__ import annotations

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
