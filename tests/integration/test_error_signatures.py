"""The runbook's error signatures each give an answer (and a log line) that says what to do."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Api, Stack, cold_start_with, token_for

pytestmark = pytest.mark.integration


def test_database_dns_failure_says_so(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    token = token_for("jamie@apexracing.io")
    with cold_start_with(DATABASE_URL="postgresql://race:race@db.nonexistent.invalid:5432/race"):
        answer = Api(stack.api_url, token).get("/events")
    assert answer.status_code == 503
    message = answer.json()["error"]["message"]
    assert "does not resolve (DNS)" in message and "DATABASE_URL" in message


def test_aws_dns_failure_is_named_by_deep_health(stack: Stack) -> None:
    token = token_for("jamie@apexracing.io")  # an owner: the details are for operators
    with cold_start_with(AWS_ENDPOINT_URL="http://aws.nonexistent.invalid:4566"):
        report = Api(stack.api_url, token).get("/health?deep=1").json()
    assert set(report["down"]) == {"dynamodb", "sqs", "s3"}
    assert report["checks"]["postgres"]["status"] == "ok"
