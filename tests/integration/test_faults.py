"""Faults under steady traffic: nothing acknowledged is lost, nothing is written twice, service resumes."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.integration.conftest import Api, Stack, reset_caches

pytestmark = pytest.mark.integration


@dataclass
class Tally:
    sent: int = 0
    acknowledged: list[str] = field(default_factory=list)  # titles the API answered 201 for
    refused: Counter[int] = field(default_factory=Counter)  # status -> count (expected during the fault)
    messages: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _traffic(api: Api, tally: Tally, stop: threading.Event) -> None:
    """An engineer writing board cards and a viewer reading events, as fast as answers come."""
    while not stop.is_set():
        title = f"fault-{uuid.uuid4().hex[:12]}"
        try:
            write = api.post("/board-cards", {"title": title})
            read = api.get("/events")
        except Exception:  # connection-level failures count as refusals
            with tally.lock:
                tally.sent += 2
                tally.refused[0] += 2
            continue
        with tally.lock:
            tally.sent += 2
            if write.status_code == 201:
                tally.acknowledged.append(title)
            else:
                tally.refused[write.status_code] += 1
                tally.messages.add(write.json()["error"]["message"])
            if read.status_code != 200:
                tally.refused[read.status_code] += 1


@pytest.fixture()
def private_database(stack: Stack, tmp_path: Path) -> Iterator[tuple[Any, str, str]]:
    """The app on a cluster of its own that the test may stop; yields (cluster, url, owner token)."""
    from chalicelib.db.migrate import migrate
    from chalicelib.domain.tokens import issue_jwt
    from infra.local.postgres import EmbeddedPostgres
    from tests.integration.conftest import JWT_SECRET

    cluster = EmbeddedPostgres(tmp_path / "pg")
    url = cluster.start()
    migrate(url, log=False)
    with psycopg.connect(url) as conn:
        account = conn.execute("INSERT INTO accounts (name, slug) VALUES ('Faults', 'faults') RETURNING id"
                               ).fetchone()[0]  # type: ignore[index]
        user = conn.execute("INSERT INTO users (email, name) VALUES ('f@x.io', 'F') RETURNING id"
                            ).fetchone()[0]  # type: ignore[index]
        conn.execute("INSERT INTO memberships VALUES (%s, %s, 'owner')", (account, user))
    token = issue_jwt(JWT_SECRET, user_id=str(user), account_id=str(account), role="owner", ttl_s=3600)
    original = os.environ["DATABASE_URL"]
    os.environ["DATABASE_URL"] = url
    reset_caches()
    try:
        yield cluster, url, token
    finally:
        os.environ["DATABASE_URL"] = original
        reset_caches()
        cluster.stop()
        cluster.wipe()


def test_postgres_stops_under_traffic(stack: Stack, private_database: tuple[Any, str, str]) -> None:
    cluster, url, token = private_database
    tally, stop = Tally(), threading.Event()
    workers = [threading.Thread(target=_traffic, args=(Api(stack.api_url, token), tally, stop)) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        _wait_for(lambda: len(tally.acknowledged) >= 20, "writes before the fault")
        cluster.stop()
        _wait_for(lambda: tally.refused[503] >= 6, "503s while PostgreSQL is down")
        acknowledged_before_restart = len(tally.acknowledged)
        cluster.start()
        _wait_for(lambda: len(tally.acknowledged) >= acknowledged_before_restart + 20, "writes after the restart")
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
    with psycopg.connect(url) as conn:
        stored = Counter(r[0] for r in conn.execute("SELECT title FROM board_cards"))
        events = Counter(r[0] for r in conn.execute("SELECT data->>'title' FROM domain_events "
                                                    "WHERE type = 'board_card.create'"))
    lost = [t for t in tally.acknowledged if t not in stored]
    duplicated = [t for t, n in stored.items() if n > 1]
    partial = [t for t in stored if events[t] != 1]  # a row without its domain event (or the reverse)
    report = (f"sent={tally.sent} acknowledged={len(tally.acknowledged)} refused={dict(tally.refused)} "
              f"lost={len(lost)} duplicated={len(duplicated)} partial={len(partial)}")
    print(report)
    assert not lost and not duplicated and not partial, report
    assert set(tally.refused) <= {503}, report
    assert any("PostgreSQL" in m for m in tally.messages), tally.messages


def _wait_for(condition: Any, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
