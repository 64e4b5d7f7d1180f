"""Laps: batch writes in one transaction with per-lap events, refusals that change nothing,
Idempotency-Key, concurrent batches, lists (comparisons, sort, fields, CSV) and run-sheet stats."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import requests

from tests.integration.conftest import Api, Stack, new_account, token_for

pytestmark = pytest.mark.integration


@dataclass
class Sheet:
    api: Api
    account_id: str
    id: str
    session_id: str
    car_id: str
    driver_ids: list[str]


def ok(answer: requests.Response, *statuses: int) -> Any:
    assert answer.status_code in (statuses or (200, 201)), (answer.status_code, answer.text[:500])
    return answer.json() if answer.text else None


def make_sheet(api: Api, account_id: str, session_type: str = "race") -> Sheet:
    event = ok(api.post("/events", {"name": "Sebring"}))
    session = ok(api.post("/sessions", {"eventId": event["id"], "name": "Race", "type": session_type}))
    car = ok(api.post("/cars", {"eventId": event["id"], "number": "7"}))
    drivers = [
        ok(api.post("/drivers", {"name": name, "number": number, "carId": car["id"]}))["id"]
        for name, number in (("Ana", "1"), ("Ben", "2"))
    ]
    sheet = ok(api.post("/run-sheets", {"sessionId": session["id"], "carId": car["id"]}))
    return Sheet(api, account_id, sheet["id"], session["id"], car["id"], drivers)


@pytest.fixture()
def team(stack: Stack) -> Sheet:
    email, account_id = new_account("engineer")
    return make_sheet(Api(stack.api_url, token_for(email)), account_id)


def lap(sheet: Sheet, number: int, lap_time_ms: int = 100_000, **extra: Any) -> dict[str, Any]:
    s1, s2 = round(lap_time_ms * 0.3), round(lap_time_ms * 0.4)
    return {
        "runSheetId": sheet.id,
        "lapNumber": number,
        "lapTimeMs": lap_time_ms,
        "sectorTimesMs": [s1, s2, lap_time_ms - s1 - s2],
        **extra,
    }


def counts(stack: Stack, account_id: str) -> tuple[int, int]:
    with psycopg.connect(stack.database_url) as conn:
        laps = conn.execute("SELECT count(*) FROM laps WHERE account_id = %s", (account_id,)).fetchone()
        events = conn.execute("SELECT count(*) FROM domain_events WHERE account_id = %s", (account_id,)).fetchone()
    assert laps and events
    return laps[0], events[0]


def all_laps(api: Api, query: str) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        page = ok(api.get(f"/laps?{query}&limit=500" + (f"&cursor={cursor}" if cursor else "")))
        items += page["items"]
        cursor = page["nextCursor"]
        if not cursor:
            return items


# ---- writes --------------------------------------------------------------------------------------


def test_a_batch_is_inserted_with_a_lap_create_event_per_lap(stack: Stack, team: Sheet) -> None:
    body = {
        "laps": [
            lap(
                team,
                n,
                100_000 + n,
                driverId=team.driver_ids[n % 2],
                stint=1,
                flag="GF",
                fuelL=50.456,
                tyreSet="S1",
                custom={"note": f"lap {n}"},
            )
            for n in range(1, 21)
        ]
    }
    answer = ok(team.api.post("/laps", body), 201)
    assert answer["created"] == 20 and [i["lapNumber"] for i in answer["items"]] == list(range(1, 21))
    stored = all_laps(team.api, f"runSheetId={team.id}")
    assert [s["id"] for s in stored] == [i["id"] for i in answer["items"]]
    first = stored[0]
    assert (first["sessionId"], first["carId"], first["source"], first["driverNumber"]) == (
        team.session_id,
        team.car_id,
        "manual",
        "2",
    )  # derived from the run sheet and the driver
    assert first["fuelL"] == 50.46 and first["custom"] == {"note": "lap 1"} and first["isValid"] is True
    deadline = time.monotonic() + 10
    while True:  # the write answers first; the room publisher marks its events published after
        with psycopg.connect(stack.database_url) as conn:
            events = conn.execute(
                "SELECT entity_id::text, session_id::text, data, published_at IS NOT NULL "
                "FROM domain_events WHERE account_id = %s AND type = 'lap.create' ORDER BY id",
                (team.account_id,),
            ).fetchall()
        if all(e[3] for e in events) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [e[0] for e in events] == [s["id"] for s in stored]
    assert {e[1] for e in events} == {team.session_id}
    assert events[4][2] == stored[4] and all(e[3] for e in events)  # the lap as GET shows it; published


def test_one_lap_answers_the_lap(team: Sheet) -> None:
    made = ok(
        team.api.post("/laps", lap(team, 1, isOutLap=True, pitTimeMs=0, recordedAt="2026-03-14T10:00:00+01:00")), 201
    )
    assert made["lapNumber"] == 1 and made["isOutLap"] and made["recordedAt"] == "2026-03-14T09:00:00Z"
    assert ok(team.api.get(f"/laps/{made['id']}")) == made


BAD_LAPS = [
    (1, "lapTimeMs", {"lapTimeMs": -5}),
    (2, "sectorTimesMs", {"sectorTimesMs": [30_000, 40_000, 20_000]}),
    (3, "lapNumber", {"lapNumber": 0}),
    (4, "lapTimeMs", {"lapTimeMs": "100000"}),
    (5, "isValid", {"isValid": "yes"}),
    (6, "sessionId", {"sessionId": str(uuid.uuid4())}),
    (7, "speedKph", {"speedKph": 200}),
    (8, "flag", {"flag": "GREEN"}),
    (9, "lapTimeMs", {"lapTimeMs": 24 * 3600 * 1000 + 1}),
]


def test_bad_laps_fail_the_whole_batch_naming_each_index_and_field(stack: Stack, team: Sheet) -> None:
    before = counts(stack, team.account_id)
    body = {"laps": [lap(team, n) for n in range(1, 11)]}
    for index, _, change in BAD_LAPS:
        body["laps"][index].update(change)
    answer = team.api.post("/laps", body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert {(d["index"], d["field"]) for d in error["details"]} == {(i, f) for i, f, _ in BAD_LAPS}
    assert error["field"] == "laps[1].lapTimeMs" and "9 of the laps are invalid" in error["message"]
    assert "derived from the run sheet" in next(d["message"] for d in error["details"] if d["field"] == "sessionId")
    assert counts(stack, team.account_id) == before


def test_sectors_may_be_off_by_a_millisecond_per_sector(team: Sheet) -> None:
    assert team.api.post("/laps", {**lap(team, 1), "sectorTimesMs": [30_001, 40_001, 30_001]}).status_code == 201
    answer = team.api.post("/laps", {**lap(team, 2), "sectorTimesMs": [30_002, 40_001, 30_001]})
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "sectorTimesMs"


def test_oversized_batches_and_bodies_are_refused(stack: Stack, team: Sheet) -> None:
    before = counts(stack, team.account_id)
    answer = team.api.post("/laps", {"laps": [lap(team, n) for n in range(1, 5_002)]})
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "laps", answer.text[:300]
    huge = json.dumps({"laps": [lap(team, 1, custom={"x": "y" * 10_000_000})]})
    answer = team.api.post("/laps", data=huge, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "payload_too_large"
    assert counts(stack, team.account_id) == before


@pytest.mark.parametrize("size", [3, 30])  # a few laps go in as INSERTs, more as a COPY
def test_duplicates_in_the_batch_or_against_stored_laps_are_409_naming_them(
    stack: Stack, team: Sheet, size: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="psycopg")
    ok(team.api.post("/laps", lap(team, 3)), 201)
    before = counts(stack, team.account_id)
    twice = team.api.post("/laps", {"laps": [lap(team, 1), lap(team, 2), lap(team, 1)]})
    assert twice.status_code == 409 and f"lap 1 of run sheet {team.id}" in twice.json()["error"]["message"]
    stored = team.api.post("/laps", {"laps": [lap(team, n) for n in range(1, size + 1)]})
    assert stored.status_code == 409 and f"lap 3 of run sheet {team.id} already exists" in stored.text
    assert counts(stack, team.account_id) == before
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")]  # a refusal, not a fault


def test_a_single_lap_already_stored_is_409_naming_it_and_leaves_no_event(
    stack: Stack, team: Sheet, caplog: pytest.LogCaptureFixture
) -> None:
    # A single lap and its event go to PostgreSQL in one round trip: the lap's refusal surfaces
    # where that round trip ends, and must still name the lap and leave nothing behind.
    caplog.set_level(logging.WARNING, logger="psycopg")
    ok(team.api.post("/laps", lap(team, 7)), 201)
    before = counts(stack, team.account_id)
    again = team.api.post("/laps", lap(team, 7, fuelL=12.5))
    assert again.status_code == 409, again.text
    assert again.json()["error"]["message"] == f"lap 7 of run sheet {team.id} already exists"
    assert counts(stack, team.account_id) == before
    assert ok(team.api.post("/laps", lap(team, 8)), 201)["lapNumber"] == 8  # the connection is usable after
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")]


def test_a_lap_reads_back_the_same_whether_it_was_inserted_or_copied(stack: Stack, team: Sheet) -> None:
    fields = {
        "sectorTimesMs": [30_000, 40_000, 30_000],
        "isInLap": True,
        "pitTimeMs": 21_500,
        "flag": "FCY",
        "driverNumber": "7",
        "stint": 2,
        "fuelL": 41.25,
        "tyreSet": "S-04",
        "recordedAt": "2026-03-14T10:00:00.250Z",
        "custom": {"note": "traffic in T17", "nested": {"deg": [1, 2]}},
    }
    single = ok(team.api.post("/laps", lap(team, 1, **fields)), 201)  # INSERT
    batch = ok(team.api.post("/laps", {"laps": [lap(team, n, **fields) for n in range(2, 14)]}), 201)  # COPY
    copied = next(item for item in batch["items"] if item["lapNumber"] == 2)
    one, other = (ok(team.api.get(f"/laps/{lap_id}"), 200) for lap_id in (single["id"], copied["id"]))
    same = {k: v for k, v in one.items() if k not in ("id", "lapNumber", "createdAt", "updatedAt")}
    assert same == {k: v for k, v in other.items() if k not in ("id", "lapNumber", "createdAt", "updatedAt")}
    assert {k: one[k] for k in fields} == {**fields, "recordedAt": one["recordedAt"]}
    assert one["recordedAt"].startswith("2026-03-14T10:00:00.25")


def test_another_accounts_run_sheet_or_driver_is_404_and_nothing_is_written(
    stack: Stack, team: Sheet, alex: Api
) -> None:
    theirs = alex.get("/run-sheets").json()["items"][0]["id"]
    their_driver = alex.get("/drivers").json()["items"][0]["id"]
    before = counts(stack, team.account_id)
    answer = team.api.post("/laps", {"laps": [lap(team, 1), {**lap(team, 2), "runSheetId": theirs}]})
    assert answer.status_code == 404 and theirs in answer.json()["error"]["message"]
    answer = team.api.post("/laps", lap(team, 1, driverId=their_driver))
    assert answer.status_code == 404 and their_driver in answer.text
    assert counts(stack, team.account_id) == before


def test_viewers_cannot_write_laps(stack: Stack, team: Sheet) -> None:
    email, _ = new_account("viewer")
    viewer = Api(stack.api_url, token_for(email))
    assert viewer.post("/laps", lap(team, 1)).status_code == 403


def test_patch_and_delete_record_their_events(stack: Stack, team: Sheet) -> None:
    made = ok(team.api.post("/laps", lap(team, 1, driverId=team.driver_ids[0], flag="GF")), 201)
    changed = ok(team.api.call("PATCH", f"/laps/{made['id']}", {"isValid": False, "flag": None, "driverId": None}))
    assert (changed["isValid"], changed["flag"], changed["driverId"], changed["lapTimeMs"]) == (
        False,
        None,
        None,
        100_000,
    )
    bad = team.api.call("PATCH", f"/laps/{made['id']}", {"lapTimeMs": 90_000})  # the sectors no longer add up
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "sectorTimesMs"
    assert team.api.call("PATCH", f"/laps/{made['id']}", {"runSheetId": team.id}).status_code == 400
    ok(team.api.post("/laps", lap(team, 2)), 201)
    taken = team.api.call("PATCH", f"/laps/{made['id']}", {"lapNumber": 2})
    assert taken.status_code == 409 and "lap 2 of run sheet" in taken.text
    assert ok(team.api.delete(f"/laps/{made['id']}")) == {"id": made["id"], "deleted": {"laps": 1}}
    assert team.api.get(f"/laps/{made['id']}").status_code == 404
    with psycopg.connect(stack.database_url) as conn:
        types = [
            row[0]
            for row in conn.execute(
                "SELECT type FROM domain_events WHERE entity_id = %s ORDER BY id", (made["id"],)
            ).fetchall()
        ]
    assert types == ["lap.create", "lap.update", "lap.delete"]


def test_a_big_batch_records_every_event_but_the_room_hears_one_summary(stack: Stack, team: Sheet) -> None:
    ok(team.api.post("/laps", {"laps": [lap(team, n) for n in range(1, 602)]}), 201)
    with psycopg.connect(stack.database_url) as conn:
        rows = conn.execute(
            "SELECT type, published_at IS NOT NULL, data FROM domain_events "
            "WHERE account_id = %s AND type IN ('lap.create', 'run_sheet.update')",
            (team.account_id,),
        ).fetchall()
    lap_events = [r for r in rows if r[0] == "lap.create"]
    assert len(lap_events) == 601 and all(r[1] for r in lap_events)
    summary = [r[2] for r in rows if r[0] == "run_sheet.update"]
    assert len(summary) == 1 and summary[0]["lapsAdded"] == 601 and summary[0]["lapEventsPushed"] is False


def test_webhooks_get_a_lap_create_delivery_per_lap_of_a_batch(stack: Stack, team: Sheet) -> None:
    with psycopg.connect(stack.database_url) as conn:
        conn.execute(
            "INSERT INTO webhooks (account_id, url, entity_types, operations, secret) "
            "VALUES (%s, 'http://127.0.0.1:9/hook', '{lap}', '{create}', 'whsec_x')",
            (team.account_id,),
        )
    made = ok(team.api.post("/laps", {"laps": [lap(team, n) for n in range(1, 4)]}), 201)
    with psycopg.connect(stack.database_url) as conn:
        payloads = [
            json.loads(row[0])
            for row in conn.execute(
                "SELECT payload FROM webhook_deliveries WHERE account_id = %s ORDER BY event_id", (team.account_id,)
            ).fetchall()
        ]
    assert [(p["type"], p["data"]["id"]) for p in payloads] == [("lap.create", i["id"]) for i in made["items"]]


def test_the_session_room_hears_each_lap_of_a_small_batch_and_one_summary_of_a_big_one(
    stack: Stack, team: Sheet
) -> None:
    from websockets.sync.client import connect

    with connect(f"{stack.ws_url}/?token={team.api.token}") as ws:
        ws.send(json.dumps({"action": "join", "sessionId": team.session_id}))
        heard = [json.loads(ws.recv(timeout=10))]
        ok(team.api.post("/laps", {"laps": [lap(team, n) for n in range(1, 4)]}), 201)
        ok(team.api.post("/laps", {"laps": [lap(team, n) for n in range(4, 505)]}), 201)
        while heard[-1]["type"] != "run_sheet.update":
            heard.append(json.loads(ws.recv(timeout=10)))
    pushed = [
        (m["type"], m["data"].get("lapNumber", m["data"].get("lapsAdded")))
        for m in heard[1:]
        if m["type"] in ("lap.create", "run_sheet.update")
    ]
    assert pushed == [("lap.create", 1), ("lap.create", 2), ("lap.create", 3), ("run_sheet.update", 501)]
    assert heard[0]["type"] == "joined" and heard[-1]["data"]["lapEventsPushed"] is False


def test_two_concurrent_batches_into_one_run_sheet_keep_lap_numbers_unique(stack: Stack, team: Sheet) -> None:
    answers: dict[str, requests.Response] = {}
    bodies = {
        "a": {"laps": [lap(team, n) for n in range(1, 61)]},
        "b": {"laps": [lap(team, n) for n in range(40, 101)]},
    }
    with _held_lap(stack, team, 50) as release:  # both batches wait on lap 50 until released
        threads = [
            threading.Thread(target=lambda k=k: answers.__setitem__(k, team.api.post("/laps", bodies[k])))
            for k in bodies
        ]
        for thread in threads:
            thread.start()
        _wait_for_lock_waits(stack, 2)
        release()
        for thread in threads:
            thread.join(30)
    statuses = sorted(a.status_code for a in answers.values())
    assert statuses == [201, 409], {k: a.text[:200] for k, a in answers.items()}
    winner = next(k for k, a in answers.items() if a.status_code == 201)
    numbers = [s["lapNumber"] for s in all_laps(team.api, f"runSheetId={team.id}")]
    assert numbers == [item["lapNumber"] for item in bodies[winner]["laps"]]


def _held_lap(stack: Stack, team: Sheet, number: int) -> Any:
    """Insert lap `number` in a transaction left open; release() rolls it back."""
    from contextlib import contextmanager

    @contextmanager
    def hold() -> Iterator[Any]:
        conn = psycopg.connect(stack.database_url)
        conn.execute(
            "INSERT INTO laps (account_id, run_sheet_id, session_id, car_id, lap_number, lap_time_ms) "
            "VALUES (%s, %s, %s, %s, %s, 1)",
            (team.account_id, team.id, team.session_id, team.car_id, number),
        )
        try:
            yield conn.rollback
        finally:
            conn.rollback()
            conn.close()

    return hold()


def _wait_for_lock_waits(stack: Stack, count: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
            if waiting and waiting[0] >= count:
                return
            time.sleep(0.02)
    raise AssertionError(f"{count} requests never waited for the held lap")


# ---- Idempotency-Key -----------------------------------------------------------------------------


def test_a_retried_post_with_the_same_key_inserts_once_and_replays_the_answer(stack: Stack, team: Sheet) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"laps": [lap(team, n) for n in range(1, 6)]}
    first = team.api.post("/laps", body, headers=key)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    before = counts(stack, team.account_id)
    again = team.api.post("/laps", body, headers=key)
    assert (again.status_code, again.json(), again.headers.get("Idempotent-Replayed")) == (201, first.json(), "true")
    assert counts(stack, team.account_id) == before
    other = team.api.post("/laps", {"laps": [lap(team, 6)]}, headers=key)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    # Another route, or another account, with the same key is another key.
    assert team.api.post("/events", {"name": "E"}, headers=key).status_code == 201
    email, account_id = new_account("engineer")
    stranger = make_sheet(Api(stack.api_url, token_for(email)), account_id)
    assert stranger.api.post("/laps", lap(stranger, 1), headers=key).status_code == 201


def test_a_failed_request_leaves_its_key_free(stack: Stack, team: Sheet) -> None:
    key = {"Idempotency-Key": "retry-me-" + uuid.uuid4().hex}
    ok(team.api.post("/laps", lap(team, 1)), 201)
    assert team.api.post("/laps", lap(team, 1), headers=key).status_code == 409  # lap 1 exists
    team.api.delete(f"/laps/{all_laps(team.api, f'runSheetId={team.id}')[0]['id']}")
    assert team.api.post("/laps", lap(team, 1), headers=key).status_code == 201


def test_the_same_key_while_the_first_request_runs_is_409_in_progress(stack: Stack, team: Sheet) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"laps": [lap(team, n) for n in range(1, 4)]}
    answers: list[requests.Response] = []
    with _held_lap(stack, team, 2) as release:  # the first request waits on lap 2 (its key in progress)
        thread = threading.Thread(target=lambda: answers.append(team.api.post("/laps", body, headers=key)))
        thread.start()
        _wait_for_lock_waits(stack, 1)
        during = team.api.post("/laps", body, headers=key)
        release()
        thread.join(30)
    assert during.status_code == 409 and during.json()["error"]["code"] == "idempotency_in_progress"
    assert answers[0].status_code == 201
    replay = team.api.post("/laps", body, headers=key)
    assert replay.json() == answers[0].json() and replay.headers["Idempotent-Replayed"] == "true"


def test_idempotency_records_live_in_the_kv_table_scoped_by_account(stack: Stack, team: Sheet) -> None:
    import boto3

    key = "scoped-" + uuid.uuid4().hex
    ok(team.api.post("/laps", lap(team, 1), headers={"Idempotency-Key": key}), 201)
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.aws_endpoint_url, region_name="us-east-1")
    from chalicelib.config import settings

    sk = "POST /laps#" + hashlib.md5(json.dumps(key).encode()).hexdigest()  # Powertools' key hash
    item = dynamodb.get_item(
        TableName=settings().kv_table, Key={"pk": {"S": f"idempotency#{team.account_id}"}, "sk": {"S": sk}}
    )["Item"]
    assert item["status"]["S"] == "COMPLETED" and int(item["expiresAt"]["N"]) > time.time() + 23 * 3600


def _lose_the_answer(stack: Stack, team: Sheet, route: str, key: str) -> None:
    """What a crash after the commit but before the answer was kept leaves: no record of the key in
    DynamoDB once the in-progress lock has run out (deleting the record is the same for a retry)."""
    import boto3

    from chalicelib.config import settings

    dynamodb = boto3.client("dynamodb", endpoint_url=stack.aws_endpoint_url, region_name="us-east-1")
    sk = f"{route}#" + hashlib.md5(json.dumps(key).encode()).hexdigest()  # Powertools' key hash
    dynamodb.delete_item(
        TableName=settings().kv_table, Key={"pk": {"S": f"idempotency#{team.account_id}"}, "sk": {"S": sk}}
    )


def test_a_key_whose_answer_was_lost_after_the_commit_is_never_applied_twice(stack: Stack, team: Sheet) -> None:
    key = "crash-" + uuid.uuid4().hex
    card = {"title": "Check the rear wing gurney " + key}
    first = ok(team.api.post("/board-cards", card, headers={"Idempotency-Key": key}), 201)
    _lose_the_answer(stack, team, "POST /board-cards", key)
    for _ in range(2):  # every later retry is told the same, and nothing is written
        again = team.api.post("/board-cards", card, headers={"Idempotency-Key": key})
        assert again.status_code == 409, again.text
        assert again.json()["error"]["code"] == "idempotency_key_applied"
    titles = [c["title"] for c in ok(team.api.get("/board-cards?limit=100"))["items"]]
    assert titles.count(card["title"]) == 1 and first["title"] == card["title"]
    fresh = team.api.post("/board-cards", card, headers={"Idempotency-Key": key + "-new"})
    assert fresh.status_code == 201  # a new key is a new request


def test_an_api_key_retried_after_a_lost_answer_is_not_minted_twice(stack: Stack) -> None:
    email, account_id = new_account("owner")
    owner = Api(stack.api_url, token_for(email))
    key = "mint-" + uuid.uuid4().hex
    ok(owner.post("/api-keys", {"name": "timing feed"}, headers={"Idempotency-Key": key}), 201)
    _lose_the_answer(stack, Sheet(owner, account_id, "", "", "", []), "POST /api-keys", key)
    again = owner.post("/api-keys", {"name": "timing feed"}, headers={"Idempotency-Key": key})
    assert again.status_code == 409 and again.json()["error"]["code"] == "idempotency_key_applied"
    assert [k["name"] for k in ok(owner.get("/api-keys"))["items"]] == ["timing feed"]


def test_applied_keys_are_forgotten_with_their_answers(stack: Stack, team: Sheet) -> None:
    from chalicelib.domain import idempotency

    key = "old-" + uuid.uuid4().hex
    ok(team.api.post("/laps", lap(team, 1), headers={"Idempotency-Key": key}), 201)
    with psycopg.connect(stack.database_url) as conn:
        conn.execute(
            "UPDATE applied_requests SET applied_at = now() - interval '25 hours' WHERE account_id = %s",
            (team.account_id,),
        )
    assert idempotency.forget_expired() >= 1
    with psycopg.connect(stack.database_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM applied_requests WHERE account_id = %s", (team.account_id,)
        ).fetchone()
    assert left == (0,)


def test_a_malformed_key_is_400(team: Sheet) -> None:
    answer = team.api.post("/laps", lap(team, 1), headers={"Idempotency-Key": "x" * 300})
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "Idempotency-Key"


# ---- lists ---------------------------------------------------------------------------------------


def ten_timed_laps(team: Sheet) -> Sheet:
    """Ten laps: lap n takes 100 s - n ms (lap 10 fastest), recorded a minute apart from 10:00Z."""
    laps = [
        lap(
            team,
            n,
            100_000 - n,
            recordedAt=f"2026-03-14T10:{n:02d}:00Z",
            tyreSet="=HYPERLINK(x)" if n == 3 else "S",
            custom={"note": 'a, "quoted" note'} if n == 4 else {},
        )
        for n in range(1, 11)
    ]
    ok(team.api.post("/laps", {"laps": laps}), 201)
    return team


@pytest.fixture(scope="module")
def timed(stack: Stack) -> Sheet:
    """One team with ten timed laps, shared by the tests that only read it."""
    email, account_id = new_account("engineer")
    return ten_timed_laps(make_sheet(Api(stack.api_url, token_for(email)), account_id))


@pytest.mark.parametrize("spelling", ["lapTimeMs<=99995", "lapTimeMs%3C%3D99995", "lapTimeMs%3C=99995"])
def test_comparison_filters_whatever_the_encoding(timed: Sheet, spelling: str) -> None:
    answer = ok(timed.api.get(f"/laps?runSheetId={timed.id}&{spelling}"))
    assert [item["lapNumber"] for item in answer["items"]] == [5, 6, 7, 8, 9, 10]


def test_more_comparisons(timed: Sheet) -> None:
    def numbers(query: str) -> list[int]:
        return [item["lapNumber"] for item in ok(timed.api.get(f"/laps?runSheetId={timed.id}&{query}"))["items"]]

    assert numbers("lapNumber>5") == [6, 7, 8, 9, 10]
    assert numbers("lapNumber>5&lapNumber<8") == [6, 7]
    assert numbers("lapNumber>=9") == [9, 10]
    assert numbers("recordedAt>=2026-03-14T10:08:00Z") == [8, 9, 10]
    assert numbers("recordedAt<2026-03-14T11:02:00%2B01:00") == [1]


def test_sort_with_cursor_pagination_walks_every_lap_once_in_order(team: Sheet) -> None:
    timed = ten_timed_laps(team)
    ok(timed.api.post("/laps", lap(timed, 11, 99_990)))  # ties with lap 10 on lap time
    seen, cursor = [], None
    while True:
        page = ok(
            timed.api.get(
                f"/laps?runSheetId={timed.id}&sort=-lapTimeMs&limit=3" + (f"&cursor={cursor}" if cursor else "")
            )
        )
        seen += [(item["lapTimeMs"], item["id"]) for item in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert len(seen) == 11 and seen == sorted(seen, reverse=True)
    mixed = ok(timed.api.get(f"/laps?runSheetId={timed.id}&sort=runSheetId,-lapNumber&limit=4"))
    rest = ok(timed.api.get(f"/laps?runSheetId={timed.id}&sort=runSheetId,-lapNumber&cursor={mixed['nextCursor']}"))
    assert [i["lapNumber"] for i in mixed["items"] + rest["items"]] == list(range(11, 0, -1))
    other = timed.api.get(f"/laps?runSheetId={timed.id}&sort=lapTimeMs&cursor={mixed['nextCursor']}")
    assert other.status_code == 400 and other.json()["error"]["field"] == "cursor"


def test_fields_selects_what_each_item_holds(timed: Sheet) -> None:
    page = ok(timed.api.get(f"/laps?runSheetId={timed.id}&fields=id,lapNumber,lapTimeMs&limit=4&sort=-lapTimeMs"))
    assert all(list(item) == ["id", "lapNumber", "lapTimeMs"] for item in page["items"]) and page["nextCursor"]
    rest = ok(
        timed.api.get(f"/laps?runSheetId={timed.id}&fields=lapNumber&sort=-lapTimeMs&cursor={page['nextCursor']}")
    )
    assert [item["lapNumber"] for item in page["items"] + rest["items"]] == list(range(1, 11))  # slowest first


@pytest.mark.parametrize(
    "query",
    [
        "lapTimeMs<=1;DROP TABLE laps",
        "lapTimeMs<='1' OR '1'='1",
        "sort=lapTimeMs;DROP TABLE laps",
        "sort=(SELECT 1)",
        "fields=id,(select password_hash from users)",
        "recordedAt>=yesterday",
        "customX>5",
        "flag=GF' OR '1'='1",
        "source=api' --",
        "driverNumber=1;--",
        "isValid<true",
        "sort=-flag",
        "lapNumber>5=6",
        "format=xml",
        "limit=50001",
        "format=csv&limit=50001",
    ],
)
def test_injection_strings_and_nonsense_in_list_parameters_are_400(timed: Sheet, query: str) -> None:
    answer = timed.api.get(f"/laps?runSheetId={timed.id}&{query}")
    assert answer.status_code == 400, answer.text
    assert set(answer.json()["error"]) >= {"code", "message", "field"}


def test_csv_export_opens_in_a_spreadsheet(timed: Sheet) -> None:
    answer = timed.api.get(
        f"/laps?runSheetId={timed.id}&format=csv&fields=lapNumber,lapTimeMs,tyreSet,custom,"
        "sectorTimesMs,isValid,recordedAt"
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert answer.headers["Content-Disposition"] == 'attachment; filename="laps.csv"'
    assert answer.content.count(b"\r\n") == 11 and "X-Next-Cursor" not in answer.headers
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8"), newline="")))
    assert rows[0] == ["lapNumber", "lapTimeMs", "tyreSet", "custom", "sectorTimesMs", "isValid", "recordedAt"]
    assert rows[1] == ["1", "99999", "S", "{}", "[30000,40000,29999]", "true", "2026-03-14T10:01:00Z"]
    assert rows[3][2] == "'=HYPERLINK(x)"  # a spreadsheet shows it, never runs it
    assert json.loads(rows[4][3]) == {"note": 'a, "quoted" note'}


def test_csv_pages_continue_with_the_next_cursor(timed: Sheet) -> None:
    first = timed.api.get(f"/laps?runSheetId={timed.id}&format=csv&limit=4&sort=-lapTimeMs&fields=lapNumber")
    cursor = first.headers["X-Next-Cursor"]
    # A browser on another origin may read it (the web client's CSV export pages with it).
    assert "X-Next-Cursor" in first.headers["Access-Control-Expose-Headers"].split(",")
    second = timed.api.get(
        f"/laps?runSheetId={timed.id}&format=csv&limit=50000&sort=-lapTimeMs&fields=lapNumber&cursor={cursor}"
    )
    numbers = [
        int(r[0])
        for r in list(csv.reader(io.StringIO(first.text)))[1:] + list(csv.reader(io.StringIO(second.text)))[1:]
    ]
    assert numbers == list(range(1, 11))  # slowest first


def test_sessions_list_as_csv_and_with_comparisons(jamie: Api) -> None:
    answer = jamie.get("/sessions?format=csv&sort=name&fields=name,type")
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert answer.status_code == 200 and rows[0] == ["name", "type"]
    assert sorted(rows[1:]) == sorted([s["name"], s["type"]] for s in jamie.get("/sessions?limit=500").json()["items"])
    later = ok(jamie.get("/sessions?startsAt>=2026-03-21T00:00:00Z&fields=name"))["items"]
    assert later == [{"name": "Race"}]
    assert jamie.get("/sessions?type=lunch").status_code == 400


# ---- stats ---------------------------------------------------------------------------------------


def test_stats_of_a_hand_made_run_sheet(team: Sheet) -> None:
    d1, d2 = team.driver_ids
    laps = [
        lap(team, 1, 90_000, stint=1, driverId=d1),  # lap 1: never counts (fastest raw)
        lap(team, 2, 100_000, stint=1, driverId=d1, sectorTimesMs=[30_000, 40_000, 30_000]),
        lap(team, 3, 101_000, stint=1, driverId=d1, sectorTimesMs=[29_500, 41_000, 30_500]),
        lap(team, 4, 102_000, stint=1, driverId=d1, sectorTimesMs=[30_500, 41_500, 30_000]),
        lap(team, 5, 99_000, stint=1, driverId=d1, isValid=False),  # invalid (track limits)
        lap(team, 6, 130_000, stint=1, driverId=d1, isInLap=True),
        lap(team, 7, 140_000, stint=2, driverId=d2, isOutLap=True),
        lap(team, 8, 103_000, stint=2, driverId=d2, sectorTimesMs=[31_000, 39_500, 32_500]),
        lap(team, 9, 103_500, stint=2, driverId=d2, sectorTimesMs=[31_000, 40_000, 32_500]),
    ]
    ok(team.api.post("/laps", {"laps": laps}), 201)
    stats = ok(team.api.get(f"/run-sheets/{team.id}/stats"))
    assert (stats["laps"], stats["countingLaps"]) == (9, 5)
    assert (stats["bestLap"]["lapNumber"], stats["bestLap"]["lapTimeMs"], stats["bestLap"]["basis"]) == (
        2,
        100_000,
        "computed",
    )
    assert stats["theoreticalBestMs"] == 29_500 + 39_500 + 30_000
    assert [(s["sector"], s["ms"], s["lapNumber"]) for s in stats["bestSectors"]] == [
        (1, 29_500, 3),
        (2, 39_500, 8),
        (3, 30_000, 2),
    ]
    one, two = stats["stints"]
    assert (one["stint"], one["laps"], one["countingLaps"], one["averageLapMs"], one["degradationMsPerLap"]) == (
        1,
        6,
        3,
        101_000.0,
        1000.0,
    )
    assert (two["stint"], two["countingLaps"], two["averageLapMs"], two["degradationMsPerLap"]) == (
        2,
        2,
        103_250.0,
        None,
    )
    assert not stats["stintsInferred"] and one["driverIds"] == [d1]
    drivers = {d["driverId"]: d for d in stats["drivers"]}
    assert (drivers[d1]["laps"], drivers[d1]["bestLapMs"], drivers[d2]["averageLapMs"]) == (6, 100_000, 103_250.0)


def test_stats_prefer_the_officials_best_lap_when_timing_marked_one(team: Sheet) -> None:
    ok(
        team.api.post(
            "/laps",
            {
                "laps": [
                    lap(team, 1),
                    lap(team, 2, 98_000),
                    lap(team, 3, 99_000, custom={"officialBest": True}),
                    lap(team, 4, 130_000, isInLap=True),
                ]
            },
        ),
        201,
    )
    stats = ok(team.api.get(f"/run-sheets/{team.id}/stats"))
    assert (stats["bestLap"]["lapNumber"], stats["bestLap"]["basis"]) == (3, "official")
    assert stats["stintsInferred"] and [s["laps"] for s in stats["stints"]] == [4]


def test_stats_of_the_seeded_run_sheets_match_the_stored_laps(stack: Stack, jamie: Api, alex: Api) -> None:
    for sheet in jamie.get("/run-sheets").json()["items"]:
        stats = ok(jamie.get(f"/run-sheets/{sheet['id']}/stats"))
        laps = all_laps(jamie, f"runSheetId={sheet['id']}")
        counting = [x for x in laps if x["isValid"] and not x["isInLap"] and not x["isOutLap"] and x["lapNumber"] != 1]
        best = min(counting, key=lambda x: (x["lapTimeMs"], x["lapNumber"]))
        assert (stats["laps"], stats["countingLaps"]) == (len(laps), len(counting))
        assert (stats["bestLap"]["id"], stats["bestLap"]["basis"]) == (best["id"], "computed")
        assert stats["theoreticalBestMs"] == sum(min(x["sectorTimesMs"][i] for x in counting) for i in range(3))
        for stint in stats["stints"]:
            mine = [x for x in counting if x["stint"] == stint["stint"]]
            if not mine:
                assert stint["averageLapMs"] is None and stint["degradationMsPerLap"] is None
                continue
            assert stint["averageLapMs"] == round(sum(x["lapTimeMs"] for x in mine) / len(mine), 1)
            if len(mine) >= 3:
                n = len(mine)
                mx, my = sum(x["lapNumber"] for x in mine) / n, sum(x["lapTimeMs"] for x in mine) / n
                slope = sum((x["lapNumber"] - mx) * (x["lapTimeMs"] - my) for x in mine) / sum(
                    (x["lapNumber"] - mx) ** 2 for x in mine
                )
                assert stint["degradationMsPerLap"] == round(slope, 2)
        assert alex.get(f"/run-sheets/{sheet['id']}/stats").status_code == 404
