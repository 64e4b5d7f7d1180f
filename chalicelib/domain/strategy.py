"""Race strategy: the planned stints of an event next to the stints its laps actually show."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import mean
from typing import Any

from chalicelib.domain import changes, listing
from chalicelib.domain.caller import Caller
from chalicelib.domain.records import CARS, DRIVERS, EVENTS, PLANNED_STINTS, SESSIONS
from chalicelib.domain.validation import Body
from chalicelib.errors import Invalid, NotFound
from chalicelib.store import records
from chalicelib.store.postgres import execute, fetch_all, fetch_one, transaction

MAX_PLANNED_STINTS = 500


@dataclass(frozen=True)
class LapRow:
    lap_number: int
    lap_time_ms: int
    is_in_lap: bool
    is_out_lap: bool
    is_valid: bool
    driver: str | None
    fuel_l: float | None = None  # fuel on board as the lap recorded it


def actual_stints(laps: list[LapRow]) -> list[dict[str, Any]]:
    """Split one car's laps (in lap order) into stints: a stint ends with an in lap."""
    stints: list[list[LapRow]] = []
    current: list[LapRow] = []
    for lap in laps:
        current.append(lap)
        if lap.is_in_lap:
            stints.append(current)
            current = []
    if current:
        stints.append(current)
    answer = []
    for number, stint in enumerate(stints, start=1):
        racing = [lap.lap_time_ms for lap in stint if lap.is_valid and not lap.is_in_lap and not lap.is_out_lap]
        drivers = Counter(lap.driver for lap in stint if lap.driver)
        fuel = [lap.fuel_l for lap in stint if lap.fuel_l is not None]
        answer.append(
            {
                "stint": number,
                "firstLap": stint[0].lap_number,
                "lastLap": stint[-1].lap_number,
                "laps": len(stint),
                "driver": drivers.most_common(1)[0][0] if drivers else None,
                "bestLapMs": min(racing) if racing else None,
                "averageLapMs": round(mean(racing)) if racing else None,
                "endedInPit": stint[-1].is_in_lap,
                "fuelStartL": fuel[0] if fuel else None,
                "fuelEndL": fuel[-1] if fuel else None,
                "fuelUsedL": round(fuel[0] - fuel[-1], 2) if len(fuel) > 1 else None,
            }
        )
    return answer


def compare(planned: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stint by stint: planned laps vs actual laps (negative delta = shorter than planned)."""
    by_number = {s["stint"]: s for s in actual}
    rows = []
    for plan in planned:
        done = by_number.get(plan["stint"])
        rows.append(
            {
                "stint": plan["stint"],
                "plannedLaps": plan["plannedLaps"],
                "actualLaps": done["laps"] if done else None,
                "deltaLaps": done["laps"] - plan["plannedLaps"] if done else None,
            }
        )
    return rows


def get(caller: Caller, event_id: str, params: Mapping[str, str]) -> dict[str, Any]:
    event_id = listing.parse_uuid(event_id, "id")
    unknown = set(params) - {"sessionId"}
    if unknown:
        raise Invalid(f"unknown query parameter {sorted(unknown)[0]!r}; allowed: sessionId", field=sorted(unknown)[0])
    with transaction() as conn:
        if records.get_row(conn, EVENTS, caller.account_id, event_id) is None:
            raise NotFound(f"event {event_id} not found")
        session_id = _race_session(conn, caller, event_id, params.get("sessionId"))
        plan = [
            PLANNED_STINTS.to_wire(r)
            for r in fetch_all(conn, "strategy_plan", {"account_id": caller.account_id, "event_id": event_id})
        ]
        laps = (
            fetch_all(conn, "strategy_laps", {"account_id": caller.account_id, "session_id": session_id})
            if session_id
            else []
        )
    per_car: dict[str, list[LapRow]] = {}
    for row in laps:
        driver = str(row["driver_id"]) if row["driver_id"] else row["driver_number"]
        per_car.setdefault(str(row["car_id"]), []).append(
            LapRow(
                row["lap_number"],
                row["lap_time_ms"],
                row["is_in_lap"],
                row["is_out_lap"],
                row["is_valid"],
                driver,
                float(row["fuel_l"]) if row["fuel_l"] is not None else None,
            )
        )
    cars = sorted({*per_car, *(p["carId"] for p in plan)})
    return {
        "eventId": event_id,
        "sessionId": session_id,
        "cars": [
            {
                "carId": car_id,
                "planned": [p for p in plan if p["carId"] == car_id],
                "actual": (actual := actual_stints(per_car.get(car_id, []))),
                "comparison": compare([p for p in plan if p["carId"] == car_id], actual),
            }
            for car_id in cars
        ],
    }


def _race_session(conn: Any, caller: Caller, event_id: str, wanted: str | None) -> str | None:
    if wanted:
        session_id = listing.parse_uuid(wanted, "sessionId")
        session = records.get_row(conn, SESSIONS, caller.account_id, session_id)
        if session is None or str(session["event_id"]) != event_id:
            raise NotFound(f"session {session_id} not found in this event")
        return session_id
    row = fetch_one(conn, "strategy_race_session", {"account_id": caller.account_id, "event_id": event_id})
    return str(row["id"]) if row else None


def replace_plan(caller: Caller, event_id: str, payload: Any) -> dict[str, Any]:
    """PUT /events/{id}/strategy: the event's whole plan, replaced in one transaction."""
    caller.require("engineer")
    event_id = listing.parse_uuid(event_id, "id")
    body = Body(payload, allowed={"stints"})
    stints = body.payload.get("stints")
    if not isinstance(stints, list) or len(stints) > MAX_PLANNED_STINTS:
        body.fail(f"stints must be a list of at most {MAX_PLANNED_STINTS} planned stints", "stints")
    planned = []
    seen: set[tuple[str, int]] = set()
    for i, item in enumerate(stints):
        stint = Body(
            item, allowed={"carId", "stint", "driverId", "plannedLaps", "tyreSet", "fuelL"}, prefix=f"stints[{i}]."
        )
        row = {
            "car_id": stint.uuid("carId"),
            "stint": stint.integer("stint", minimum=1, maximum=1000),
            "driver_id": stint.uuid("driverId", required=False),
            "planned_laps": stint.integer("plannedLaps", minimum=1, maximum=1000),
            "tyre_set": stint.text("tyreSet", required=False, max_len=40),
            "fuel_l": stint.number("fuelL", required=False, minimum=0, maximum=1000),
        }
        if (row["car_id"], row["stint"]) in seen:
            stint.fail(f"stint {row['stint']} is planned twice for this car", "stint")
        seen.add((row["car_id"], row["stint"]))
        planned.append(row)
    with changes.write(caller) as (conn, recorder):
        if records.get_row(conn, EVENTS, caller.account_id, event_id) is None:
            raise NotFound(f"event {event_id} not found")
        for i, row in enumerate(planned):
            car = records.get_row(conn, CARS, caller.account_id, row["car_id"])
            if car is None or str(car["event_id"]) != event_id:
                raise Invalid("carId must be a car of this event", field=f"stints[{i}].carId")
            if row["driver_id"] and records.get_row(conn, DRIVERS, caller.account_id, row["driver_id"]) is None:
                raise NotFound(f"stints[{i}].driverId {row['driver_id']}: no such driver")
        execute(conn, "strategy_clear_plan", {"account_id": caller.account_id, "event_id": event_id})
        saved = [
            PLANNED_STINTS.to_wire(r)
            for r in (
                fetch_one(conn, "strategy_insert_stint", {**row, "account_id": caller.account_id, "event_id": event_id})
                for row in planned
            )
            if r
        ]
        recorder.record("strategy", "update", {"id": event_id, "eventId": event_id, "stints": saved})
    return {"eventId": event_id, "stints": saved}
