"""How each stored resource looks on the wire: its fields, their kinds, filters and list order."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Field:
    name: str  # camelCase name on the wire
    column: str
    kind: str = "text"  # uuid | text | int | bool | time | json | int_array | decimal
    filter: bool = False  # may be used as an equality filter (?eventId=...)


@dataclass(frozen=True)
class Resource:
    name: str
    table: str
    fields: tuple[Field, ...]
    order: tuple[str, ...] = ("created_at", "id")  # keyset order; the last column is unique
    # Filters on a parent of the row: wire name -> SQL condition with one %s placeholder.
    parent_filters: tuple[tuple[str, str], ...] = ()

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def filters(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.filter)

    def to_wire(self, row: dict[str, Any]) -> dict[str, Any]:
        return {f.name: encode(row[f.column]) for f in self.fields if f.column in row}


def encode(value: Any) -> Any:
    """A stored value as JSON: UTC ISO-8601 times, string UUIDs, numbers for decimals."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def _f(name: str, column: str, kind: str = "text", filter: bool = False) -> Field:
    return Field(name, column, kind, filter)


_IN_EVENT = "session_id IN (SELECT s.id FROM sessions s WHERE s.event_id = %s)"
_STAMPS = (_f("createdAt", "created_at", "time"), _f("updatedAt", "updated_at", "time"))

EVENTS = Resource(
    "event",
    "events",
    (
        _f("id", "id", "uuid"),
        _f("name", "name"),
        _f("track", "track"),
        _f("startsAt", "starts_at", "time"),
        _f("endsAt", "ends_at", "time"),
        _f("parameters", "parameters", "json"),
        *_STAMPS,
    ),
)

SESSIONS = Resource(
    "session",
    "sessions",
    (
        _f("id", "id", "uuid"),
        _f("eventId", "event_id", "uuid", filter=True),
        _f("name", "name"),
        _f("type", "type", filter=True),
        _f("startsAt", "starts_at", "time"),
        _f("endsAt", "ends_at", "time"),
        _f("parameters", "parameters", "json"),
        *_STAMPS,
    ),
)

CARS = Resource(
    "car",
    "cars",
    (
        _f("id", "id", "uuid"),
        _f("eventId", "event_id", "uuid", filter=True),
        _f("number", "number", filter=True),
        _f("class", "class", filter=True),
        _f("team", "team"),
        _f("liveryColor", "livery_color"),
        _f("isCompetitor", "is_competitor", "bool", filter=True),
        _f("parameters", "parameters", "json"),
        *_STAMPS,
    ),
)

DRIVERS = Resource(
    "driver",
    "drivers",
    (
        _f("id", "id", "uuid"),
        _f("carId", "car_id", "uuid", filter=True),
        _f("name", "name"),
        _f("number", "number"),
        *_STAMPS,
    ),
)

RUN_SHEETS = Resource(
    "run_sheet",
    "run_sheets",
    (
        _f("id", "id", "uuid"),
        _f("sessionId", "session_id", "uuid", filter=True),
        _f("carId", "car_id", "uuid", filter=True),
        _f("setup", "setup", "json"),
        _f("setupChange", "setup_change", "json"),
        _f("tyres", "tyres", "json"),
        _f("wear", "wear", "json"),
        _f("ambient", "ambient", "json"),
        _f("engineerNotes", "engineer_notes"),
        _f("overview", "overview", "json"),
        _f("lapColumns", "lap_columns", "json"),
        *_STAMPS,
    ),
    parent_filters=(("eventId", _IN_EVENT),),
)

LAPS = Resource(
    "lap",
    "laps",
    (
        _f("id", "id", "uuid"),
        _f("runSheetId", "run_sheet_id", "uuid", filter=True),
        _f("sessionId", "session_id", "uuid", filter=True),
        _f("carId", "car_id", "uuid", filter=True),
        _f("lapNumber", "lap_number", "int", filter=True),
        _f("lapTimeMs", "lap_time_ms", "int"),
        _f("sectorTimesMs", "sector_times_ms", "int_array"),
        _f("isInLap", "is_in_lap", "bool", filter=True),
        _f("isOutLap", "is_out_lap", "bool", filter=True),
        _f("isValid", "is_valid", "bool", filter=True),
        _f("pitTimeMs", "pit_time_ms", "int"),
        _f("flag", "flag", filter=True),
        _f("driverId", "driver_id", "uuid", filter=True),
        _f("driverNumber", "driver_number", filter=True),
        _f("stint", "stint", "int", filter=True),
        _f("fuelL", "fuel_l", "decimal"),
        _f("tyreSet", "tyre_set"),
        _f("recordedAt", "recorded_at", "time"),
        _f("custom", "custom", "json"),
        _f("source", "source", filter=True),
        *_STAMPS,
    ),
    order=("run_sheet_id", "lap_number", "id"),
    parent_filters=(("eventId", _IN_EVENT),),
)

API_KEYS = Resource(
    "api_key",
    "api_keys",
    (
        _f("id", "id", "uuid"),
        _f("name", "name"),
        _f("prefix", "prefix"),
        _f("role", "role"),
        _f("createdBy", "created_by", "uuid"),  # the user answerable for it: it never outranks them
        _f("createdAt", "created_at", "time"),
        _f("lastUsedAt", "last_used_at", "time"),
        _f("expiresAt", "expires_at", "time"),
    ),
)

SETUPS = Resource(
    "setup",
    "setups",
    (
        _f("id", "id", "uuid"),
        _f("carId", "car_id", "uuid", filter=True),
        _f("runSheetId", "run_sheet_id", "uuid", filter=True),
        _f("name", "name"),
        _f("values", "values", "json"),
        _f("notes", "notes"),
        *_STAMPS,
    ),
)

CAR_ISSUES = Resource(
    "issue",
    "car_issues",
    (
        _f("id", "id", "uuid"),
        _f("carId", "car_id", "uuid", filter=True),
        _f("sessionId", "session_id", "uuid", filter=True),
        _f("title", "title"),
        _f("description", "description"),
        _f("severity", "severity", filter=True),
        _f("status", "status", filter=True),
        _f("reportedBy", "reported_by", "uuid", filter=True),
        _f("runSheetId", "run_sheet_id", "uuid", filter=True),
        _f("lapId", "lap_id", "uuid", filter=True),
        *_STAMPS,
    ),
    parent_filters=(("eventId", "car_id IN (SELECT c.id FROM cars c WHERE c.event_id = %s)"),),
)

BOARD_CARDS = Resource(
    "board_card",
    "board_cards",
    (
        _f("id", "id", "uuid"),
        _f("eventId", "event_id", "uuid", filter=True),
        _f("sessionId", "session_id", "uuid", filter=True),
        _f("title", "title"),
        _f("body", "body"),
        _f("column", "column_name", filter=True),
        _f("position", "position", "int"),
        *_STAMPS,
    ),
)

PLANNED_STINTS = Resource(
    "planned_stint",
    "planned_stints",
    (
        _f("id", "id", "uuid"),
        _f("eventId", "event_id", "uuid", filter=True),
        _f("carId", "car_id", "uuid", filter=True),
        _f("stint", "stint", "int"),
        _f("driverId", "driver_id", "uuid"),
        _f("plannedLaps", "planned_laps", "int"),
        _f("tyreSet", "tyre_set"),
        _f("fuelL", "fuel_l", "decimal"),
        *_STAMPS,
    ),
    order=("car_id", "stint", "id"),
)
