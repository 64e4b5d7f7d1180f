"""The local EventBridge stand-in: scheduled handlers run when due, never before, errors never fatal."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from chalice import Chalice, Cron, Rate
from chalice.app import CloudWatchEvent

from infra.local.scheduler import CronSchedule, Scheduler, parse_schedule

pytestmark = pytest.mark.integration


def at(text: str) -> float:
    """An ISO-8601 UTC time as a Unix timestamp."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_rate_handler_runs_when_due_and_not_before() -> None:
    app = Chalice(app_name="scheduler-test")
    events: list[dict[str, Any]] = []
    contexts: list[Any] = []

    @app.schedule(Rate(1, unit=Rate.MINUTES))
    def sweep(event: CloudWatchEvent) -> None:
        events.append(event.to_dict())
        contexts.append(event.context)

    scheduler = Scheduler(app)
    start = at("2030-01-01T10:00:20")
    assert scheduler.run_due(now=start) == []  # the schedule starts here, like a rule created now
    assert scheduler.run_due(now=start + 59.9) == []
    assert scheduler.run_due(now=start + 60) == ["sweep"]
    assert scheduler.run_due(now=start + 60.5) == []
    assert scheduler.run_due(now=start + 119) == []
    assert scheduler.run_due(now=start + 120) == ["sweep"]
    # Missed runs are not caught up one by one, and the grid stays anchored at the start.
    assert scheduler.run_due(now=start + 330) == ["sweep"]
    assert scheduler.run_due(now=start + 359) == []
    assert scheduler.run_due(now=start + 360) == ["sweep"]

    assert len(events) == 4
    event = events[0]
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["time"] == "2030-01-01T10:01:20Z"
    assert event["detail"] == {}
    assert event["resources"][0].endswith(":rule/scheduler-test-local-sweep")
    assert {"version", "id", "account", "region"} <= set(event)
    assert len({e["id"] for e in events}) == 4
    assert contexts[0].function_name == "scheduler-test-local-sweep"
    assert contexts[0].get_remaining_time_in_millis() > 0


def test_rate_units_and_string_expressions() -> None:
    app = Chalice(app_name="scheduler-test")

    @app.schedule(Rate(2, unit=Rate.HOURS))
    def hourly(event: CloudWatchEvent) -> None:
        pass

    @app.schedule("rate(1 day)")
    def daily(event: CloudWatchEvent) -> None:
        pass

    scheduler = Scheduler(app)
    start = 1_000_000.0
    assert scheduler.run_due(now=start) == []
    assert scheduler.run_due(now=start + 7199) == []
    assert scheduler.run_due(now=start + 7200) == ["hourly"]
    assert scheduler.run_due(now=start + 86399) == ["hourly"]
    assert scheduler.run_due(now=start + 86400) == ["hourly", "daily"]


def test_cron_every_minute_fires_on_minute_boundaries() -> None:
    app = Chalice(app_name="scheduler-test")
    times: list[str] = []

    @app.schedule(Cron("*", "*", "*", "*", "?", "*"))
    def tick(event: CloudWatchEvent) -> None:
        times.append(event.time)

    scheduler = Scheduler(app)
    assert scheduler.run_due(now=at("2030-01-01T10:00:30")) == []
    assert scheduler.run_due(now=at("2030-01-01T10:00:59")) == []
    assert scheduler.run_due(now=at("2030-01-01T10:01:00")) == ["tick"]
    assert scheduler.run_due(now=at("2030-01-01T10:01:30")) == []
    assert scheduler.run_due(now=at("2030-01-01T10:02:05")) == ["tick"]
    assert times == ["2030-01-01T10:01:00Z", "2030-01-01T10:02:00Z"]


def test_cron_weekdays_and_steps() -> None:
    app = Chalice(app_name="scheduler-test")

    @app.schedule("cron(0 12 ? * MON-FRI *)")
    def weekday_noon(event: CloudWatchEvent) -> None:
        pass

    @app.schedule("cron(0/15 * * * ? *)")
    def quarterly(event: CloudWatchEvent) -> None:
        pass

    scheduler = Scheduler(app)
    # 2030-01-04 is a Friday.
    assert scheduler.run_due(now=at("2030-01-04T12:00:30")) == []
    assert scheduler.run_due(now=at("2030-01-04T12:14:59")) == []
    assert scheduler.run_due(now=at("2030-01-04T12:15:00")) == ["quarterly"]
    assert scheduler.run_due(now=at("2030-01-06T23:59:00")) == ["quarterly"]  # Sunday: no noon run
    assert scheduler.run_due(now=at("2030-01-07T12:00:00")) == ["weekday_noon", "quarterly"]


def test_cron_parsing() -> None:
    schedule = parse_schedule("cron(5,35 8-10/2 1 JAN,jul ? 2030)")
    assert isinstance(schedule, CronSchedule)
    assert schedule.next_due(at("2030-01-01T00:00:00")) == at("2030-01-01T08:05:00")
    assert schedule.next_due(at("2030-01-01T08:05:00")) == at("2030-01-01T08:35:00")
    assert schedule.next_due(at("2030-01-01T08:35:00")) == at("2030-01-01T10:05:00")
    assert schedule.next_due(at("2030-01-01T10:35:00")) == at("2030-07-01T08:05:00")
    assert schedule.next_due(at("2030-07-01T10:35:00")) is None
    for bad in ("cron(0 12 L * ? *)", "cron(0 12 * * 2#1 *)", "cron(0 12 * *)", "rate(0 minutes)", "daily"):
        with pytest.raises(ValueError):
            parse_schedule(bad)


def test_errors_are_logged_never_fatal(caplog: pytest.LogCaptureFixture) -> None:
    app = Chalice(app_name="scheduler-test")
    ran: list[str] = []

    @app.schedule(Rate(1, unit=Rate.MINUTES))
    def broken(event: CloudWatchEvent) -> None:
        raise RuntimeError("sweep failed")

    @app.schedule(Rate(1, unit=Rate.MINUTES))
    def healthy(event: CloudWatchEvent) -> None:
        ran.append(event.time)

    @app.schedule("cron(0 12 L * ? *)")
    def unsupported(event: CloudWatchEvent) -> None:
        pass

    with caplog.at_level(logging.ERROR, logger="race.scheduler"):
        scheduler = Scheduler(app)
        assert scheduler.run_due(now=0.0) == []
        assert scheduler.run_due(now=60.0) == ["broken", "healthy"]
        assert scheduler.run_due(now=120.0) == ["broken", "healthy"]

    assert len(ran) == 2
    messages = [r.getMessage() for r in caplog.records if r.name == "race.scheduler"]
    assert any("unsupported" in m and "skipped" in m for m in messages)
    assert sum("broken" in m and "failed" in m for m in messages) == 2


def test_thread_starts_and_stops() -> None:
    app = Chalice(app_name="scheduler-test")

    @app.schedule(Rate(1, unit=Rate.HOURS))
    def hourly(event: CloudWatchEvent) -> None:
        pass

    scheduler = Scheduler(app)
    scheduler.start_in_thread()
    thread = scheduler._thread
    assert thread is not None and thread.is_alive()
    scheduler.stop()
    assert not thread.is_alive()
