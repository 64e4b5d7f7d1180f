"""Browser fixtures: the integration stack, web/ served statically, Debian's Chromium via Playwright.

Chromium comes from Debian (/usr/bin/chromium); when it is missing, tools/install-chromium.sh
installs it as root on Debian, else every browser test is skipped with the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from infra.local.ports import free_port
from tests.integration import conftest as integration
from tests.integration.conftest import PASSWORD, Api, Stack, new_account, token_for

# The integration stack (PostgreSQL migrated + seeded, the emulator, HTTP + WS gateways), reused here.
postgres = integration.postgres
database_url = integration.database_url
provisioned = integration.provisioned
stack = integration.stack
__all__ = ["Api", "token_for"]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("RACE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A first run installs Chromium inside the first browser test's setup: give that room."""
    if CHROMIUM.exists():
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.timeout(1200))


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is not installed (make install)")
    if not CHROMIUM.exists():
        script = ROOT / "tools" / "install-chromium.sh"
        done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900)
        if done.returncode != 0 or not CHROMIUM.exists():
            why = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"{CHROMIUM} is still missing"
            pytest.skip(f"Chromium is not installed at {CHROMIUM} and could not be installed here: {why}")
    return CHROMIUM


@pytest.fixture(scope="session")
def web_url() -> Iterator[str]:
    from infra.local import static

    server = static.start_in_thread(ROOT / "web", "127.0.0.1", free_port())
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def browser(chromium_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@dataclass
class Client:
    """Opens the web client in a fresh browser context pointed at the test stack."""

    browser: Any
    stack: Stack
    web_url: str
    contexts: list[Any]

    def url(self, hash_path: str = "#/events", **timings: int) -> str:
        query = {"api": self.stack.api_url, "ws": self.stack.ws_url, **{k: str(v) for k, v in timings.items()}}
        return f"{self.web_url}/index.html?{urlencode(query)}{hash_path}"

    def open(
        self, hash_path: str = "#/events", token: str | None = None, user: dict[str, Any] | None = None, **timings: int
    ) -> Any:
        context = self.browser.new_context(viewport={"width": 1600, "height": 980})
        self.contexts.append(context)
        if token:
            session = {"token": token, "user": user or {}}
            key = f"race:session:{self.stack.api_url}"
            context.add_init_script(f"localStorage.setItem({json.dumps(key)}, {json.dumps(json.dumps(session))});")
        page = context.new_page()
        page.errors = []  # type: ignore[attr-defined]
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.goto(self.url(hash_path, **timings))
        return page


@pytest.fixture()
def client(browser: Any, stack: Stack, web_url: str) -> Iterator[Client]:
    opened = Client(browser, stack, web_url, [])
    try:
        yield opened
    finally:
        for context in opened.contexts:
            context.close()


@dataclass
class Team:
    """A fresh account with an event, a session, a car with two drivers and its run sheet."""

    email: str
    account_id: str
    owner: Api
    token: str
    user: dict[str, Any]
    event_id: str
    session_id: str
    car_id: str
    driver_ids: list[str]
    run_sheet_id: str


def add_member(account_id: str, role: str, name: str) -> str:
    """A second person in an account; returns their email."""
    import psycopg

    from chalicelib.domain.passwords import hash_password

    email = f"member-{uuid.uuid4().hex[:10]}@example.test"
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        user_id = conn.execute(
            "INSERT INTO users (email, name, password_hash) VALUES (%s, %s, %s) RETURNING id",
            (email, name, hash_password(PASSWORD)),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO memberships (account_id, user_id, role) VALUES (%s, %s, %s)", (account_id, user_id, role)
        )
    return email


def make_team(stack: Stack) -> Team:
    email, account_id = new_account("owner")
    token = token_for(email)
    owner = Api(stack.api_url, token)

    def created(path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = owner.post(path, body)
        assert answer.status_code == 201, (path, answer.status_code, answer.text)
        return dict(answer.json())

    event = created(
        "/events",
        {
            "name": "Daytona Test Days",
            "track": "Daytona International Speedway",
            "startsAt": "2026-01-10T14:00:00Z",
            "endsAt": "2026-01-12T22:00:00Z",
        },
    )
    session = created(
        "/sessions",
        {
            "eventId": event["id"],
            "name": "Test 1",
            "type": "test",
            "startsAt": "2026-01-10T15:00:00Z",
            "endsAt": "2026-01-10T17:00:00Z",
        },
    )
    car = created("/cars", {"eventId": event["id"], "number": "42", "class": "GTD", "liveryColor": "#0a84ff"})
    drivers = [
        created("/drivers", {"carId": car["id"], "name": name, "number": str(i + 1)})
        for i, name in enumerate(("Noor Haddad", "Theo Brandt"))
    ]
    sheet = created(
        "/run-sheets",
        {
            "sessionId": session["id"],
            "carId": car["id"],
            "ambient": {"airTempC": 19, "trackTempC": 24},
            "engineerNotes": "Baseline run.",
        },
    )
    me = owner.get("/auth/me").json()
    user = {"name": me["user"]["name"], "email": email, "role": me["role"], "accountName": me["account"]["name"]}
    return Team(
        email,
        account_id,
        owner,
        token,
        user,
        event["id"],
        session["id"],
        car["id"],
        [d["id"] for d in drivers],
        sheet["id"],
    )


@pytest.fixture()
def team(stack: Stack) -> Team:
    return make_team(stack)


def lap(number: int, lap_time_ms: int, driver_id: str, stint: int, **extra: Any) -> dict[str, Any]:
    """One lap in wire form, with three sectors that add up."""
    s1, s2 = round(lap_time_ms * 0.28), round(lap_time_ms * 0.38)
    return {
        "lapNumber": number,
        "lapTimeMs": lap_time_ms,
        "sectorTimesMs": [s1, s2, lap_time_ms - s1 - s2],
        "driverId": driver_id,
        "stint": stint,
        **extra,
    }


def post_laps(team: Team, laps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Laps written by "another client": POST /laps, or while that route is not built yet the same
    domain write in-process (committed, recorded, broadcast to the session room)."""
    body = {"laps": [{"runSheetId": team.run_sheet_id, **item} for item in laps]}
    answer = team.owner.post("/laps", body)
    if missing_route(answer):
        return _write_laps_in_process(team, laps)
    assert answer.status_code in (200, 201), (answer.status_code, answer.text)
    data = answer.json()
    return list(data.get("items", [data]))


def _write_laps_in_process(team: Team, laps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from chalicelib.domain import changes
    from chalicelib.domain.caller import Caller
    from chalicelib.domain.records import LAPS

    caller = Caller(account_id=team.account_id, role="owner", api_key_id=str(uuid.uuid4()))
    written = []
    with changes.write(caller) as (conn, recorder):
        for item in laps:
            row = conn.execute(
                "INSERT INTO laps (account_id, run_sheet_id, session_id, car_id, lap_number, lap_time_ms,"
                " sector_times_ms, is_in_lap, is_out_lap, is_valid, pit_time_ms, driver_id, stint)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
                (
                    team.account_id,
                    team.run_sheet_id,
                    team.session_id,
                    team.car_id,
                    item["lapNumber"],
                    item["lapTimeMs"],
                    item.get("sectorTimesMs", []),
                    item.get("isInLap", False),
                    item.get("isOutLap", False),
                    item.get("isValid", True),
                    item.get("pitTimeMs"),
                    item.get("driverId"),
                    item.get("stint"),
                ),
            ).fetchone()
            wire = LAPS.to_wire(dict(row))  # type: ignore[arg-type]
            recorder.record("lap", "create", wire, session_id=team.session_id)
            written.append(wire)
    return written


def routes_exist(team: Team, method: str, path: str) -> bool:
    """False when the API has no such route yet (the gateway's 404 "no route for ...")."""
    answer = team.owner.call(method, path, {} if method in ("POST", "PUT", "PATCH") else None)
    return not missing_route(answer)


def missing_route(answer: Any) -> bool:
    """The gateway's answer for a route (or method) the API does not have: 404 "no route" or 405."""
    return (answer.status_code == 404 and "no route" in answer.text) or answer.status_code == 405


def stop_api(stack: Stack) -> None:
    """Take the API down: the HTTP gateway and the WebSocket gateway stop listening."""
    stack.http.shutdown()
    stack.http.server_close()
    stack.ws.stop()


def start_api(stack: Stack) -> None:
    """Bring the API back on the same ports (a new HTTP gateway, the WebSocket gateway restarted)."""
    from app import app
    from infra.local import http_gateway

    port = int(stack.api_url.rsplit(":", 1)[1])
    stack.http = http_gateway.start_in_thread(app, "127.0.0.1", port)
    stack.ws.start_in_thread()


FAST_WEBHOOKS = {"WEBHOOK_RETRY_DELAYS_S": "0,0,0", "WEBHOOK_RETRY_JITTER": "0", "WEBHOOK_TIMEOUT_S": "2"}


@contextlib.contextmanager
def webhook_worker(stack: Stack) -> Iterator[None]:
    """The webhook worker behind its SQS queue (the local event source mapping), with the retry
    schedule shortened to zero delays so a delivery fails for good within moments."""
    import boto3

    from app import app
    from chalicelib.webhooks import schedule
    from infra.local.sqs_poller import SqsPoller

    saved = {name: os.environ.get(name) for name in FAST_WEBHOOKS}
    os.environ.update(FAST_WEBHOOKS)
    schedule.policy.cache_clear()
    from chalicelib.resources import ROOM_QUEUE

    # Every other queue: the stack's own room publisher polls the room queue.
    poller = SqsPoller(
        app,
        boto3.client("sqs", endpoint_url=stack.aws_endpoint_url, region_name="us-east-1"),
        wait_time_s=0,
        skip={ROOM_QUEUE.name},
    )
    poller.start_in_thread()
    try:
        yield
    finally:
        poller.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        schedule.policy.cache_clear()
