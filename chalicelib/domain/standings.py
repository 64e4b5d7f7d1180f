"""Session standings: every car of a session in order, with gaps, pit stops, stint and driver.

Order on the road: in a race, laps completed then elapsed time; in any other session, best lap
(as timing officials count it, see lap_stats.best_lap). Elapsed time is the official export's
(`custom.elapsedMs` of imported laps) and, for laps without one, the running sum of lap times.
Where official results were imported (timing import of a `03_...Results` file), they take
precedence: their position, status, total time (penalties included) and laps; each car keeps its
`roadPosition` so a client can show where the official order differs, and `penaltyMs` is the
official total time minus the elapsed time on the road (same laps). Gaps in a race are laps when
the cars are laps apart, else milliseconds of (official, else elapsed) time; elsewhere, best lap
differences.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain import lap_stats, listing
from chalicelib.domain.caller import Caller
from chalicelib.errors import NotFound
from chalicelib.store.postgres import fetch_all, fetch_one, transaction

Row = Mapping[str, Any]


@dataclass
class CarStanding:
    number: str
    car_id: str | None = None
    car_class: str | None = None
    team: str | None = None
    is_ours: bool = False
    laps: int = 0
    elapsed_ms: int | None = None
    best_lap_ms: int | None = None
    best_lap_number: int | None = None
    last_lap_ms: int | None = None
    pit_stops: int = 0
    stint: int | None = None
    driver_number: str | None = None
    driver_name: str | None = None
    official: Row | None = None
    road_position: int | None = None
    position: int | None = None
    gaps: dict[str, Any] = field(default_factory=dict)

    @property
    def ranked_laps(self) -> int:
        return int(self.official["laps"]) if self.official and self.official["laps"] is not None else self.laps

    @property
    def ranked_time_ms(self) -> int | None:
        if self.official and self.official["total_time_ms"] is not None:
            return int(self.official["total_time_ms"])
        return self.elapsed_ms

    @property
    def penalty_ms(self) -> int | None:
        """Official total time minus the time on the road, when both count the same laps."""
        if not self.official or self.official["total_time_ms"] is None or self.elapsed_ms is None:
            return None
        if self.official["laps"] != self.laps:
            return None
        return int(self.official["total_time_ms"]) - self.elapsed_ms


def elapsed_through(laps: Sequence[Row]) -> list[int]:
    """Elapsed time at the end of each lap: the file's where it has one, else the previous plus the lap time."""
    running, out = 0, []
    for lap in laps:
        running = lap["elapsed_ms"] if lap["elapsed_ms"] is not None else running + lap["lap_time_ms"]
        out.append(running)
    return out


def car_from_laps(car: Row, laps: Sequence[Row]) -> CarStanding:
    """One car's figures from its laps (in lap order)."""
    standing = CarStanding(
        number=car["number"],
        car_id=str(car["id"]),
        car_class=car["class"],
        team=car["team"],
        is_ours=not car["is_competitor"],
    )
    if not laps:
        return standing
    running = elapsed_through(laps)[-1]
    last = laps[-1]
    best, _ = lap_stats.best_lap([_stat_lap(lap) for lap in laps])
    in_laps = [lap["lap_number"] for lap in laps if lap["is_in_lap"]]
    standing.laps = last["lap_number"]
    standing.elapsed_ms = running
    standing.last_lap_ms = last["lap_time_ms"]
    standing.best_lap_ms = best.lap_time_ms if best else None
    standing.best_lap_number = best.lap_number if best else None
    standing.pit_stops = len(in_laps)
    standing.stint = last["stint"] or 1 + sum(1 for number in in_laps if number < last["lap_number"])
    standing.driver_number = last["driver_number"]
    standing.driver_name = last["driver_name"]
    return standing


def _stat_lap(lap: Row) -> lap_stats.StatLap:
    return lap_stats.StatLap(
        "",
        lap["lap_number"],
        lap["lap_time_ms"],
        (),
        lap["is_in_lap"],
        lap["is_out_lap"],
        lap["is_valid"],
        None,
        lap["driver_number"],
        lap["stint"],
        bool(lap["official_best"]),
    )


def _race_key(car: CarStanding) -> tuple[int, bool, int, str]:
    return -car.laps, car.elapsed_ms is None, car.elapsed_ms or 0, car.number


def _best_lap_key(car: CarStanding) -> tuple[bool, int, int, str]:
    return car.best_lap_ms is None, car.best_lap_ms or 0, -car.laps, car.number


def road_order(cars: Iterable[CarStanding], is_race: bool) -> list[CarStanding]:
    return sorted(cars, key=_race_key) if is_race else sorted(cars, key=_best_lap_key)


def _gap(car: CarStanding, other: CarStanding, is_race: bool) -> dict[str, int | None]:
    if car is other:
        return {"ms": None, "laps": None}
    if is_race:
        if other.ranked_laps > car.ranked_laps:
            return {"ms": None, "laps": other.ranked_laps - car.ranked_laps}
        if car.ranked_time_ms is None or other.ranked_time_ms is None:
            return {"ms": None, "laps": None}
        return {"ms": car.ranked_time_ms - other.ranked_time_ms, "laps": 0}
    if car.best_lap_ms is None or other.best_lap_ms is None:
        return {"ms": None, "laps": None}
    return {"ms": car.best_lap_ms - other.best_lap_ms, "laps": None}


def rank(cars: list[CarStanding], is_race: bool) -> list[CarStanding]:
    """Positions (official where imported), road positions and gaps, in standings order."""
    for position, car in enumerate(road_order(cars, is_race), start=1):
        car.road_position = position if car.car_id else None
    if any(car.official for car in cars):
        road = {id(car): i for i, car in enumerate(road_order(cars, is_race))}
        ordered = sorted(
            cars,
            key=lambda c: (
                c.official is None or c.official["position"] is None,
                c.official["position"] if c.official and c.official["position"] is not None else 0,
                road[id(c)],
            ),
        )
    else:
        ordered = road_order(cars, is_race)
    class_leaders: dict[str | None, CarStanding] = {}
    for position, car in enumerate(ordered, start=1):
        car.position = position
        leader = class_leaders.setdefault(car.car_class, car)
        car.gaps = {
            "leader": _gap(car, ordered[0], is_race),
            "ahead": _gap(car, ordered[position - 2] if position > 1 else car, is_race),
            "classLeader": _gap(car, leader, is_race),
            "classPosition": sum(1 for c in ordered[:position] if c.car_class == car.car_class),
        }
    return ordered


def wire(car: CarStanding) -> dict[str, Any]:
    official = car.official or {}
    return {
        "position": car.position,
        "classPosition": car.gaps["classPosition"],
        "roadPosition": car.road_position,
        "carId": car.car_id,
        "number": car.number,
        "class": car.car_class,
        "team": car.team,
        "isOurs": car.is_ours,
        "laps": car.laps,
        "bestLapMs": car.best_lap_ms,
        "bestLapNumber": car.best_lap_number,
        "lastLapMs": car.last_lap_ms,
        "elapsedMs": car.elapsed_ms,
        "gapToLeaderMs": car.gaps["leader"]["ms"],
        "gapToLeaderLaps": car.gaps["leader"]["laps"],
        "gapToAheadMs": car.gaps["ahead"]["ms"],
        "gapToAheadLaps": car.gaps["ahead"]["laps"],
        "gapToClassLeaderMs": car.gaps["classLeader"]["ms"],
        "gapToClassLeaderLaps": car.gaps["classLeader"]["laps"],
        "pitStops": car.pit_stops,
        "stint": car.stint,
        "driverNumber": car.driver_number,
        "driverName": car.driver_name,
        "status": official.get("status"),
        "officialPosition": official.get("position"),
        "officialLaps": official.get("laps"),
        "totalTimeMs": official.get("total_time_ms"),
        "penaltyMs": car.penalty_ms,
    }


def compute(session: Row, cars: Sequence[Row], laps: Sequence[Row], results: Sequence[Row]) -> dict[str, Any]:
    """The standings answer from the session's cars, laps (car then lap order) and official results."""
    by_car: dict[str, list[Row]] = {}
    for lap in laps:
        by_car.setdefault(str(lap["car_id"]), []).append(lap)
    standings = {car["number"]: car_from_laps(car, by_car.get(str(car["id"]), [])) for car in cars}
    for result in results:
        number = result["car_number"]
        standing = standings.setdefault(
            number, CarStanding(number=number, car_class=result["class"], team=result["team"])
        )
        standing.official = result
    is_race = session["type"] == "race"
    ordered = rank(list(standings.values()), is_race)
    return {
        "sessionId": str(session["id"]),
        "sessionType": session["type"],
        "order": "official" if results else ("laps" if is_race else "bestLap"),
        "resultsImported": bool(results),
        "items": [wire(car) for car in ordered],
    }


# Bits of a lap's mark in the lap chart: what the pace chart and race trace leave out or mark.
MARK_IN_LAP, MARK_OUT_LAP, MARK_NEUTRALISED, MARK_INVALID = 1, 2, 4, 8
GREEN_FLAGS = frozenset({"", "GF", "G", "GREEN", "FF", "CHK", "CHEQUERED"})  # FF: the chequered flag


def _green(lap: Row | None) -> bool:
    return lap is None or str(lap["flag"] or "").upper() in GREEN_FLAGS


def mark(lap: Row, previous: Row | None = None) -> int:
    """In-lap, out-lap, neutralised, invalid. Neutralised: the lap ended under a flag other than green or
    chequered (FCY, SC, SF...), or began under one (the previous lap ended so: the restart lap)."""
    return (
        (MARK_IN_LAP if lap["is_in_lap"] else 0)
        | (MARK_OUT_LAP if lap["is_out_lap"] else 0)
        | (0 if _green(lap) and _green(previous) else MARK_NEUTRALISED)
        | (0 if lap["is_valid"] else MARK_INVALID)
    )


def chart(session: Row, cars: Sequence[Row], laps: Sequence[Row]) -> dict[str, Any]:
    """GET /sessions/{id}/lap-chart: per car, columns of lap number, lap time, elapsed time and mark.

    Columns rather than one object per lap: the Le Mans 24 Hours (15,593 laps) stays a few hundred
    KB, and a chart reads a column at a time.
    """
    by_car: dict[str, list[Row]] = {}
    for lap in laps:
        by_car.setdefault(str(lap["car_id"]), []).append(lap)
    items = []
    for car in cars:
        car_laps = by_car.get(str(car["id"]), [])
        items.append(
            {
                "carId": str(car["id"]),
                "number": car["number"],
                "lapNumbers": [lap["lap_number"] for lap in car_laps],
                "lapTimesMs": [lap["lap_time_ms"] for lap in car_laps],
                "elapsedMs": elapsed_through(car_laps),
                "marks": [mark(lap, car_laps[i - 1] if i else None) for i, lap in enumerate(car_laps)],
            }
        )
    items.sort(key=lambda item: item["number"])
    return {"sessionId": str(session["id"]), "sessionType": session["type"], "items": items}


def chart_for_session(caller: Caller, session_id: str) -> dict[str, Any]:
    session, cars, laps, _ = load(caller, session_id)
    return chart(session, cars, laps)


def load(
    caller: Caller, session_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The session (404 when absent or another account's), its cars, laps and official results."""
    session_id = listing.parse_uuid(session_id, "id")
    ids = {"session_id": session_id, "account_id": caller.account_id}
    with transaction() as conn:
        session = fetch_one(conn, "standings_session", ids)
        if session is None:
            raise NotFound(f"session {session_id} not found")
        return (
            session,
            fetch_all(conn, "standings_cars", ids),
            fetch_all(conn, "standings_laps", ids),
            fetch_all(conn, "standings_results", ids),
        )


def for_session(caller: Caller, session_id: str) -> dict[str, Any]:
    """GET /sessions/{id}/standings."""
    return compute(*load(caller, session_id))
