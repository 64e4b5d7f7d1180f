"""/health touches nothing; /health?deep=1 checks each dependency and names the one that is down."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Api, Stack, reset_caches

pytestmark = pytest.mark.integration


def test_shallow_health_is_ok_without_credentials(anonymous: Api) -> None:
    answer = anonymous.get("/health")
    assert answer.status_code == 200 and answer.json()["status"] == "ok"


def test_deep_health_checks_every_dependency(anonymous: Api) -> None:
    report = anonymous.get("/health?deep=1").json()
    assert report["status"] == "ok", report
    assert set(report["checks"]) == {"postgres", "dynamodb", "sqs", "s3"}


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
        assert api.get("/health?deep=1").json()["checks"]["postgres"]["status"] == "ok"
        cluster.stop()
        answer = api.get("/health?deep=1")
        report: dict[str, Any] = answer.json()
        assert answer.status_code == 503
        assert report["down"] == ["postgres"]
        assert report["checks"]["dynamodb"]["status"] == "ok"
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
        assert api.get("/health?deep=1").json()["status"] == "ok"  # recovers by itself
    finally:
        os.environ["DATABASE_URL"] = original
        reset_caches()
        cluster.stop()
        cluster.wipe()
