"""The integrator's side of webhooks, against real deliveries from the stack (outbox -> SQS -> worker):
- examples/webhook-receivers/ (Python and JavaScript) verify both signatures, deduplicate on webhook-id
  and refuse a forged request;
- every event type of the catalog (/openapi.json `webhooks`, the docs' event catalog) has a schema that
  a real delivery's payload satisfies and an example with the same fields.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from infra.local.ports import free_port
from infra.local.sqs_poller import SqsPoller
from tests.integration.conftest import Stack, cold_start_with
from tests.integration.test_webhooks import FAST_POLICY, Team, drive

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "webhook-receivers"


@pytest.fixture
def worker(stack: Stack) -> SqsPoller:
    from app import app
    from chalicelib.resources import WEBHOOK_QUEUE

    sqs = boto3.client("sqs", endpoint_url=stack.aws_endpoint_url, region_name="us-east-1")
    return SqsPoller(app, sqs, wait_time_s=0, only={WEBHOOK_QUEUE.name})


class Running:
    """A receiver example as a process; `lines` are the JSON lines it printed."""

    def __init__(self, command: list[str], secret: str, port: int) -> None:
        env = {**os.environ, "WEBHOOK_SECRET": secret, "PORT": str(port), "HOST": "127.0.0.1"}
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()
        assert "listening" in self.next(), self.process.stderr.read() if self.process.stderr else ""

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def next(self, timeout_s: float = 20) -> dict[str, Any]:
        line = self.lines.get(timeout=timeout_s)
        self.seen.append(line)
        return line

    def wait_for(self, key: str, value: str) -> None:
        while not any(line.get(key) == value for line in self.seen):
            self.next()

    def stop(self) -> str:
        self.process.terminate()
        _, err = self.process.communicate(timeout=10)
        return err


RECEIVERS = {
    "python": [sys.executable, str(EXAMPLES / "receiver.py")],
    "javascript": ["node", str(EXAMPLES / "receiver.mjs")],
}


@pytest.mark.parametrize("language", sorted(RECEIVERS))
def test_the_receiver_example_verifies_dedupes_and_refuses_forgeries(
    stack: Stack, worker: SqsPoller, language: str
) -> None:
    if language == "javascript" and shutil.which("node") is None:
        pytest.fail("node is needed to run examples/webhook-receivers/receiver.mjs")
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks/race"
    team = Team(stack)
    # OUTBOUND_ALLOW: the loopback receiver is let through where outbound calls refuse loopback.
    with cold_start_with(**FAST_POLICY, OUTBOUND_ALLOW=f"127.0.0.1:{port}"):
        hook = team.subscribe(url)
        receiver = Running(RECEIVERS[language], hook["secret"], port)
        try:
            created = team.write_event("Daytona 24")
            team.ok(team.api.call("PATCH", f"/events/{created['id']}", {"track": "Daytona"}))
            drive(worker, lambda: len(_succeeded(team, hook["id"])) == 2, "two deliveries to succeed")
            delivered = _succeeded(team, hook["id"])
            for item in delivered:
                receiver.wait_for("accepted", item["id"])
            receiver.wait_for("processed", "event.update")
            # A replay repeats the webhook-id: the receiver answers 2xx and does not process it again.
            replayed = delivered[0]["id"]
            team.ok(team.api.post(f"/webhooks/{hook['id']}/deliveries/{replayed}/replay"), 202)
            drive(worker, lambda: any(line.get("duplicate") == replayed for line in _drain(receiver)), "the replay")
            assert team.delivery(hook["id"], replayed)["attemptLog"][-1]["statusCode"] == 204
            # A forged request (right body, wrong secret) and a stale one are refused.
            payload = json.dumps(team.delivery(hook["id"], replayed)["payload"], separators=(",", ":"))
            forged = _signed(payload, "whsec_" + "A" * 48, time.time())
            stale = _signed(payload, hook["secret"], time.time() - 3600)
            for headers in (forged, stale):
                answer = requests.post(url, data=payload.encode(), headers=headers, timeout=10)
                assert answer.status_code == 401
        finally:
            stderr = receiver.stop()
    assert stderr == "", stderr  # a warning the example prints is a failure
    accepted = [line["accepted"] for line in receiver.seen if "accepted" in line]
    assert sorted(accepted) == sorted(item["id"] for item in delivered)  # each exactly once
    assert len([line for line in _drain(receiver) if "refused" in line]) == 2


def _succeeded(team: Team, webhook_id: str) -> list[dict[str, Any]]:
    return [d for d in team.deliveries(webhook_id) if d["status"] == "succeeded"]


def _drain(receiver: Running) -> list[dict[str, Any]]:
    while True:
        try:
            receiver.seen.append(receiver.lines.get_nowait())
        except queue.Empty:
            return receiver.seen


def _signed(payload: str, secret: str, at_s: float) -> dict[str, str]:
    from chalicelib.webhooks import signing

    delivery_id = str(uuid.uuid4())
    return signing.headers(
        delivery_id=delivery_id, event_type="event.create", body=payload, secrets_=[secret], timestamp_s=int(at_s)
    )


@pytest.fixture
def hooked_team(stack: Stack) -> Iterator[tuple[Team, dict[str, Any]]]:
    team = Team(stack)
    yield team, team.subscribe("http://127.0.0.1:9/never-sent")  # payloads are read back, not received


def test_every_event_type_in_the_catalog_matches_a_real_delivery(hooked_team: tuple[Team, dict[str, Any]]) -> None:
    from jsonschema import Draft202012Validator, FormatChecker
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    from app import app
    from chalicelib.api.openapi import document
    from chalicelib.api.webhook_events import catalog

    team, hook = hooked_team
    _every_kind_of_write(team, hook["id"])
    spec = document(app.routes)
    registry = Registry().with_resource("urn:spec", Resource(contents=spec, specification=DRAFT202012))
    payloads: dict[str, dict[str, Any]] = {}
    for item in team.deliveries(hook["id"]):
        payloads.setdefault(item["eventType"], team.delivery(hook["id"], item["id"])["payload"])
    optional = {event.type: event.optional for event in catalog()}
    unchecked = []
    for event_type, described in spec["webhooks"].items():
        real = payloads.get(event_type)
        if real is None:
            unchecked.append(event_type)
            continue
        body = described["post"]["requestBody"]["content"]["application/json"]
        text = json.dumps(body["schema"]).replace('"#/components/', '"urn:spec#/components/')
        validator = Draft202012Validator(json.loads(text), registry=registry, format_checker=FormatChecker())
        problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(real)]
        assert problems == [], f"{event_type}: {problems}"
        assert set(real) == set(body["example"]), event_type
        assert set(real["data"]) - optional[event_type] == set(body["example"]["data"]), event_type
    assert unchecked == [], "event types no real delivery was checked against"


def _finish_import(team: Team, session_id: str, import_id: str) -> None:
    """Run the timing-import queue's handler until the import is done (its end is timing_import.update)."""
    from app import app
    from chalicelib.resources import TIMING_IMPORT_QUEUE

    sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    worker = SqsPoller(app, sqs, wait_time_s=0, only={TIMING_IMPORT_QUEUE.name})
    path = f"/sessions/{session_id}/timing-imports/{import_id}"
    drive(worker, lambda: team.ok(team.api.get(path))["status"] != "running", "the timing import to finish")


def _remove_a_member_with_a_key(team: Team) -> None:
    """An admin who made an API key is removed: api_key.delete (creator_removed) and member.delete."""
    import psycopg

    from chalicelib.domain.passwords import hash_password
    from tests.integration.conftest import PASSWORD, Api, token_for

    email = f"admin-{uuid.uuid4().hex[:8]}@example.test"
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        row = conn.execute(
            "INSERT INTO users (email, name, password_hash) VALUES (%s, 'Key Maker', %s) RETURNING id",
            (email, hash_password(PASSWORD)),
        ).fetchone()
        assert row is not None
        conn.execute(
            "INSERT INTO memberships (account_id, user_id, role) VALUES (%s, %s, 'admin')", (team.account_id, row[0])
        )
    admin = Api(team.api.base_url, token_for(email))
    assert admin.post("/api-keys", {"name": "pit wall"}).status_code == 201
    removed = team.api.delete(f"/members/{row[0]}")
    assert removed.status_code in (200, 204), removed.text


def _every_kind_of_write(team: Team, webhook_id: str) -> None:
    api = team.api

    def made(method: str, path: str, body: Any = None, status: int = 200) -> Any:
        return team.ok(api.call(method, path, body), status)

    event = made("POST", "/events", {"name": "Catalog 6 Hours"}, 201)
    made("PATCH", f"/events/{event['id']}", {"track": "Spa"})
    session = made("POST", "/sessions", {"eventId": event["id"], "name": "Race", "type": "race"}, 201)
    made("PATCH", f"/sessions/{session['id']}", {"name": "Race 1"})
    car = made("POST", "/cars", {"eventId": event["id"], "number": "7"}, 201)
    made("PATCH", f"/cars/{car['id']}", {"team": "Catalog Racing"})
    driver = made("POST", "/drivers", {"name": "Ana Lopez"}, 201)
    made("PATCH", f"/drivers/{driver['id']}", {"name": "Ana López"})
    sheet = made("POST", "/run-sheets", {"sessionId": session["id"], "carId": car["id"]}, 201)
    made("PATCH", f"/run-sheets/{sheet['id']}", {"engineerNotes": "long run"})
    lap = made("POST", "/laps", {"runSheetId": sheet["id"], "lapNumber": 1, "lapTimeMs": 120000}, 201)
    made("PATCH", f"/laps/{lap['id']}", {"lapTimeMs": 119000})
    made("DELETE", f"/laps/{lap['id']}")
    setup = made("POST", "/setups", {"carId": car["id"], "name": "Low downforce"}, 201)
    made("PATCH", f"/setups/{setup['id']}", {"name": "Low downforce B"})
    issue = made("POST", "/issues", {"carId": car["id"], "title": "Brake vibration"}, 201)
    made("PATCH", f"/issues/{issue['id']}", {"title": "Brake vibration, front left"})
    card = made("POST", "/board-cards", {"title": "Check tyre pressures"}, 201)
    made("PATCH", f"/board-cards/{card['id']}", {"title": "Check tyre pressures (hot)"})
    made("PUT", f"/events/{event['id']}/strategy", {"stints": []})
    file = b"lap,temp\n1,92\n"
    attachment = made(
        "POST",
        f"/run-sheets/{sheet['id']}/attachments",
        {"fileName": "temps.csv", "contentType": "text/csv", "sizeBytes": len(file)},
        201,
    )
    put = requests.put(attachment["uploadUrl"], data=file, headers=attachment["uploadHeaders"], timeout=30)
    assert put.status_code == 200, put.text
    made("POST", f"/attachments/{attachment['id']}/complete")
    made("DELETE", f"/attachments/{attachment['id']}", None, 204)
    member = made("POST", "/members", {"email": f"new-{uuid.uuid4().hex[:8]}@example.test", "role": "viewer"}, 201)
    made("PATCH", f"/members/{member['id']}", {"role": "engineer"})
    made("DELETE", f"/members/{member['id']}")
    _remove_a_member_with_a_key(team)
    csv = "NUMBER;DRIVER_NUMBER;LAP_NUMBER;LAP_TIME\n7;1;1;2:00.000\n"
    imported = api.call(
        "POST",
        f"/sessions/{session['id']}/timing-imports",
        None,
        data=csv.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert imported.status_code == 202, imported.text
    _finish_import(team, session["id"], imported.json()["id"])
    made("POST", f"/webhooks/{webhook_id}/test", None, 202)
    for path, row in (("/board-cards", card), ("/issues", issue), ("/setups", setup), ("/drivers", driver)):
        made("DELETE", f"{path}/{row['id']}")
    for path, row in (("/run-sheets", sheet), ("/cars", car), ("/sessions", session), ("/events", event)):
        made("DELETE", f"{path}/{row['id']}?cascade=true")
