"""Local stand-in for EventBridge schedules: runs the app's `@app.schedule` handlers when they are due."""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import chalice
from chalice.app import ScheduledEventConfig, ScheduleExpression

from infra.local.sqs_poller import ACCOUNT_ID, LambdaContext, lambda_function_name

log = logging.getLogger("race.scheduler")

MAX_TICK_S = 1.0  # the thread re-checks at least this often, so stop() is prompt
CRON_HORIZON_DAYS = 5 * 366

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$", re.IGNORECASE)
_CRON = re.compile(r"^cron\((.*)\)$", re.IGNORECASE)
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
_WEEKDAYS = {name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)}


class RateSchedule:
    """`rate(N unit)`: every N units from the moment the schedule starts, like a rule created then."""

    def __init__(self, period_s: int) -> None:
        if period_s <= 0:
            raise ValueError("a rate must be positive")
        self.period_s = period_s
        self._start: float | None = None

    def first_due(self, now: float) -> float:
        self._start = now
        return now + self.period_s

    def next_due(self, now: float) -> float:
        assert self._start is not None
        return self._start + self.period_s * (math.floor((now - self._start) / self.period_s) + 1)


def _parse_cron_field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    """One cron field (`*`, `?`, `5`, `1,3`, `MON-FRI`, `*/15`, `10/5`, `1-30/2`) as the values it allows."""
    names = names or {}

    def value(token: str) -> int:
        number = names.get(token.upper())
        if number is None:
            if not token.isdigit():
                raise ValueError(f"unsupported cron value {token!r} (L, W and # are not supported locally)")
            number = int(token)
        if not low <= number <= high:
            raise ValueError(f"cron value {token!r} is outside {low}-{high}")
        return number

    allowed: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        if step_text and not step_text.isdigit():
            raise ValueError(f"bad cron step in {part!r}")
        step = int(step_text) if step_text else 1
        if step <= 0:
            raise ValueError(f"bad cron step in {part!r}")
        if base in ("*", "?"):
            first, last = low, high
        elif "-" in base:
            start, _, end = base.partition("-")
            first, last = value(start), value(end)
        else:
            first = value(base)
            last = high if step_text else first
        allowed.update(range(first, last + 1, step))
    return frozenset(allowed)


@dataclass(frozen=True)
class CronSchedule:
    """`cron(minutes hours day-of-month month day-of-week year)` in UTC, without L, W and #."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]  # EventBridge numbering: 1 = Sunday ... 7 = Saturday
    years: frozenset[int]

    @classmethod
    def parse(cls, fields_text: str) -> CronSchedule:
        fields = fields_text.split()
        if len(fields) != 6:
            raise ValueError(f"a cron expression has 6 fields, got {len(fields)}")
        return cls(
            minutes=_parse_cron_field(fields[0], 0, 59),
            hours=_parse_cron_field(fields[1], 0, 23),
            days_of_month=_parse_cron_field(fields[2], 1, 31),
            months=_parse_cron_field(fields[3], 1, 12, _MONTHS),
            days_of_week=_parse_cron_field(fields[4], 1, 7, _WEEKDAYS),
            years=_parse_cron_field(fields[5], 1970, 2199),
        )

    def first_due(self, now: float) -> float | None:
        return self.next_due(now)

    def next_due(self, now: float) -> float | None:
        """The first matching minute strictly after `now`, or None if none comes within the horizon."""
        start = datetime.fromtimestamp(now, UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.date()
        for _ in range(CRON_HORIZON_DAYS):
            if self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                        if candidate >= start:
                            return candidate.timestamp()
            day += timedelta(days=1)
        return None

    def _day_matches(self, day: date) -> bool:
        weekday = day.isoweekday() % 7 + 1  # isoweekday: Monday 1 ... Sunday 7
        return (
            day.year in self.years
            and day.month in self.months
            and day.day in self.days_of_month
            and weekday in self.days_of_week
        )


def parse_schedule(expression: str | ScheduleExpression) -> RateSchedule | CronSchedule:
    """A Chalice schedule expression (string or Rate/Cron object) as something that knows when it is due."""
    text = expression if isinstance(expression, str) else expression.to_string()
    rate = _RATE.match(text.strip())
    if rate:
        unit = rate.group(2).lower().rstrip("s")
        return RateSchedule(int(rate.group(1)) * _UNIT_S[unit])
    cron = _CRON.match(text.strip())
    if cron:
        return CronSchedule.parse(cron.group(1))
    raise ValueError(f"not a rate() or cron() expression: {text!r}")


@dataclass
class _Job:
    name: str
    expression: str
    schedule: RateSchedule | CronSchedule
    handler: Callable[[dict[str, Any], Any], Any]
    function_name: str
    due: float | None = None
    started: bool = False


class Scheduler:
    """Runs the app's scheduled handlers when due; each schedule starts at the first run_due() call."""

    def __init__(self, app: chalice.Chalice) -> None:
        self._region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self._jobs: list[_Job] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for source in app.event_sources:
            if not isinstance(source, ScheduledEventConfig):
                continue
            expression = source.schedule_expression
            text = expression if isinstance(expression, str) else expression.to_string()
            try:
                schedule = parse_schedule(expression)
            except ValueError as exc:
                log.error("schedule %s (%s) is skipped locally: %s", source.name, text, exc)
                continue
            self._jobs.append(
                _Job(
                    name=source.name,
                    expression=text,
                    schedule=schedule,
                    handler=app.handler_map[source.name],
                    function_name=lambda_function_name(app, source.name),
                )
            )

    def run_due(self, now: float | None = None) -> list[str]:
        """Run each handler whose time has come (once, however many runs were missed); returns their names."""
        now = time.time() if now is None else now
        ran: list[str] = []
        with self._lock:
            for job in self._jobs:
                if not job.started:
                    job.started = True
                    job.due = job.schedule.first_due(now)
                    continue
                if job.due is None or now < job.due:
                    continue
                scheduled_at = job.due
                job.due = job.schedule.next_due(now)
                self._invoke(job, scheduled_at)
                ran.append(job.name)
        return ran

    def start_in_thread(self) -> None:
        """Check the schedules in a daemon thread until stop()."""
        if self._thread is not None:
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(self._stop,), name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; a handler still running finishes on its own."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=MAX_TICK_S + 1.0)
        self._thread = None

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.run_due()
            except Exception:
                log.exception("scheduler tick failed")
            dues = [job.due for job in self._jobs if job.due is not None]
            wait_s = min([MAX_TICK_S, *(due - time.time() for due in dues)])
            stop.wait(max(0.01, wait_s))

    def _invoke(self, job: _Job, scheduled_at: float) -> None:
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT_ID,
            "time": datetime.fromtimestamp(scheduled_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self._region,
            "resources": [f"arn:aws:events:{self._region}:{ACCOUNT_ID}:rule/{job.function_name}"],
            "detail": {},
        }
        try:
            job.handler(event, LambdaContext(job.function_name, self._region))
        except Exception:
            log.exception("scheduled handler %s (%s) failed", job.name, job.expression)
