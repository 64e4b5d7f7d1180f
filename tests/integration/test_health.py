"""/health touches nothing; /health?deep=1 checks each dependency and names the one that is down."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Api, Stack, reset_caches

pytestmark = pytest.mark.integration


def test_shallow_health_is_ok_without_credentials(anonymous: Api) -> None:
    answer = anonymous.get("/health")
    assert answer.status_code == 200 and answer.json()["status"] == "ok"


def test_deep_health_checks_every_dependency_and_shows_them_to_admins(jamie: Api) -> None:
    report = jamie.get("/health?deep=1").json()
    assert report["status"] == "ok", report
    assert set(report["checks"]) == {"postgres", "dynamodb", "sqs", "s3"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"X-API-Key": "race_revoked-or-made-up"},
        {"Authorization": "Basic x"},
    ],
)
def test_deep_health_tells_anyone_else_only_the_overall_status(anonymous: Api, headers: dict[str, str]) -> None:
    answer = anonymous.get("/health?deep=1", headers=headers)
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}  # no 401 either: it stays a probe


def test_deep_health_details_need_the_admin_role(stack: Stack) -> None:
    from tests.integration.conftest import new_account, token_for

    viewer_email, _ = new_account("viewer")
    admin_email, _ = new_account("admin")
    assert Api(stack.api_url, token_for(viewer_email)).get("/health?deep=1").json() == {"status": "ok"}
    assert "checks" in Api(stack.api_url, token_for(admin_email)).get("/health?deep=1").json()


def test_deep_health_names_a_stopped_postgres(stack: Stack, tmp_path: Path) -> None:
    """A second, private cluster is stopped under the app; health must say PostgreSQL is down."""
    from chalicelib.db.migrate import migrate
    from infra.local.postgres import EmbeddedPostgres

    cluster = EmbeddedPostgres(tmp_path / "pg", fast=True)
    url = cluster.start()
    migrate(url, log=False)
    original = os.environ["DATABASE_URL"]
    os.environ["DATABASE_URL"] = url
    reset_caches()
    try:
        api = Api(stack.api_url)
        assert api.get("/health?deep=1").json() == {"status": "ok"}
        cluster.stop()
        answer = api.get("/health?deep=1")
        report: dict[str, Any] = answer.json()
        assert answer.status_code == 503
        assert report == {"status": "degraded"}  # which one is down is for operators (logs, data routes' 503)
        from chalicelib.domain.health import deep_check

        assert deep_check()["down"] == ["postgres"]  # what an admin would read, were sign-in possible now
        # Shallow health never touches dependencies, so it stays green.
        assert api.get("/health").status_code == 200
        # A data route says which dependency is down instead of a bare 500.
        from tests.integration.conftest import token_for

        os.environ["DATABASE_URL"] = original
        token = token_for("jamie@apexracing.io")
        os.environ["DATABASE_URL"] = url
        events = Api(stack.api_url, token).get("/events")
        assert events.status_code == 503
        assert "PostgreSQL" in events.json()["error"]["message"]
        cluster.start()
        for _ in range(60):  # recovers by itself (the pool reconnects in the background, with backoff)
            if api.get("/health?deep=1").json() == {"status": "ok"}:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"deep health did not recover: {deep_check()}")
    finally:
        os.environ["DATABASE_URL"] = original
        reset_caches()
        cluster.stop()
        cluster.wipe()
