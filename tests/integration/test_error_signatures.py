"""The runbook's error signatures each give an answer (and a log line) that says what to do."""

from __future__ import annotations

import os

import pytest

from tests.integration.conftest import Api, Stack, reset_caches, token_for

pytestmark = pytest.mark.integration


def test_database_dns_failure_says_so(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    token = token_for("jamie@apexracing.io")
    original = os.environ["DATABASE_URL"]
    os.environ["DATABASE_URL"] = "postgresql://race:race@db.nonexistent.invalid:5432/race"
    reset_caches()
    try:
        answer = Api(stack.api_url, token).get("/events")
    finally:
        os.environ["DATABASE_URL"] = original
        reset_caches()
    assert answer.status_code == 503
    message = answer.json()["error"]["message"]
    assert "does not resolve (DNS)" in message and "DATABASE_URL" in message


def test_aws_dns_failure_is_named_by_deep_health(stack: Stack) -> None:
    original = os.environ["AWS_ENDPOINT_URL"]
    os.environ["AWS_ENDPOINT_URL"] = "http://aws.nonexistent.invalid:4566"
    reset_caches()
    try:
        report = Api(stack.api_url).get("/health?deep=1").json()
    finally:
        os.environ["AWS_ENDPOINT_URL"] = original
        reset_caches()
    assert set(report["down"]) == {"dynamodb", "sqs", "s3"}
    assert report["checks"]["postgres"]["status"] == "ok"
