"""Timing imports end to end: HTTP in, the SQS worker (local poller), laps out, the room told."""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
import requests
from websockets.sync.client import connect

from chalicelib.domain.records import LAPS
from infra.local.sqs_poller import SqsPoller
from tests.integration.conftest import TIMING_DATA, Api, Stack, new_account, token_for

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures/timing"
BASE = (FIXTURES / "indy_style_race.CSV").read_bytes()
LONGER = (FIXTURES / "indy_style_race_longer.CSV").read_bytes()
CSV = {"Content-Type": "text/csv"}
DEADLINE_S = 60.0
SESSION_START = "2025-11-16T13:00:00Z"


class Weekend:
    """A fresh account (owner) with an event and its race session."""

    def __init__(self, stack: Stack) -> None:
        email, self.account_id = new_account("owner")
        self.api = Api(stack.api_url, token_for(email))
        self.stack = stack
        self.event = ok(self.api.post("/events", {"name": "Indianapolis", "track": "IMS"}))
        self.session = ok(
            self.api.post(
                "/sessions", {"eventId": self.event["id"], "name": "Race 1", "type": "race", "startsAt": SESSION_START}
            )
        )
        self.path = f"/sessions/{self.session['id']}/timing-imports"

    def post_csv(self, data: bytes, query: str = "") -> requests.Response:
        return self.api.call("POST", self.path + query, data=data, headers=CSV)

    def import_file(self, data: bytes, query: str = "") -> dict[str, Any]:
        answer = self.post_csv(data, query)
        assert answer.status_code == 202, answer.text
        assert answer.json()["status"] == "running"
        return run_worker(self.api, self.path, answer.json()["id"])

    def laps(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = ""
        while True:
            page = ok(self.api.get(f"/laps?sessionId={self.session['id']}&limit=500{cursor}"))
            items += page["items"]
            if not page["nextCursor"]:
                return items
            cursor = f"&cursor={page['nextCursor']}"

    def cars(self) -> dict[str, dict[str, Any]]:
        return {car["number"]: car for car in ok(self.api.get(f"/cars?eventId={self.event['id']}"))["items"]}

    def events(self) -> collections.Counter[str]:
        with psycopg.connect(self.stack.database_url) as conn:
            rows = conn.execute("SELECT type FROM domain_events WHERE account_id = %s", (self.account_id,))
            return collections.Counter(row[0] for row in rows)


def ok(answer: requests.Response) -> Any:
    assert answer.status_code in (200, 201, 202), answer.text
    return answer.json()


def poller() -> SqsPoller:
    from app import app

    sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    from chalicelib.resources import TIMING_IMPORT_QUEUE

    # Only the timing queue: webhook deliveries other tests left behind must not compete for the worker.
    return SqsPoller(app, sqs, wait_time_s=0, only={TIMING_IMPORT_QUEUE.name})


def run_worker(api: Api, path: str, import_id: str) -> dict[str, Any]:
    """Deliver queued messages to the worker until the import has finished; its final state."""
    worker = poller()
    deadline = time.monotonic() + DEADLINE_S
    while True:
        state = ok(api.get(f"{path}/{import_id}"))
        if state["status"] != "running":
            return state  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"import {import_id} still running: {state}"
        worker.poll_once()


@pytest.fixture(autouse=True, scope="module")
def _drained_timing_queue(stack: Any) -> None:
    """Imports other test modules queued (the permissions matrix makes dozens) would keep this module's
    worker busy past its deadlines: start from an empty queue."""
    from chalicelib.resources import TIMING_IMPORT_QUEUE

    sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    sqs.purge_queue(QueueUrl=sqs.get_queue_url(QueueName=TIMING_IMPORT_QUEUE.name)["QueueUrl"])


@pytest.fixture()
def weekend(stack: Stack) -> Weekend:
    return Weekend(stack)


def test_import_creates_cars_run_sheets_and_laps_and_reports_rejected_lines(weekend: Weekend) -> None:
    done = weekend.import_file(BASE)
    assert done["status"] == "done" and done["error"] is None and done["finishedAt"]
    assert (done["rowsRead"], done["lapsCreated"], done["lapsUpdated"]) == (25, 18, 0)
    assert (done["carsCreated"], done["runSheetsCreated"], done["rowsRejectedCount"]) == (4, 4, 7)
    assert [r["line"] for r in done["rowsRejected"]] == [8, 16, 17, 24, 25, 26, 27]
    assert done["rowsRejected"][0]["reason"] == "LAP_TIME '1:4x.123' is not a time (m:ss.fff or h:mm:ss.fff)"

    cars = weekend.cars()
    assert set(cars) == {"3", "03", "21", "021"}  # "3" and "03" are different cars
    assert cars["03"]["team"] == "Speed; Syndicate Motorsports" and cars["021"]["team"] == "Équipe Vitesse"
    assert all(car["class"] == "Am" and car["isCompetitor"] for car in cars.values())

    laps = {(lap["carId"], lap["lapNumber"]): lap for lap in weekend.laps()}
    assert len(laps) == 18
    car3 = cars["3"]["id"]
    assert all(lap["source"] == "timing" and lap["isValid"] and lap["driverNumber"] == "1" for lap in laps.values())
    assert laps[(car3, 1)]["lapTimeMs"] == 106_900 and laps[(car3, 1)]["sectorTimesMs"] == [35_277, 34_208, 37_415]
    assert [(laps[(car3, n)]["isInLap"], laps[(car3, n)]["isOutLap"]) for n in range(1, 7)] == [
        (False, True),
        (False, False),
        (False, False),
        (False, False),
        (True, False),
        (False, True),
    ]
    assert laps[(car3, 6)]["pitTimeMs"] == 67_389 and laps[(car3, 4)]["flag"] == "FCY"
    assert laps[(cars["021"]["id"], 3)]["lapTimeMs"] == 3_723_456
    best = {(lap["carId"], lap["lapNumber"]) for lap in laps.values() if lap["custom"]["officialBest"]}
    assert best == {(car3, 3), (cars["03"]["id"], 5), (cars["021"]["id"], 2)}  # car 21 ran lap 1 only
    assert laps[(car3, 3)]["custom"]["lapImprovement"] == 2
    recorded = dt.datetime.fromisoformat(laps[(car3, 2)]["recordedAt"].replace("Z", "+00:00"))
    assert recorded == dt.datetime(2025, 11, 16, 13, 3, 35, tzinfo=dt.UTC)  # start + ELAPSED 3:35.000

    sheets = ok(weekend.api.get(f"/run-sheets?sessionId={weekend.session['id']}"))["items"]
    assert {sheet["carId"] for sheet in sheets} == {car["id"] for car in cars.values()}
    events = weekend.events()
    assert events["lap.create"] == 18 and events["car.create"] == 4 and events["run_sheet.create"] == 4
    assert events["timing_import.create"] == 1 and events["timing_import.update"] == 1
    listed = ok(weekend.api.get(weekend.path))
    assert [item["id"] for item in listed["items"]] == [done["id"]] and listed["nextCursor"] is None


def test_reimports_add_only_what_is_new_and_update_only_what_changed(weekend: Weekend) -> None:
    assert weekend.import_file(BASE)["lapsCreated"] == 18
    again = weekend.import_file(BASE)
    assert (again["lapsCreated"], again["lapsUpdated"], again["lapsUnchanged"], again["carsCreated"]) == (0, 0, 18, 0)

    longer = weekend.import_file(LONGER)
    assert (longer["rowsRead"], longer["lapsCreated"], longer["lapsUpdated"]) == (29, 4, 0)
    assert len(weekend.laps()) == 22

    # The team's own data on a lap survives the officials correcting its time.
    car3 = weekend.cars()["3"]["id"]
    with psycopg.connect(weekend.stack.database_url) as conn:
        conn.execute(
            "UPDATE laps SET is_valid = false, stint = 2, custom = custom || '{\"tyrePsi\": 27.5}' "
            "WHERE car_id = %s AND lap_number = 4",
            (car3,),
        )
    before = weekend.events()
    corrected = weekend.import_file(LONGER.replace(b"3;1;4;1:49.000;", b"3;1;4;1:49.123;"))
    assert (corrected["lapsCreated"], corrected["lapsUpdated"]) == (0, 1)
    lap4 = next(lap for lap in weekend.laps() if lap["carId"] == car3 and lap["lapNumber"] == 4)
    assert lap4["lapTimeMs"] == 109_123 and not lap4["isValid"] and lap4["stint"] == 2
    assert lap4["custom"]["tyrePsi"] == 27.5 and lap4["custom"]["officialBest"] is False
    after = weekend.events()
    assert after["lap.update"] - before["lap.update"] == 1 and after["lap.create"] == before["lap.create"]


def test_lap_events_carry_each_lap_exactly_as_the_api_renders_it(weekend: Weekend) -> None:
    """The upsert renders the event data in SQL (timing_upsert_laps); it must stay LAPS.to_wire's."""
    weekend.import_file(BASE)
    car3 = weekend.cars()["3"]["id"]
    with psycopg.connect(weekend.stack.database_url) as conn:  # team data of every kind a lap carries
        driver_id = conn.execute(
            "INSERT INTO drivers (account_id, car_id, name, number) VALUES (%s, %s, 'Karl', '1') RETURNING id",
            (weekend.account_id, car3),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "UPDATE laps SET fuel_l = 45.00, stint = 2, tyre_set = 'S1', driver_id = %s, "
            "custom = custom || '{\"tyrePsi\": 27.0}' WHERE car_id = %s AND lap_number = 4",
            (driver_id, car3),
        )
        conn.execute("UPDATE laps SET fuel_l = 12.5 WHERE car_id = %s AND lap_number = 5", (car3,))
    corrected = weekend.import_file(
        BASE.replace(b"3;1;4;1:49.000;", b"3;1;4;1:49.123;").replace(b"3;1;5;2:10.364;", b"3;1;5;2:10.365;")
    )
    assert corrected["lapsUpdated"] == 2
    with psycopg.connect(weekend.stack.database_url) as conn:
        rows = conn.execute(
            "SELECT DISTINCT ON (entity_id) entity_id::text, data::text FROM domain_events "
            "WHERE account_id = %s AND entity = 'lap' ORDER BY entity_id, id DESC",
            (weekend.account_id,),
        ).fetchall()
    latest = {entity_id: json.loads(data) for entity_id, data in rows}
    laps = weekend.laps()
    assert len(latest) == len(laps) == 18
    for lap in laps:  # sort_keys: the stored jsonb has its own key order; 45.0 and 45 still differ
        assert json.dumps(latest[lap["id"]], sort_keys=True) == json.dumps(lap, sort_keys=True)
    lap4 = next(lap for lap in laps if lap["carId"] == car3 and lap["lapNumber"] == 4)
    assert lap4["fuelL"] == 45.0 and isinstance(lap4["fuelL"], float) and lap4["driverId"] == str(driver_id)


def test_only_known_cars_keeps_the_events_entries(weekend: Weekend) -> None:
    ok(weekend.api.post("/cars", {"eventId": weekend.event["id"], "number": "03", "class": "GTD"}))
    done = weekend.import_file(BASE, "?onlyKnownCars=true")
    assert (done["lapsCreated"], done["carsCreated"], done["runSheetsCreated"], done["rowsSkipped"]) == (6, 0, 1, 12)
    assert done["carsSkipped"] == ["3", "21", "021"]
    cars = weekend.cars()
    assert set(cars) == {"03"} and cars["03"]["class"] == "GTD"  # the entry is not rewritten
    assert {lap["carId"] for lap in weekend.laps()} == {cars["03"]["id"]}


def test_another_accounts_session_and_import_answer_404_and_viewers_403(
    stack: Stack, weekend: Weekend, alex: Api
) -> None:
    import_id = ok(weekend.post_csv(BASE))["id"]
    run_worker(weekend.api, weekend.path, import_id)
    assert alex.call("POST", weekend.path, data=BASE, headers=CSV).status_code == 404
    assert alex.get(weekend.path).status_code == 404
    assert alex.get(f"{weekend.path}/{import_id}").status_code == 404
    assert alex.post(weekend.path + "/upload-url").status_code == 404
    assert weekend.api.get(f"{weekend.path}/{uuid.uuid4()}").status_code == 404
    assert weekend.api.get(f"{weekend.path}/not-a-uuid").status_code == 400
    email = f"viewer-{uuid.uuid4().hex[:8]}@example.test"
    with psycopg.connect(stack.database_url) as conn:
        user_id = conn.execute(
            "INSERT INTO users (email, name) VALUES (%s, 'Viewer') RETURNING id", (email,)
        ).fetchone()[0]  # type: ignore[index]
        conn.execute("INSERT INTO memberships VALUES (%s, %s, 'viewer')", (weekend.account_id, user_id))
    viewer = Api(stack.api_url, token_for(email))
    assert viewer.call("POST", weekend.path, data=BASE, headers=CSV).status_code == 403
    assert viewer.post(weekend.path + "/upload-url").status_code == 403
    assert ok(viewer.get(f"{weekend.path}/{import_id}"))["status"] == "done"


def test_bad_requests_change_nothing(weekend: Weekend) -> None:
    too_big = weekend.post_csv(BASE + b"x" * (5 * 1024 * 1024))
    assert too_big.status_code == 413
    assert "upload-url" in too_big.json()["error"]["message"]
    wrong_type = weekend.api.call("POST", weekend.path, data=BASE, headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415 and wrong_type.json()["error"]["code"] == "unsupported_media_type"
    not_timing = weekend.post_csv(b"POSITION;NUMBER;STATUS\r\n1;55;Classified\r\n")
    assert not_timing.status_code == 400 and "LAP_NUMBER" in not_timing.json()["error"]["message"]
    assert weekend.post_csv(b"").status_code == 400
    assert weekend.post_csv(BASE, "?onlyKnownCars=yes").json()["error"]["field"] == "onlyKnownCars"
    assert weekend.post_csv(BASE, "?colour=red").json()["error"]["field"] == "colour"
    assert weekend.api.post(weekend.path, {"s3Key": "x", "extra": 1}).json()["error"]["field"] == "extra"
    assert weekend.api.post(weekend.path, {"s3Key": "../etc/passwd"}).status_code == 400
    assert weekend.api.post(weekend.path, {"s3Key": f"accounts/{uuid.uuid4()}/timing-uploads/x.csv"}).status_code == 404
    assert ok(weekend.api.get(weekend.path))["items"] == []
    assert weekend.events()["timing_import.create"] == 0


def test_presigned_upload_then_import(weekend: Weekend, alex: Api) -> None:
    upload = ok(weekend.api.post(weekend.path + "/upload-url"))
    assert upload["s3Key"].startswith(f"accounts/{weekend.account_id}/") and upload["expiresIn"] > 0
    missing = weekend.api.post(weekend.path, {"s3Key": upload["s3Key"]})
    assert missing.status_code == 404  # nothing uploaded yet
    put = requests.put(upload["url"], data=LONGER, headers={"Content-Type": "application/octet-stream"}, timeout=30)
    assert put.status_code == 200, put.text
    assert alex.post(weekend.path, {"s3Key": upload["s3Key"]}).status_code == 404  # not alex's session nor key
    started = weekend.api.post(weekend.path, {"s3Key": upload["s3Key"]})
    assert started.status_code == 202, started.text
    done = run_worker(weekend.api, weekend.path, started.json()["id"])
    assert (done["status"], done["lapsCreated"], done["sourceBytes"]) == ("done", 22, len(LONGER))


def test_redelivered_message_for_a_finished_import_does_nothing(weekend: Weekend) -> None:
    from chalicelib.timing import queue

    done = weekend.import_file(BASE)
    before = weekend.events()
    from chalicelib.config import settings

    queue.enqueue(done["id"], weekend.account_id)
    sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=settings().timing_import_queue)["QueueUrl"]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    worker = poller()
    deadline = time.monotonic() + DEADLINE_S
    while any(int(v) for v in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"].values()):
        assert time.monotonic() < deadline, "the redelivered message was never handled"
        worker.poll_once()
    assert ok(weekend.api.get(f"{weekend.path}/{done['id']}")) == done
    assert weekend.events() == before


def test_a_file_gone_from_the_bucket_fails_the_import_saying_why(weekend: Weekend) -> None:
    from chalicelib.config import settings

    started = ok(weekend.post_csv(BASE))
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    s3.delete_object(Bucket=settings().uploads_bucket, Key=started["s3Key"])
    failed = run_worker(weekend.api, weekend.path, started["id"])
    assert failed["status"] == "failed" and "no longer in the uploads bucket" in failed["error"]
    assert weekend.laps() == []


def test_the_session_room_hears_the_laps_and_the_finished_import(stack: Stack, weekend: Weekend) -> None:
    with connect(f"{stack.ws_url}/?token={weekend.api.token}") as ws:
        ws.send(json.dumps({"action": "join", "sessionId": weekend.session["id"]}))
        heard: collections.Counter[str] = collections.Counter()
        while json.loads(ws.recv(timeout=10))["type"] != "joined":
            pass
        done = weekend.import_file(BASE)
        lap_fields: list[str] = []
        while True:
            message = json.loads(ws.recv(timeout=10))
            heard[message["type"]] += 1
            if message["type"] == "lap.create":
                lap_fields = list(message["data"])
            if message["type"] == "timing_import.update":
                break
    assert heard["lap.create"] == 18 and heard["run_sheet.create"] == 4
    assert lap_fields == [field.name for field in LAPS.fields]  # a lap as the API renders it, in its order
    assert message["data"]["status"] == "done" and message["data"]["id"] == done["id"]
    assert message["data"]["lapsCreated"] == 18 and message["sessionId"] == weekend.session["id"]


GR_CUP = TIMING_DATA / "indianapolis_race1_23_AnalysisEnduranceWithSections_Race_1.CSV"
GR_CUP_BEST = TIMING_DATA / "indianapolis_race1_99_Best_10_Laps_By_Driver_Race_1.CSV"


@pytest.mark.skipif(
    not GR_CUP.exists() or not GR_CUP_BEST.exists(),
    reason=f"real GR Cup export absent under {TIMING_DATA} (set RACE_TIMING_DATA)",
)
def test_real_gr_cup_import_gives_the_official_best_lap_of_every_car(weekend: Weekend) -> None:
    done = weekend.import_file(GR_CUP.read_bytes())
    assert (done["rowsRead"], done["lapsCreated"], done["rowsRejectedCount"], done["carsCreated"]) == (669, 669, 0, 29)
    numbers = {car["id"]: number for number, car in weekend.cars().items()}
    best = {
        numbers[lap["carId"]]: (lap["lapTimeMs"], lap["lapNumber"])
        for lap in weekend.laps()
        if lap["custom"]["officialBest"]
    }
    lines = GR_CUP_BEST.read_bytes().decode("utf-8-sig").splitlines()
    names = [name.strip() for name in lines[0].split(";")]
    from chalicelib.timing.alkamel import duration_ms

    official = {}
    for line in lines[1:]:
        row = dict(zip(names, line.split(";"), strict=False))
        if row["BESTLAP_1"]:
            official[row["NUMBER"]] = (duration_ms(row["BESTLAP_1"]), int(row["BESTLAP_1_LAPNUM"]))
    assert best == official  # car 31's faster lap 1 is not its best; car 86 (one lap) has none
    # A bulk import records every lap event (outbox) but pushes one summary to the room instead.
    assert weekend.events()["lap.create"] == 669
    # The room publisher runs after the commit (room queue): give it time, then nothing is left.
    deadline = time.monotonic() + 60
    while True:
        with psycopg.connect(weekend.stack.database_url) as conn:
            unpublished = conn.execute(
                "SELECT count(*) FROM domain_events WHERE account_id = %s AND published_at IS NULL",
                (weekend.account_id,),
            ).fetchone()
        if unpublished == (0,) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert unpublished == (0,)
