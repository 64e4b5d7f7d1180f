"""Runs the permissions table in docs/permissions.md: every route x caller gets the documented status."""

from __future__ import annotations

import itertools
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import psycopg
import pytest
import requests

from tests.integration.conftest import JWT_SECRET, Api, Stack, new_account, token_for

pytestmark = pytest.mark.integration
DOC = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"
CALLERS = ("owner", "admin", "engineer", "viewer", "key:viewer", "other", "expired", "none")
# Routes that take credentials in their body: public by nature, tested on their own.
EXEMPT = {
    ("POST", "/auth/login"),
    ("POST", "/auth/signup"),
    ("POST", "/auth/accept-invite"),
    ("POST", "/auth/confirm"),
    ("POST", "/auth/password"),
}
_counter = itertools.count()
_WEBHOOK_OF: dict[str, dict[str, Any]] = {}  # account id -> the webhook its test deliveries belong to
# A filter no write matches (strategy is only ever updated): the matrix's writes queue no deliveries.
_QUIET_WEBHOOK = {"url": "http://127.0.0.1:9/matrix", "entityTypes": ["strategy"], "operations": ["delete"]}


def matrix() -> list[tuple[str, str, dict[str, int]]]:
    text = DOC.read_text()
    block = text.split("<!-- matrix:start -->")[1].split("<!-- matrix:end -->")[0]
    rows = []
    for line in block.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        method, path, statuses = cells[0], cells[1], cells[2:]
        assert len(statuses) == len(CALLERS), line
        rows.append((method, path, dict(zip(CALLERS, map(int, statuses), strict=True))))
    return rows


@dataclass
class World:
    stack: Stack
    apis: dict[str, Api] = field(default_factory=dict)
    owner: Api | None = None
    account_id: str = ""

    def ok(self, answer: Any) -> dict[str, Any]:
        assert answer.status_code in (200, 201), answer.text
        return answer.json()  # type: ignore[no-any-return]

    def make(self, kind: str) -> dict[str, Any]:
        """A fresh row of `kind` in the team's account, created by its owner."""
        assert self.owner is not None
        n = next(_counter)
        if kind == "events":
            return self.ok(self.owner.post("/events", {"name": f"Event {n}"}))
        if kind == "sessions":
            return self.ok(
                self.owner.post("/sessions", {"eventId": self.make("events")["id"], "name": "S", "type": "test"})
            )
        if kind == "cars":
            return self.ok(self.owner.post("/cars", {"eventId": self.make("events")["id"], "number": f"{n}"}))
        if kind == "drivers":
            return self.ok(self.owner.post("/drivers", {"name": f"Driver {n}"}))
        if kind == "run-sheets":
            session = self.make("sessions")
            car = self.ok(self.owner.post("/cars", {"eventId": session["eventId"], "number": f"{n}"}))
            return self.ok(self.owner.post("/run-sheets", {"sessionId": session["id"], "carId": car["id"]}))
        if kind == "laps":
            sheet = self.make("run-sheets")
            with psycopg.connect(self.stack.database_url) as conn:
                lap_id = conn.execute(
                    "INSERT INTO laps (account_id, run_sheet_id, session_id, car_id, lap_number, lap_time_ms) "
                    "VALUES (%s, %s, %s, %s, 1, 100000) RETURNING id",
                    (self.account_id, sheet["id"], sheet["sessionId"], sheet["carId"]),
                ).fetchone()[0]  # type: ignore[index]
            return {"id": str(lap_id)}
        if kind == "setups":
            return self.ok(self.owner.post("/setups", {"carId": self.make("cars")["id"], "name": "s"}))
        if kind == "issues":
            return self.ok(self.owner.post("/issues", {"carId": self.make("cars")["id"], "title": "t"}))
        if kind == "board-cards":
            return self.ok(self.owner.post("/board-cards", {"title": "b"}))
        if kind == "api-keys":
            return self.ok(self.owner.post("/api-keys", {"name": "k"}))
        if kind == "members":  # a pending invite: its id is a member id
            return self.ok(
                self.owner.post("/members", {"email": f"m{n}-{uuid.uuid4().hex[:6]}@matrix.test", "role": "viewer"})
            )
        if kind == "attachments":  # uploaded through its presigned URL
            sheet = self.make("run-sheets")
            made = self.ok(
                self.owner.post(
                    f"/run-sheets/{sheet['id']}/attachments",
                    {"fileName": "m.csv", "contentType": "text/csv", "sizeBytes": 3},
                )
            )
            assert requests.put(made["uploadUrl"], data=b"a,b", headers=made["uploadHeaders"], timeout=10).ok
            return made
        if kind == "timing-imports":
            session = self.make("sessions")
            answer = self.owner.post(
                f"/sessions/{session['id']}/timing-imports",
                data=TIMING_CSV.read_bytes(),
                headers={"Content-Type": "text/csv"},
            )
            assert answer.status_code == 202, answer.text
            return {"id": answer.json()["id"], "sessionId": session["id"]}
        if kind == "webhooks":
            return self.ok(self.owner.post("/webhooks", _QUIET_WEBHOOK))
        if kind == "webhook-deliveries":  # a failed test delivery (replayable), all under one webhook
            hook = _WEBHOOK_OF.get(self.account_id) or _WEBHOOK_OF.setdefault(self.account_id, self.make("webhooks"))
            answer = self.owner.post(f"/webhooks/{hook['id']}/test")
            assert answer.status_code == 202, answer.text
            with psycopg.connect(self.stack.database_url) as conn:
                conn.execute("UPDATE webhook_deliveries SET status = 'failed' WHERE id = %s", (answer.json()["id"],))
            return answer.json()  # type: ignore[no-any-return]
        if kind == "plugins":
            return self.ok(self.owner.post("/plugins", _plugin_body()))
        raise AssertionError(f"no factory for {kind}: add one to World.make")


@dataclass(frozen=True)
class Raw:
    """A body sent as it is (not JSON)."""

    data: bytes
    content_type: str


TIMING_CSV = Path(__file__).resolve().parents[1] / "fixtures" / "timing" / "barber_style_lf.CSV"


# Bodies per route (ids from fresh rows of the team's account).
BODIES: dict[tuple[str, str], Callable[[World], Any]] = {
    ("POST", "/sessions/{id}/timing-imports"): lambda w: Raw(TIMING_CSV.read_bytes(), "text/csv"),
    ("POST", "/sessions/{id}/timing-imports/upload-url"): lambda w: {},
    ("POST", "/api-keys"): lambda w: {"name": "matrix", "role": "viewer"},
    ("POST", "/events"): lambda w: {"name": "Matrix event"},
    ("PATCH", "/events/{id}"): lambda w: {"name": "Renamed"},
    ("PUT", "/events/{id}/strategy"): lambda w: {"stints": []},
    ("POST", "/sessions"): lambda w: {"eventId": w.make("events")["id"], "name": "FP", "type": "practice"},
    ("PATCH", "/sessions/{id}"): lambda w: {"name": "FP2"},
    ("POST", "/cars"): lambda w: {"eventId": w.make("events")["id"], "number": "42"},
    ("PATCH", "/cars/{id}"): lambda w: {"class": "GT3"},
    ("POST", "/drivers"): lambda w: {"name": "New Driver", "carId": w.make("cars")["id"]},
    ("PATCH", "/drivers/{id}"): lambda w: {"name": "Renamed Driver"},
    ("POST", "/run-sheets"): lambda w: _sheet_body(w),
    ("PATCH", "/run-sheets/{id}"): lambda w: {"engineerNotes": "matrix"},
    ("POST", "/setups"): lambda w: {"carId": w.make("cars")["id"], "name": "Matrix"},
    ("PATCH", "/setups/{id}"): lambda w: {"name": "Matrix 2"},
    ("POST", "/issues"): lambda w: {"carId": w.make("cars")["id"], "title": "Matrix"},
    ("PATCH", "/issues/{id}"): lambda w: {"title": "Matrix 2"},
    ("POST", "/board-cards"): lambda w: {"title": "Matrix"},
    ("PATCH", "/board-cards/{id}"): lambda w: {"title": "Matrix 2"},
    ("POST", "/laps"): lambda w: {"runSheetId": w.make("run-sheets")["id"], "lapNumber": 1, "lapTimeMs": 100_000},
    ("PATCH", "/laps/{id}"): lambda w: {"isValid": False},
    ("POST", "/members"): lambda w: {"email": f"new-{uuid.uuid4().hex[:8]}@matrix.test", "role": "viewer"},
    ("PATCH", "/members/{userId}"): lambda w: {"role": "engineer"},
    ("POST", "/run-sheets/{id}/attachments"): lambda w: {
        "fileName": "m.csv",
        "contentType": "text/csv",
        "sizeBytes": 3,
    },
    ("POST", "/attachments/{id}/complete"): lambda w: None,
    ("POST", "/webhooks"): lambda w: _QUIET_WEBHOOK,
    ("PATCH", "/webhooks/{id}"): lambda w: {"description": "matrix"},
    ("POST", "/webhooks/{id}/rotate-secret"): lambda w: None,
    ("POST", "/webhooks/{id}/test"): lambda w: None,
    ("POST", "/webhooks/{id}/deliveries/{deliveryId}/replay"): lambda w: None,
    ("POST", "/webhooks/{id}/recover"): lambda w: {"since": "2020-01-01T00:00:00Z"},
    ("POST", "/plugins"): lambda w: _plugin_body(),
    ("PUT", "/plugins/{id}/grants"): lambda w: {"capabilities": []},
    ("POST", "/plugins/{id}/invoke/math"): lambda w: {"input": 1},
    ("POST", "/plugins/{id}/invoke/kpi"): lambda w: {"laps": []},
}


def _plugin_body() -> dict[str, Any]:
    return {
        "manifest": {
            "id": f"matrix-{next(_counter)}",
            "version": "1.0.0",
            "name": "Matrix",
            "interfaces": ["math", "kpiProcessor"],
        },
        "bundle": "var plugin = {math: (x) => x, kpiProcessor: (x) => x.laps.length};",
    }


def _sheet_body(w: World) -> dict[str, Any]:
    session = w.make("sessions")
    car = w.ok(w.owner.post("/cars", {"eventId": session["eventId"], "number": "1"}))  # type: ignore[union-attr]
    return {"sessionId": session["id"], "carId": car["id"]}


def _add_member(stack: Stack, account_id: str, role: str) -> str:
    email = f"{role}-{uuid.uuid4().hex[:8]}@matrix.test"
    with psycopg.connect(stack.database_url) as conn:
        user_id = conn.execute(
            "INSERT INTO users (email, name) VALUES (%s, %s) RETURNING id", (email, role.title())
        ).fetchone()[0]  # type: ignore[index]
        conn.execute("INSERT INTO memberships VALUES (%s, %s, %s)", (account_id, user_id, role))
    return email


@pytest.fixture(scope="module")
def world(stack: Stack) -> World:
    email, account_id = new_account("owner")
    w = World(stack, account_id=account_id)
    w.owner = Api(stack.api_url, token_for(email))
    w.apis["owner"] = w.owner
    for role in ("admin", "engineer", "viewer"):
        w.apis[role] = Api(stack.api_url, token_for(_add_member(stack, account_id, role)))
    key = w.ok(w.owner.post("/api-keys", {"name": "matrix viewer", "role": "viewer"}))["key"]
    w.apis["key:viewer"] = Api(stack.api_url, api_key=key)
    other_email, _ = new_account("owner")
    w.apis["other"] = Api(stack.api_url, token_for(other_email))
    claims = jwt.decode(token_for(email), JWT_SECRET, algorithms=["HS256"], issuer="race-platform")
    claims.update(iat=int(time.time()) - 7200, exp=int(time.time()) - 60)
    w.apis["expired"] = Api(stack.api_url, jwt.encode(claims, JWT_SECRET, algorithm="HS256"))
    w.apis["none"] = Api(stack.api_url)
    return w


def test_every_route_has_a_row() -> None:
    from app import app

    documented = {(m, p) for m, p, _ in matrix()}
    registered = {(m, p) for p, methods in app.routes.items() for m in methods} - EXEMPT
    assert registered - documented == set(), "add these routes to docs/permissions.md"
    assert documented - registered == set(), "docs/permissions.md lists routes the app does not have"


@pytest.mark.parametrize(("method", "path", "expected"), matrix(), ids=lambda v: v if isinstance(v, str) else "")
def test_matrix_row(world: World, method: str, path: str, expected: dict[str, int]) -> None:
    failures = []
    for caller in CALLERS:
        concrete = path
        if "{importId}" in path:
            made = world.make("timing-imports")
            concrete = path.replace("{id}", made["sessionId"]).replace("{importId}", made["id"])
        if "{deliveryId}" in path:
            made = world.make("webhook-deliveries")
            concrete = path.replace("{id}", made["webhookId"]).replace("{deliveryId}", made["id"])
        match = re.match(r"^/([a-z-]+)/\{(id|userId)\}", concrete)
        if match:
            concrete = concrete.replace(f"{{{match.group(2)}}}", world.make(match.group(1))["id"])
        body_of = BODIES.get((method, path))
        if method in ("POST", "PUT", "PATCH") and body_of is None:
            raise AssertionError(f"add a body for {method} {path} to BODIES")
        body = body_of(world) if body_of else None
        if isinstance(body, Raw):
            answer = world.apis[caller].call(
                method, concrete, data=body.data, headers={"Content-Type": body.content_type}
            )
        else:
            answer = world.apis[caller].call(method, concrete, body)
        if answer.status_code != expected[caller]:
            failures.append(f"{caller}: expected {expected[caller]}, got {answer.status_code} {answer.text[:120]}")
    assert not failures, f"{method} {path}\n" + "\n".join(failures)
