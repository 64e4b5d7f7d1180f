"""The retry policy: 3 retries with jittered backoff, then final; 410 disables; Retry-After is honoured."""

from __future__ import annotations

import datetime as dt
import random
import re
from pathlib import Path

import pytest

from chalicelib.config import ConfigError
from chalicelib.webhooks import schedule
from chalicelib.webhooks.schedule import FAILED, RETRYING, SUCCEEDED, RetryPolicy, decide

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def test_production_schedule_is_three_retries_at_30_s_5_min_30_min_with_20_percent_jitter() -> None:
    policy = schedule.load({})
    assert policy.delays_s == (30.0, 300.0, 1800.0)
    assert policy.jitter == 0.2
    assert policy.max_retries == 3
    assert policy.timeout_s == 10.0


def test_the_docs_publish_the_same_schedule() -> None:
    text = DOCS.read_text()
    policy = schedule.load({})
    for retry, delay_s in enumerate(policy.delays_s, 1):
        low, high = delay_s * (1 - policy.jitter), delay_s * (1 + policy.jitter)
        row = re.search(rf"^\| {retry} \|.*$", text, re.MULTILINE)
        assert row, f"docs/webhooks.md has no row for retry {retry}"
        assert f"{low:g} s" in row.group(0) or f"{low / 60:g} min" in row.group(0), row.group(0)
        assert f"{high:g} s" in row.group(0) or f"{high / 60:g} min" in row.group(0), row.group(0)


def test_each_failed_attempt_is_retried_three_times_then_final() -> None:
    policy = RetryPolicy()
    rng = random.Random(7)
    for attempt, base in ((1, 30.0), (2, 300.0), (3, 1800.0)):
        decision = decide(policy, attempt, 500, rng=rng)
        assert decision.status == RETRYING
        assert decision.delay_s is not None and base * 0.8 <= decision.delay_s <= base * 1.2
    assert decide(policy, 4, 500).status == FAILED
    assert decide(policy, 4, None).status == FAILED  # connection errors count the same


def test_jitter_spreads_the_delays() -> None:
    policy = RetryPolicy()
    delays = {round(decide(policy, 1, 502).delay_s or 0, 3) for _ in range(50)}
    assert len(delays) > 10
    assert all(24.0 <= d <= 36.0 for d in delays)


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_any_2xx_is_success(status: int) -> None:
    assert decide(RetryPolicy(), 1, status).status == SUCCEEDED


@pytest.mark.parametrize("status", [None, 301, 302, 400, 404, 500, 503])
def test_anything_else_is_a_failed_attempt(status: int | None) -> None:
    assert decide(RetryPolicy(), 1, status).status == RETRYING


def test_410_fails_at_once_and_disables_the_subscription() -> None:
    decision = decide(RetryPolicy(), 1, 410)
    assert decision.status == FAILED
    assert decision.disable_reason and "410" in decision.disable_reason


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured_on_429_and_503(status: int) -> None:
    policy = RetryPolicy()
    assert (decide(policy, 1, status, retry_after_s=120).delay_s or 0) >= 120
    # never earlier than the schedule, never later than the cap
    assert (decide(policy, 1, status, retry_after_s=1).delay_s or 0) >= 24
    assert decide(policy, 1, status, retry_after_s=10**9).delay_s == policy.max_retry_after_s
    # Retry-After does not buy a fourth retry
    assert decide(policy, 4, status, retry_after_s=5).status == FAILED


def test_retry_after_is_ignored_on_other_statuses() -> None:
    assert (decide(RetryPolicy(), 1, 500, retry_after_s=None).delay_s or 0) <= 36


def test_retry_after_parses_seconds_and_http_dates() -> None:
    now = dt.datetime(2026, 3, 14, 10, 0, 0, tzinfo=dt.UTC)
    assert schedule.parse_retry_after("120") == 120
    assert schedule.parse_retry_after("Sat, 14 Mar 2026 10:02:00 GMT", now) == 120
    assert schedule.parse_retry_after("Sat, 14 Mar 2026 09:00:00 GMT", now) == 0
    assert schedule.parse_retry_after("soon") is None
    assert schedule.parse_retry_after("") is None
    assert schedule.parse_retry_after(None) is None
    assert schedule.parse_retry_after("-5") is None


def test_tests_can_shorten_the_schedule_but_not_change_the_number_of_retries() -> None:
    policy = schedule.load(
        {
            "WEBHOOK_RETRY_DELAYS_S": "0,0.5,1",
            "WEBHOOK_RETRY_JITTER": "0",
            "WEBHOOK_TIMEOUT_S": "1",
            "WEBHOOK_LOCK_S": "2",
            "WEBHOOK_SWEEP_GRACE_S": "0",
        }
    )
    assert policy.delays_s == (0.0, 0.5, 1.0)
    assert (policy.jitter, policy.timeout_s, policy.lock_s, policy.sweep_grace_s) == (0.0, 1.0, 2.0, 0.0)
    for bad in ("1,2", "1,2,3,4", "a,b,c", "-1,2,3"):
        with pytest.raises(ConfigError, match="WEBHOOK_RETRY_DELAYS_S"):
            schedule.load({"WEBHOOK_RETRY_DELAYS_S": bad})
    with pytest.raises(ConfigError, match="WEBHOOK_TIMEOUT_S"):
        schedule.load({"WEBHOOK_TIMEOUT_S": "0"})
    with pytest.raises(ConfigError, match="WEBHOOK_RETRY_JITTER"):
        schedule.load({"WEBHOOK_RETRY_JITTER": "1.5"})
