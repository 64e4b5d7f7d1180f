"""Run-sheet statistics as pure functions: best lap as timing officials count it, theoretical best,
stints (average pace, degradation) and laps per driver.

Which laps count (for the best lap, best sectors, averages and degradation):
- valid laps only (`isValid`), and neither in-laps nor out-laps (pit entry and exit distort them);
- never lap 1: it starts from the grid or the pit lane, not from the line at speed. Officials
  leave it out too (SOURCES.md of the timing data: at Indianapolis the fastest raw lap of two cars
  was lap 1, and their official best was a later lap);
- when timing officials marked a lap as the car's best (`custom.officialBest`, set by timing
  imports from the file's LAP_IMPROVEMENT) and the team has not invalidated it, that lap is the
  best lap (`basis: "official"`): officials delete laps (track limits) that the export does not
  mark, so the fastest remaining time is not always theirs. Otherwise the fastest counting lap
  (`basis: "computed"`).
Theoretical best: the sum of each sector's best time over counting laps that have the usual
number of sectors. Stints are the laps' `stint` numbers; when no lap has one (timing imports),
they are inferred: a stint ends with an in-lap (`stintsInferred: true`). Degradation is the
least-squares slope of lap time against lap number over a stint's counting laps (ms per lap;
positive = getting slower), given at least MIN_DEGRADATION_LAPS of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MIN_DEGRADATION_LAPS = 3


@dataclass(frozen=True)
class StatLap:
    id: str
    lap_number: int
    lap_time_ms: int
    sector_times_ms: tuple[int, ...] = ()
    is_in_lap: bool = False
    is_out_lap: bool = False
    is_valid: bool = True
    driver_id: str | None = None
    driver_number: str | None = None
    stint: int | None = None
    official_best: bool = False

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StatLap:
        return cls(
            str(row["id"]),
            row["lap_number"],
            row["lap_time_ms"],
            tuple(row["sector_times_ms"] or ()),
            row["is_in_lap"],
            row["is_out_lap"],
            row["is_valid"],
            str(row["driver_id"]) if row["driver_id"] else None,
            row["driver_number"],
            row["stint"],
            bool(row["official_best"]),
        )


def counts(lap: StatLap) -> bool:
    """Whether a lap counts for pace: valid, not an in/out lap, not lap 1."""
    return lap.is_valid and not lap.is_in_lap and not lap.is_out_lap and lap.lap_number != 1


def _fastest(laps: Iterable[StatLap]) -> StatLap | None:
    return min(laps, key=lambda lap: (lap.lap_time_ms, lap.lap_number), default=None)


def best_lap(laps: Sequence[StatLap]) -> tuple[StatLap | None, str | None]:
    """The best lap and its basis: "official" (marked by timing officials) or "computed"."""
    official = _fastest(lap for lap in laps if lap.official_best and lap.is_valid)
    if official is not None:
        return official, "official"
    computed = _fastest(lap for lap in laps if counts(lap))
    return computed, "computed" if computed else None


def best_sectors(laps: Sequence[StatLap]) -> list[tuple[int, int]]:
    """(best ms, its lap number) per sector, over counting laps with the usual number of sectors."""
    timed = [lap for lap in laps if counts(lap) and lap.sector_times_ms]
    if not timed:
        return []
    usual = max(Counter(len(lap.sector_times_ms) for lap in timed).items(), key=lambda kv: (kv[1], kv[0]))[0]
    best: list[tuple[int, int]] = []
    for i in range(usual):
        ms, number = min((lap.sector_times_ms[i], lap.lap_number) for lap in timed if len(lap.sector_times_ms) == usual)
        best.append((ms, number))
    return best


def theoretical_best(sectors: Sequence[tuple[int, int]]) -> int | None:
    return sum(ms for ms, _ in sectors) if sectors else None


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of y on x; None for fewer than two distinct x."""
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / sxx


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def stints(laps: Sequence[StatLap]) -> tuple[list[tuple[int | None, list[StatLap]]], bool]:
    """Laps grouped by stint (in stint order; laps without one last) and whether stints were inferred."""
    ordered = sorted(laps, key=lambda lap: lap.lap_number)
    if not ordered:
        return [], False
    groups: dict[int | None, list[StatLap]] = {}
    if any(lap.stint is not None for lap in ordered):
        for lap in ordered:
            groups.setdefault(lap.stint, []).append(lap)
        keys = sorted(k for k in groups if k is not None) + ([None] if None in groups else [])
        return [(k, groups[k]) for k in keys], False
    number = 1
    for lap in ordered:
        groups.setdefault(number, []).append(lap)
        if lap.is_in_lap:
            number += 1
    return list(groups.items()), True


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _pace(laps: Sequence[StatLap]) -> dict[str, Any]:
    counting = [lap for lap in laps if counts(lap)]
    fastest = _fastest(counting)
    return {
        "laps": len(laps),
        "countingLaps": len(counting),
        "bestLapMs": fastest.lap_time_ms if fastest else None,
        "averageLapMs": _round(mean([lap.lap_time_ms for lap in counting]), 1),
    }


def degradation(laps: Sequence[StatLap]) -> float | None:
    """ms per lap over the counting laps of a stint (None below MIN_DEGRADATION_LAPS of them)."""
    points = [(float(lap.lap_number), float(lap.lap_time_ms)) for lap in laps if counts(lap)]
    if len(points) < MIN_DEGRADATION_LAPS:
        return None
    return _round(slope(points), 2)


def summary(laps: Sequence[StatLap]) -> dict[str, Any]:
    """Everything GET /run-sheets/{id}/stats answers about a run sheet's laps (wire form)."""
    best, basis = best_lap(laps)
    sectors = best_sectors(laps)
    groups, inferred = stints(laps)
    drivers: dict[tuple[str | None, str | None], list[StatLap]] = {}
    for lap in sorted(laps, key=lambda lap: lap.lap_number):
        key = (lap.driver_id, None) if lap.driver_id else (None, lap.driver_number)
        drivers.setdefault(key, []).append(lap)
    return {
        "laps": len(laps),
        "countingLaps": sum(1 for lap in laps if counts(lap)),
        "bestLap": None
        if best is None
        else {
            "id": best.id,
            "lapNumber": best.lap_number,
            "lapTimeMs": best.lap_time_ms,
            "driverId": best.driver_id,
            "driverNumber": best.driver_number,
            "stint": best.stint,
            "basis": basis,
        },
        "theoreticalBestMs": theoretical_best(sectors),
        "bestSectors": [{"sector": i + 1, "ms": ms, "lapNumber": number} for i, (ms, number) in enumerate(sectors)],
        "stints": [
            {
                "stint": stint,
                "firstLap": group[0].lap_number,
                "lastLap": group[-1].lap_number,
                **_pace(group),
                "degradationMsPerLap": degradation(group),
                "driverIds": list(dict.fromkeys(lap.driver_id for lap in group if lap.driver_id)),
            }
            for stint, group in groups
        ],
        "stintsInferred": inferred,
        "drivers": [
            {"driverId": key[0], "driverNumber": group[0].driver_number, **_pace(group)}
            for key, group in drivers.items()
        ],
    }
