"""Schemathesis against the running local stack: every operation of /openapi.json, authenticated.

The document is the one GET /openapi.json serves (checked below), built from the route table at
collection time: schemathesis' lazy `from_fixture` loader writes `Node._nodeid`, which pytest 9.2
no longer has. Requests go over HTTP to the `stack` fixture as a fresh owner account; positive
cases that name a resource by id get, half the time, the id of a real row of that account (made
here through the API) so that reads and writes get past the 404 and reach the database.
"""

from __future__ import annotations

import json
import os
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis

from app import app
from chalicelib.api.openapi import document
from tests.integration.conftest import CONFIRM_ROUTE, Stack, mailed_token, new_account, token_for

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
# Webhook URLs are checked but not fetched at create time; deliveries go where they point, and the
# only address a test may send to is this machine's: whatever http(s) URL is generated, this one is sent.
SAFE_WEBHOOK_URL = "http://127.0.0.1:9/schemathesis"
PLUGIN = Path(__file__).resolve().parents[2] / "examples/plugins/fuel-per-lap"

schema = schemathesis.openapi.from_dict(document(app.routes))
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True, database="none")
# positive_data_acceptance wants every schema-valid request to succeed. Some of our rules are not
# JSON Schema: endsAt not before startsAt, a run sheet's car in its session's event, cursors only as
# handed out, sectors adding up to the lap time. Those answer 400 by design (documented), so the
# check would fail on correct behaviour; every other check runs (5xx, response schema, status codes,
# content types, headers, negative data rejected, undeclared methods, auth not ignored, ...).
schema.config.checks.update(excluded_check_names=["positive_data_acceptance"])


def _seed(api_url: str, headers: dict[str, str]) -> dict[str, str]:
    """One row of each resource in the fuzzed account: path prefix -> id."""
    http = requests.Session()
    http.headers.update(headers)

    def post(path: str, body: Any) -> dict[str, Any]:
        response = http.post(api_url + path, json=body, timeout=30)
        assert response.status_code in (200, 201, 202), (path, response.status_code, response.text)
        return dict(response.json())

    event = post("/events", {"name": "Fuzz 6 Hours", "startsAt": "2026-05-01T10:00:00Z"})["id"]
    session = post("/sessions", {"eventId": event, "name": "FP1", "type": "practice"})["id"]
    car = post("/cars", {"eventId": event, "number": "7"})["id"]
    sheet = post("/run-sheets", {"sessionId": session, "carId": car})["id"]
    manifest = json.loads((PLUGIN / "plugin.json").read_text())
    post("/plugins", {"manifest": manifest, "bundle": (PLUGIN / "dist/plugin.js").read_text()})
    return {
        "/events": event,
        "/sessions": session,
        "/cars": car,
        "/run-sheets": sheet,
        "/drivers": post("/drivers", {"name": "Alex Fuzz", "carId": car})["id"],
        "/setups": post("/setups", {"carId": car, "name": "Baseline"})["id"],
        "/issues": post("/issues", {"carId": car, "title": "Vibration"})["id"],
        "/board-cards": post("/board-cards", {"title": "Check brakes", "sessionId": session})["id"],
        "/laps": post("/laps", {"runSheetId": sheet, "lapNumber": 1, "lapTimeMs": 95_000})["id"],
        "/webhooks": post("/webhooks", {"url": SAFE_WEBHOOK_URL, "enabled": False})["id"],
        "/plugins": manifest["id"],
    }


@pytest.fixture(scope="module")
def target(stack: Stack) -> dict[str, Any]:
    email, _ = new_account("owner")
    headers = {"Authorization": f"Bearer {token_for(email)}"}
    return {"base_url": stack.api_url, "headers": headers, "rows": _seed(stack.api_url, headers)}


# No operation is excluded. The destructive ones cannot hurt the run: DELETEs are never aimed at the
# seeded rows (random ids: 404), the caller's own membership is never aimed at (and the last owner
# cannot be removed or demoted), a password change needs the current password, the seeded webhook is
# disabled and points at a closed loopback port, and logins/sign-ups seldom get past validation to
# the per-address rate limits that other tests' logins share.
PARENT_FIELDS = {
    "eventId": "/events",
    "sessionId": "/sessions",
    "carId": "/cars",
    "runSheetId": "/run-sheets",
    "driverId": "/drivers",
}


def _aim(case: Any, rows: dict[str, str]) -> None:
    """Point half of the positive cases at real rows: the path's id (never a DELETE's: it would take
    the row from the cases after it) and the parents a body names."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    if zlib.crc32(repr((case.path_parameters, case.body)).encode()) % 2:
        return
    prefix = "/" + case.path.split("/")[1]
    if case.method != "DELETE" and prefix in rows and "id" in (case.path_parameters or {}):
        case.path_parameters["id"] = rows[prefix]
    if isinstance(case.body, dict):
        for name, parent in PARENT_FIELDS.items():
            if isinstance(case.body.get(name), str):
                case.body[name] = rows[parent]


@pytest.mark.integration
@schema.parametrize()
def test_every_operation(case: Any, target: dict[str, Any]) -> None:
    body = case.body
    if (
        case.path.startswith("/webhooks")
        and isinstance(body, dict)
        and isinstance(body.get("url"), str)
        and body["url"].lower().startswith(("http:", "https:"))
    ):
        body["url"] = SAFE_WEBHOOK_URL
    _aim(case, target["rows"])
    case.call_and_validate(base_url=target["base_url"], headers=target["headers"], timeout=30)


@pytest.mark.integration
def test_the_fuzzed_document_is_the_one_served(stack: Stack) -> None:
    served = requests.get(stack.api_url + "/openapi.json", timeout=30)
    assert served.status_code == 200
    assert served.json() == document(app.routes)


@pytest.mark.integration
def test_null_is_the_default_on_create_and_clears_only_nullable_fields(stack: Stack) -> None:
    """Found by the run above: null for a NOT NULL column reached PostgreSQL and answered 500."""
    email, _ = new_account("owner")
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token_for(email)}"
    created = http.post(
        stack.api_url + "/board-cards", json={"title": "Tyres", "column": None, "position": None}, timeout=30
    )
    assert created.status_code == 201, created.text
    card = created.json()
    assert (card["column"], card["position"]) == ("todo", 0)
    refused = http.patch(f"{stack.api_url}/board-cards/{card['id']}", json={"column": None}, timeout=30)
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "column", refused.text
    cleared = http.patch(f"{stack.api_url}/board-cards/{card['id']}", json={"sessionId": None}, timeout=30)
    assert cleared.status_code == 200, cleared.text


@pytest.mark.integration
def test_nul_in_json_and_times_before_year_1_are_refused(stack: Stack) -> None:
    """Found by the run above: PostgreSQL's jsonb cannot hold a NUL character, and the 500 said so."""
    email, _ = new_account("owner")
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token_for(email)}"
    refused = http.post(
        stack.api_url + "/events", json={"name": "Spa", "parameters": {"a": [{"k\x00": 1}]}}, timeout=30
    )
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "parameters", refused.text
    early = http.post(
        stack.api_url + "/events", json={"name": "Spa", "startsAt": "0001-01-01T00:30:00+01:00"}, timeout=30
    )  # also found: year 0 in UTC overflowed into a 500
    assert early.status_code == 400 and early.json()["error"]["field"] == "startsAt", early.text


def _answer_schema(path: str, method: str, status: int) -> dict[str, Any]:
    """The documented answer of an operation, its $refs resolvable (components alongside)."""
    doc = document(app.routes)
    schema = doc["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
    return {**schema, "components": doc["components"]}


@pytest.mark.integration
def test_answers_the_fuzzer_seldom_reaches_match_the_document(stack: Stack) -> None:
    """Sign-in, /auth/me, secrets shown once and webhook deliveries answer what /openapi.json says
    (random bodies almost never get that far: right password, an admin, a real delivery)."""
    from jsonschema import Draft202012Validator

    from tests.integration.conftest import PASSWORD

    def check(path: str, method: str, response: requests.Response, status: int) -> dict[str, Any]:
        assert response.status_code == status, (path, response.text)
        errors = [
            e.message for e in Draft202012Validator(_answer_schema(path, method, status)).iter_errors(response.json())
        ]
        assert not errors, (path, method, errors)
        return dict(response.json())

    email, _ = new_account("admin")
    http = requests.Session()
    signed_in = check(
        "/auth/login",
        "post",
        http.post(stack.api_url + "/auth/login", json={"email": email, "password": PASSWORD}, timeout=30),
        200,
    )
    http.headers["Authorization"] = f"Bearer {signed_in['token']}"
    check("/auth/me", "get", http.get(stack.api_url + "/auth/me", timeout=30), 200)
    key = check("/api-keys", "post", http.post(stack.api_url + "/api-keys", json={"name": "bridge"}, timeout=30), 201)
    check(
        "/auth/me", "get", requests.get(stack.api_url + "/auth/me", headers={"X-API-Key": key["key"]}, timeout=30), 200
    )
    check("/api-keys", "get", http.get(stack.api_url + "/api-keys", timeout=30), 200)
    hook = check(
        "/webhooks", "post", http.post(stack.api_url + "/webhooks", json={"url": SAFE_WEBHOOK_URL}, timeout=30), 201
    )
    base = f"{stack.api_url}/webhooks/{hook['id']}"
    check("/webhooks/{id}/rotate-secret", "post", http.post(base + "/rotate-secret", timeout=30), 200)
    sent = check("/webhooks/{id}/test", "post", http.post(base + "/test", timeout=30), 202)
    check("/webhooks/{id}/deliveries", "get", http.get(base + "/deliveries?limit=500", timeout=30), 200)
    check("/webhooks/{id}/deliveries/{deliveryId}", "get", http.get(f"{base}/deliveries/{sent['id']}", timeout=30), 200)
    check(
        "/webhooks/{id}/recover",
        "post",
        http.post(base + "/recover", json={"since": "2026-01-01T00:00:00Z"}, timeout=30),
        202,
    )
    invited = f"invited-{uuid.uuid4().hex[:8]}@example.test"
    check(
        "/members",
        "post",
        http.post(stack.api_url + "/members", json={"email": invited, "role": "viewer"}, timeout=30),
        201,
    )
    joined = check(
        "/auth/accept-invite",
        "post",
        requests.post(
            stack.api_url + "/auth/accept-invite",
            json={"token": mailed_token(invited), "password": "a-long-new-password", "name": "New Viewer"},
            timeout=30,
        ),
        200,
    )
    founder = f"founder-{uuid.uuid4().hex[:8]}@example.test"
    check(
        "/auth/signup",
        "post",
        requests.post(
            stack.api_url + "/auth/signup",
            json={"email": founder, "password": "a-long-new-password", "name": "Founder", "accountName": "Fuzz Racing"},
            timeout=30,
        ),
        202,
    )
    signed_up = check(
        "/auth/confirm",
        "post",
        requests.post(
            stack.api_url + "/auth/confirm",
            json={"token": mailed_token(founder, CONFIRM_ROUTE), "password": "a-long-new-password"},
            timeout=30,
        ),
        201,
    )
    # Sign-up and invites answer exactly like a sign-in, accounts included.
    assert [a["id"] for a in joined["accounts"]] == [joined["user"]["accountId"]]
    assert [a["name"] for a in signed_up["accounts"]] == ["Fuzz Racing"]
