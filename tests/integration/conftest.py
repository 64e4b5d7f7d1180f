"""Integration fixtures: a private PostgreSQL (migrated + seeded), the emulator (provisioned), and
the app served by the local HTTP and WebSocket gateways on free ports."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib import caches
from infra.local.ports import free_port

JWT_SECRET = "integration-test-secret-" + "x" * 40
WEBHOOK_KEY = base64.b64encode(b"integration-test-webhook-key-32b").decode("ascii")  # the tests' own data key
PASSWORD = "sebring12h"


reset_caches = caches.forget  # every per-container cache, forgotten: the next request reads the environment


def cold_start_with(**values: str) -> Any:
    """Run the block as if the functions had cold-started with these environment variables changed."""
    return caches.cold_start(values)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from infra.local.postgres import EmbeddedPostgres

    cluster = EmbeddedPostgres(tmp_path_factory.mktemp("pg"), fast=True)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        cluster.wipe()


@pytest.fixture(scope="session")
def database_url(postgres: Any) -> str:
    from chalicelib.db.migrate import migrate
    from chalicelib.db.seed import seed

    url = postgres.create_database("race_it")
    migrate(url, log=False)
    seed(url, "local", PASSWORD)
    return str(url)


@pytest.fixture(scope="session")
def provisioned(emulator_url: str) -> str:
    from infra.local.provision import provision

    provision(emulator_url)
    return emulator_url


@dataclass
class Stack:
    api_url: str
    ws_url: str
    management_url: str
    database_url: str
    aws_endpoint_url: str
    http: Any
    ws: Any

    def session(self) -> requests.Session:
        return requests.Session()


@pytest.fixture(scope="session")
def stack(database_url: str, provisioned: str) -> Iterator[Stack]:
    from infra.local import http_gateway
    from infra.local.sqs_poller import QueueAlreadyPolledError, SqsPoller, room_publisher
    from infra.local.ws_gateway import WsGateway

    management_port = free_port()
    os.environ.update(
        {
            "STAGE": "local",
            "JWT_SECRET": JWT_SECRET,
            "WEBHOOK_KEY": WEBHOOK_KEY,
            "DATABASE_URL": database_url,
            "AWS_ENDPOINT_URL": provisioned,
            "WS_MANAGEMENT_URL": f"http://127.0.0.1:{management_port}/local",
            # The discard port: subscriptions that must never deliver (receivers add their own ports).
            "OUTBOUND_ALLOW": "127.0.0.1:9",
        }
    )
    reset_caches()
    from app import app

    ws = WsGateway(app, "127.0.0.1", free_port(), management_port=management_port)
    ws.start_in_thread()
    http = http_gateway.start_in_thread(app, "127.0.0.1", free_port())
    try:
        publisher: SqsPoller | None = room_publisher(app, provisioned)  # room pushes go out after the commit
    except QueueAlreadyPolledError:
        # The browser tests import this fixture, which makes it a second one of the session on the
        # same emulator: the first stack's publisher (same app, same process) serves both.
        publisher = None
    try:
        yield Stack(http.url, ws.url, ws.management_url, database_url, provisioned, http, ws)
    finally:
        if publisher is not None:
            publisher.stop()
        http.shutdown()
        http.server_close()
        ws.stop()
        reset_caches()


class Api:
    """A small HTTP client for the platform: JSON in, (status, JSON) out."""

    def __init__(self, base_url: str, token: str | None = None, api_key: str | None = None):
        self.base_url = base_url
        self.http = requests.Session()
        self.token = token
        self.api_key = api_key

    def headers(self) -> dict[str, str]:
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        if self.api_key:
            return {"X-API-Key": self.api_key}
        return {}

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        return self.http.request(method, self.base_url + path, json=body, headers=headers, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.call("POST", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("DELETE", path, **kwargs)


def forget_link_attempts() -> None:
    """Every test reaches the API from 127.0.0.1: forget that address's sign-in, sign-up,
    invite-acceptance and confirmation counts, and the demo logins' sign-in counts (the per-link
    and per-email limits of each test's own attempts stay), so one file's attempts never limit another's."""
    import hashlib

    from chalicelib.config import settings
    from chalicelib.store.aws import client

    def digest(value: str) -> str:
        return hashlib.sha256(value.encode()).hexdigest()[:32]

    keys = [
        f"{action}:ip:{digest('127.0.0.1')}" for action in ("sign-in", "sign-up", "invite acceptance", "confirmation")
    ]
    keys += [f"sign-in:email:{digest(email)}" for email in ("jamie@apexracing.io", "alex@rivalmotorsport.io")]
    for key in keys:
        items = client("dynamodb").query(
            TableName=settings().kv_table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"counter#{key}"}},
            ConsistentRead=True,
        )["Items"]
        for item in items:
            client("dynamodb").delete_item(TableName=settings().kv_table, Key={"pk": item["pk"], "sk": item["sk"]})


@pytest.fixture(autouse=True)
def _fresh_link_limits(request: pytest.FixtureRequest) -> None:
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack")
        forget_link_attempts()


INVITE_ROUTE = "#/accept-invite"
CONFIRM_ROUTE = "#/confirm"


def mailed_token(to: str, route: str = INVITE_ROUTE) -> str:
    """The token of the newest `route` link mailed to `to`, read from the emulator's SES (GET /_aws/ses)."""
    from infra.local import mail

    return mail.token_of(mail.latest_link(to, route, os.environ["AWS_ENDPOINT_URL"]))


def token_for(email: str) -> str:
    """A JWT for a seeded or created user, minted directly (logins are rate limited)."""
    import psycopg

    from chalicelib.domain.tokens import issue_jwt

    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        row = conn.execute(
            "SELECT u.id, m.account_id, m.role FROM users u JOIN memberships m ON m.user_id = u.id "
            "WHERE lower(u.email) = lower(%s)",
            (email,),
        ).fetchone()
    assert row, email
    return issue_jwt(JWT_SECRET, user_id=str(row[0]), account_id=str(row[1]), role=row[2], ttl_s=3600)


@pytest.fixture()
def jamie(stack: Stack) -> Api:
    return Api(stack.api_url, token_for("jamie@apexracing.io"))


@pytest.fixture()
def alex(stack: Stack) -> Api:
    return Api(stack.api_url, token_for("alex@rivalmotorsport.io"))


@pytest.fixture()
def anonymous(stack: Stack) -> Api:
    return Api(stack.api_url)


def new_account(role: str = "owner") -> tuple[str, str]:
    """A fresh account with one member of `role`; returns (email, account id)."""
    import psycopg

    from chalicelib.domain.passwords import hash_password

    email = f"user-{uuid.uuid4().hex[:10]}@example.test"
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        account_id = conn.execute(
            "INSERT INTO accounts (name, slug) VALUES (%s, %s) RETURNING id", ("Test Team", email)
        ).fetchone()[0]  # type: ignore[index]
        user_id = conn.execute(
            "INSERT INTO users (email, name, password_hash) VALUES (%s, 'Test User', %s) RETURNING id",
            (email, hash_password(PASSWORD)),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO memberships (account_id, user_id, role) VALUES (%s, %s, %s)", (account_id, user_id, role)
        )
    return email, str(account_id)


TIMING_DATA = Path(os.environ.get("RACE_TIMING_DATA", Path(__file__).resolve().parents[3] / "shared/data/timing"))


def lose_room(room: str) -> None:
    """The room's state item and log gone from DynamoDB, as when its table is recreated by a redeploy
    (its member items stay: the caller decides who is still in it)."""
    from chalicelib.config import settings
    from chalicelib.store.aws import client

    table = settings().connections_table
    logged = client("dynamodb").query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"log#{room}"}},
        ProjectionExpression="pk, sk",
    )["Items"]
    for key in [{"pk": {"S": f"room#{room}"}, "sk": {"S": "turn"}}, *logged]:
        client("dynamodb").delete_item(TableName=table, Key=key)
