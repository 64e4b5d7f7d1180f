"""Laps, the hot path: one lap or a batch of up to 5,000 in one transaction, edits, deletes, lists and
run-sheet statistics.

Rules of a lap (POST and PATCH alike):
- `runSheetId` says where the lap belongs; its session and car are derived from the run sheet and
  are never sent. A run sheet (or driver) of another account is a 404, like a missing one.
- `lapNumber` > 0, unique per run sheet (a duplicate in the batch or against stored laps is a 409
  naming the run sheet and lap number); `lapTimeMs` from 1 ms to 24 h.
- `sectorTimesMs`, when given, are positive integers that add up to `lapTimeMs` give or take 1 ms
  per sector (each sector is rounded to the millisecond on its own, so three sectors may be 2 ms
  off a lap time rounded once).
- `flag` is the flag at the line as timing exports write it: GF (green), FCY (full course
  yellow), SC (safety car), SF (slow zone / safety flag in WEC files), FF (finish/chequered), YF
  (local yellow), RF (red); `custom` is a JSON object of at most 100 keys and 8 KB.
- Unknown fields are refused. A bad lap fails the whole batch: the 400 lists every bad
  (index, field) in `details`, and nothing is written.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.domain import changes, lap_stats, listing
from chalicelib.domain.caller import Caller
from chalicelib.domain.records import LAPS, RUN_SHEETS, encode
from chalicelib.domain.validation import MAX_NESTING, contains_nul, nesting_depth, parse_time
from chalicelib.errors import Conflict, Invalid, NotFound
from chalicelib.store import laps as store
from chalicelib.store import writes
from chalicelib.store.postgres import transaction

MAX_BATCH_LAPS = 5_000
MAX_BODY_BYTES = 5 * 1024 * 1024  # a 5,000-lap batch is ~1.5 MB; Lambda takes at most 6 MB per request
MAX_LAP_TIME_MS = 24 * 3600 * 1000
MAX_LAP_NUMBER = 100_000
MAX_SECTORS = 50
MAX_STINT = 1_000
MAX_FUEL_L = 9_999.99  # numeric(6, 2)
MAX_CUSTOM_KEYS = 100
MAX_CUSTOM_BYTES = 8 * 1024
MAX_DETAILS = 200  # problems listed in one 400 (the message says how many there were)
# A batch with more laps than this records every lap event (webhooks get each) but the session
# room hears one run_sheet.update per run sheet instead (lapEventsPushed: false; clients reload),
# as timing imports do: thousands of pushes per member help nobody.
ROOM_LAP_EVENTS_MAX = 500
FLAGS = ("GF", "FCY", "SC", "SF", "FF", "YF", "RF")
SOURCES = ("manual", "timing", "api")
_DRIVER_NUMBER = re.compile(r"^[0-9A-Za-z]{1,10}$")

LAP_QUERY = listing.Queryable(
    ranges=("lapNumber", "lapTimeMs", "pitTimeMs", "stint", "fuelL", "recordedAt", "createdAt", "updatedAt"),
    sorts=("runSheetId", "lapNumber", "lapTimeMs", "recordedAt", "createdAt", "updatedAt"),
    choices={"source": SOURCES},
    # Imported laps keep the file's flag as written, so filters take any flag-shaped value.
    patterns={"flag": r"[A-Z]{1,5}", "driverNumber": r"[0-9A-Za-z]{1,10}"},
)

Row = dict[str, Any]


class _Bad(Exception):
    """A field's value is wrong; the message follows the field name."""


# ---- reading laps --------------------------------------------------------------------------------


def _integer(value: Any, low: int, high: int) -> int:
    if type(value) is not int:  # bool is an int to Python, not to us
        raise _Bad("must be an integer")
    if not low <= value <= high:
        raise _Bad(f"must be from {low} to {high}")
    return value


def _uuid(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad("must be a UUID")
    canonical = _canonical_uuid(value)
    if canonical is None:
        raise _Bad("must be a UUID")
    return canonical


@functools.lru_cache(maxsize=4096)
def _canonical_uuid(value: str) -> str | None:
    """A batch names the same run sheet and drivers thousands of times: parse each once."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad("must be true or false")
    return value


def _sectors(value: Any) -> list[int]:
    if not isinstance(value, list) or len(value) > MAX_SECTORS:
        raise _Bad(f"must be a list of at most {MAX_SECTORS} sector times in ms")
    for ms in value:
        if type(ms) is not int or not 0 < ms <= MAX_LAP_TIME_MS:
            raise _Bad(f"must hold positive integers (ms) up to {MAX_LAP_TIME_MS}")
    return value


def _flag(value: Any) -> str:
    if value not in FLAGS:
        raise _Bad(f"must be one of {', '.join(FLAGS)} or null")
    return str(value)


def _driver_number(value: Any) -> str:
    if not isinstance(value, str) or not _DRIVER_NUMBER.match(value):
        raise _Bad("must be 1 to 10 letters or digits")
    return value


def _fuel(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_FUEL_L:
        raise _Bad(f"must be a number from 0 to {MAX_FUEL_L}")
    return round(float(value), 2)


def _tyre_set(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= 40 or "\x00" in value:
        raise _Bad("must be 1 to 40 characters")
    return value.strip()


def _recorded_at(value: Any) -> dt.datetime:
    try:
        return parse_time(value, "recordedAt")
    except Invalid as exc:
        raise _Bad("must be an ISO-8601 time with a zone, such as 2026-03-14T10:00:00Z") from exc


def _small_and_flat(value: dict[str, Any]) -> bool:
    """Cheaply certain to be within the limits: few keys, short keys, scalar or short text values
    (16 x (40 + 40 characters, each at most 6 bytes escaped, + punctuation) < 8 KB, one level deep)."""
    return len(value) <= 16 and all(
        len(key) <= 40
        and "\x00" not in key
        and (
            item is None
            or isinstance(item, bool | float)
            or (isinstance(item, int) and -(2**63) <= item < 2**63)
            or (isinstance(item, str) and len(item) <= 40 and "\x00" not in item)
        )
        for key, item in value.items()
    )


def _custom(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or len(value) > MAX_CUSTOM_KEYS:
        raise _Bad(f"must be a JSON object of at most {MAX_CUSTOM_KEYS} keys")
    if _small_and_flat(value):
        return value
    if nesting_depth(value) > MAX_NESTING:
        raise _Bad(f"is nested more than {MAX_NESTING} levels deep")
    if contains_nul(value):
        raise _Bad("must not contain NUL characters")
    if len(json.dumps(value, separators=(",", ":"))) > MAX_CUSTOM_BYTES:
        raise _Bad(f"must be at most {MAX_CUSTOM_BYTES // 1024} KB as JSON")
    return value


# wire field -> (column, reader, nullable: whether null clears it on PATCH)
_READERS: dict[str, tuple[str, Callable[[Any], Any], bool]] = {
    "runSheetId": ("run_sheet_id", _uuid, False),
    "lapNumber": ("lap_number", lambda v: _integer(v, 1, MAX_LAP_NUMBER), False),
    "lapTimeMs": ("lap_time_ms", lambda v: _integer(v, 1, MAX_LAP_TIME_MS), False),
    "sectorTimesMs": ("sector_times_ms", _sectors, False),
    "isInLap": ("is_in_lap", _boolean, False),
    "isOutLap": ("is_out_lap", _boolean, False),
    "isValid": ("is_valid", _boolean, False),
    "pitTimeMs": ("pit_time_ms", lambda v: _integer(v, 0, MAX_LAP_TIME_MS), True),
    "flag": ("flag", _flag, True),
    "driverId": ("driver_id", _uuid, True),
    "driverNumber": ("driver_number", _driver_number, True),
    "stint": ("stint", lambda v: _integer(v, 1, MAX_STINT), True),
    "fuelL": ("fuel_l", _fuel, True),
    "tyreSet": ("tyre_set", _tyre_set, True),
    "recordedAt": ("recorded_at", _recorded_at, False),
    "custom": ("custom", _custom, False),
}
WRITABLE = frozenset(_READERS)
REQUIRED = ("runSheetId", "lapNumber", "lapTimeMs")
_DERIVED = {"sessionId": "session", "carId": "car"}
_CLEARED_BY_NULL: dict[str, Any] = {"sectorTimesMs": [], "custom": {}}  # not-null columns that null empties


def _unknown(name: str, creating: bool) -> str:
    if name in _DERIVED:
        return f"{name} is derived from the run sheet; do not send it"
    if name == "runSheetId" and not creating:
        return "runSheetId cannot be changed; delete the lap and create it in the other run sheet"
    return f"unknown field {name[:60]}; allowed: {', '.join(sorted(WRITABLE))}"


def _sector_problem(lap_time_ms: int, sectors: list[int]) -> str | None:
    if not sectors:
        return None
    total = sum(sectors)
    if abs(total - lap_time_ms) > len(sectors):
        return (
            f"sectorTimesMs add up to {total} ms but lapTimeMs is {lap_time_ms} ms "
            f"(allowed: 1 ms per sector for rounding)"
        )
    return None


def read_lap(item: Any, *, creating: bool) -> tuple[Row, list[tuple[str, str]]]:
    """A lap's columns from its wire object, and every (field, message) wrong with it."""
    if not isinstance(item, dict):
        return {}, [("", "a lap must be a JSON object")]
    problems: list[tuple[str, str]] = []
    columns: Row = {}
    for name, value in item.items():
        spec = _READERS.get(name)
        if spec is None or (name == "runSheetId" and not creating):
            problems.append((name[:60], _unknown(name, creating)))
            continue
        column, reader, nullable = spec
        if value is None:
            if creating:
                continue  # null on create: the default
            if nullable:
                columns[column] = None
            elif name in _CLEARED_BY_NULL:
                columns[column] = _CLEARED_BY_NULL[name]
            else:
                problems.append((name, f"{name} must not be null"))
            continue
        try:
            columns[column] = reader(value)
        except _Bad as bad:
            problems.append((name, f"{name} {bad}"))
    if creating:
        problems += [(name, f"{name} is required") for name in REQUIRED if item.get(name) is None]
        if "lap_time_ms" in columns and "sector_times_ms" in columns:
            problem = _sector_problem(columns["lap_time_ms"], columns["sector_times_ms"])
            if problem:
                problems.append(("sectorTimesMs", problem))
    return columns, problems


def _invalid(problems: list[dict[str, Any]], batch: bool) -> Invalid:
    first = problems[0]
    if not batch:
        return Invalid(first["message"], field=first["field"] or "body", details=problems[:MAX_DETAILS])
    where = f"laps[{first['index']}]" + (f".{first['field']}" if first["field"] else "")
    count = len({p["index"] for p in problems})
    return Invalid(
        f"{count} of the laps are invalid; first, laps[{first['index']}]: {first['message']}",
        field=where,
        details=problems[:MAX_DETAILS],
    )


def read_new_laps(payload: Any) -> tuple[list[Row], bool]:
    """The laps of a POST body (one lap object, or {"laps": [...]}) and whether it was a batch."""
    if isinstance(payload, dict) and "laps" in payload:
        if set(payload) != {"laps"}:
            extra = sorted(set(payload) - {"laps"})[0]
            raise Invalid(f'a batch is {{"laps": [...]}} only; unknown field {extra[:60]}', field=extra[:60])
        items = payload["laps"]
        if not isinstance(items, list) or not items:
            raise Invalid("laps must be a non-empty list of lap objects", field="laps")
        if len(items) > MAX_BATCH_LAPS:
            raise Invalid(f"a batch holds at most {MAX_BATCH_LAPS} laps, not {len(items)}; split it", field="laps")
        batch = True
    elif isinstance(payload, dict):
        items, batch = [payload], False
    else:
        raise Invalid('send one lap object or {"laps": [...]}', field="body")
    laps: list[Row] = []
    problems: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        columns, wrong = read_lap(item, creating=True)
        problems += [{"index": index, "field": field, "message": message} for field, message in wrong]
        laps.append(columns)
    if problems:
        raise _invalid(problems, batch)
    seen: dict[tuple[str, int], int] = {}
    for index, lap in enumerate(laps):
        key = (lap["run_sheet_id"], lap["lap_number"])
        if key in seen:
            raise Conflict(
                f"lap {key[1]} of run sheet {key[0]} is in the batch twice (laps[{seen[key]}] and laps[{index}])"
            )
        seen[key] = index
    return laps, batch


# ---- writing laps --------------------------------------------------------------------------------


def _source(caller: Caller) -> str:
    return "api" if caller.api_key_id else "manual"


def _where(index: int, batch: bool) -> str:
    return f" (laps[{index}])" if batch else ""


def create(caller: Caller, payload: Any) -> dict[str, Any]:
    """Insert one lap (answers the lap) or a batch (answers {"created", "items": [{id, runSheetId,
    lapNumber}]}) in one transaction, recording a lap.create event per lap."""
    caller.require("engineer")
    laps, batch = read_new_laps(payload)
    account_id = caller.account_id
    with changes.write(caller) as (conn, recorder):
        sheets = store.run_sheets(conn, account_id, list(dict.fromkeys(lap["run_sheet_id"] for lap in laps)))
        for index, lap in enumerate(laps):
            if lap["run_sheet_id"] not in sheets:
                raise NotFound(f"runSheetId {lap['run_sheet_id']}: no such run sheet{_where(index, batch)}")
        driver_ids = list(dict.fromkeys(lap["driver_id"] for lap in laps if lap.get("driver_id")))
        drivers = store.driver_numbers(conn, account_id, driver_ids) if driver_ids else {}
        for index, lap in enumerate(laps):
            if lap.get("driver_id") and lap["driver_id"] not in drivers:
                raise NotFound(f"driverId {lap['driver_id']}: no such driver{_where(index, batch)}")
        now = next(iter(sheets.values()))["now"]
        rows = [_new_row(lap, sheets[lap["run_sheet_id"]], drivers, account_id, _source(caller), now) for lap in laps]
        now_text = encode(now)
        wires = [_wire(row, now, now_text) for row in rows]
        quiet = len(rows) > ROOM_LAP_EVENTS_MAX
        events = [(wire, row["session_id"]) for wire, row in zip(wires, rows, strict=True)]
        with store.taken_lap_numbers_refused():  # a few laps go in the same round trip as their events
            recorder.record_many("lap", "create", events, push=not quiet, along=lambda: store.insert_laps(conn, rows))
        if quiet:
            _tell_rooms(recorder, sheets, rows)
    if not batch:
        return wires[0]
    return {
        "created": len(rows),
        "items": [{"id": row["id"], "runSheetId": row["run_sheet_id"], "lapNumber": row["lap_number"]} for row in rows],
    }


def _new_row(
    lap: Row, sheet: Row, drivers: Mapping[str, str | None], account_id: str, source: str, now: dt.datetime
) -> Row:
    row: Row = {
        "id": str(uuid.uuid4()),
        "account_id": account_id,
        "session_id": sheet["session_id"],
        "car_id": sheet["car_id"],
        "sector_times_ms": [],
        "is_in_lap": False,
        "is_out_lap": False,
        "is_valid": True,
        "pit_time_ms": None,
        "flag": None,
        "driver_id": None,
        "driver_number": None,
        "stint": None,
        "fuel_l": None,
        "tyre_set": None,
        "recorded_at": now,
        "custom": {},
        "source": source,
        "created_at": now,
        "updated_at": now,
        **lap,
    }
    if row["driver_id"] and "driver_number" not in lap:
        row["driver_number"] = drivers.get(row["driver_id"])  # the driver's own number, unless one was sent
    return row


_WIRE_NAMES = tuple((spec.name, spec.column) for spec in LAPS.fields)


def _wire(row: Row, now: dt.datetime, now_text: str) -> dict[str, Any]:
    """LAPS.to_wire for a row built here: its values are wire-typed already, except times."""
    wire = {name: row[column] for name, column in _WIRE_NAMES}
    wire["createdAt"] = wire["updatedAt"] = now_text
    recorded = row["recorded_at"]
    wire["recordedAt"] = now_text if recorded is now else encode(recorded)
    return wire


def _tell_rooms(recorder: changes.Recorder, sheets: Mapping[str, Row], rows: list[Row]) -> None:
    """A big batch: each run sheet's room hears one run_sheet.update saying how many laps arrived."""
    added: dict[str, int] = {}
    for row in rows:
        added[row["run_sheet_id"]] = added.get(row["run_sheet_id"], 0) + 1
    for sheet_id, count in added.items():
        sheet = sheets[sheet_id]
        data = {**RUN_SHEETS.to_wire(sheet), "lapsAdded": count, "lapEventsPushed": False}
        recorder.record("run_sheet", "update", data, session_id=str(sheet["session_id"]))


def update(caller: Caller, lap_id: str, payload: Any) -> dict[str, Any]:
    """Change the fields sent (null clears an optional one); records lap.update."""
    caller.require("engineer")
    lap_id = listing.parse_uuid(lap_id, "id")
    columns, problems = read_lap(payload, creating=False)
    if problems:
        field = problems[0][0] or "body"
        raise Invalid(
            problems[0][1], field=field, details=[{"field": f, "message": m} for f, m in problems[:MAX_DETAILS]]
        )
    if not columns:
        raise Invalid("nothing to update: send at least one field", field="body")
    with changes.write(caller) as (conn, recorder):
        current = writes.lock(conn, LAPS, caller.account_id, lap_id)
        if current is None:
            raise NotFound(f"lap {lap_id} not found")
        if "lap_time_ms" in columns or "sector_times_ms" in columns:
            merged = {**current, **columns}
            problem = _sector_problem(merged["lap_time_ms"], list(merged["sector_times_ms"] or []))
            if problem:
                raise Invalid(problem, field="sectorTimesMs")
        if columns.get("driver_id"):
            drivers = store.driver_numbers(conn, caller.account_id, [columns["driver_id"]])
            if columns["driver_id"] not in drivers:
                raise NotFound(f"driverId {columns['driver_id']}: no such driver")
            if "driver_number" not in columns:
                columns["driver_number"] = drivers[columns["driver_id"]]
        try:
            row = writes.update(conn, LAPS, caller.account_id, lap_id, columns)
        except Conflict as exc:
            raise Conflict(
                f"lap {columns.get('lap_number')} of run sheet {current['run_sheet_id']} already exists"
            ) from exc
        assert row is not None
        data = LAPS.to_wire(row)
        recorder.record("lap", "update", data, session_id=str(row["session_id"]))
    return data


def delete(caller: Caller, lap_id: str) -> dict[str, Any]:
    """Delete a lap; records lap.delete with the lap as it was."""
    caller.require("engineer")
    lap_id = listing.parse_uuid(lap_id, "id")
    with changes.write(caller) as (conn, recorder):
        current = writes.lock(conn, LAPS, caller.account_id, lap_id)
        if current is None:
            raise NotFound(f"lap {lap_id} not found")
        writes.delete_where(conn, "laps", "id", [lap_id], caller.account_id)
        data = {"id": lap_id, "deleted": {"laps": 1}}
        recorder.record("lap", "delete", {**LAPS.to_wire(current), **data}, session_id=str(current["session_id"]))
    return data


# ---- reading laps back ---------------------------------------------------------------------------


def stats(caller: Caller, run_sheet_id: str) -> dict[str, Any]:
    """GET /run-sheets/{id}/stats: best lap, theoretical best, stints (average, degradation), drivers."""
    run_sheet_id = listing.parse_uuid(run_sheet_id, "id")
    with transaction() as conn:
        sheet = store.stats_run_sheet(conn, caller.account_id, run_sheet_id)
        if sheet is None:
            raise NotFound(f"run sheet {run_sheet_id} not found")
        laps = [lap_stats.StatLap.from_row(row) for row in store.stats_laps(conn, caller.account_id, run_sheet_id)]
    return {
        "runSheetId": run_sheet_id,
        "sessionId": str(sheet["session_id"]),
        "carId": str(sheet["car_id"]),
        **lap_stats.summary(laps),
    }
