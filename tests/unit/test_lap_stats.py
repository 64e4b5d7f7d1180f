"""Run-sheet statistics: which laps count, best lap, theoretical best, stints, degradation."""

from __future__ import annotations

import pytest

from chalicelib.domain import lap_stats
from chalicelib.domain.lap_stats import StatLap

pytestmark = pytest.mark.unit


def lap(n: int, ms: int, **extra: object) -> StatLap:
    return StatLap(id=f"lap-{n}", lap_number=n, lap_time_ms=ms, **extra)  # type: ignore[arg-type]


def test_lap_one_in_and_out_laps_and_invalid_laps_never_count() -> None:
    laps = [
        lap(1, 90_000),
        lap(2, 99_000, is_out_lap=True),
        lap(3, 98_000, is_in_lap=True),
        lap(4, 97_000, is_valid=False),
        lap(5, 101_000),
    ]
    assert [x.lap_number for x in laps if lap_stats.counts(x)] == [5]
    best, basis = lap_stats.best_lap(laps)
    assert (best and best.lap_number, basis) == (5, "computed")


def test_the_officials_mark_wins_unless_the_team_invalidated_that_lap() -> None:
    laps = [lap(2, 99_000), lap(3, 100_000, official_best=True)]
    assert lap_stats.best_lap(laps) == (laps[1], "official")
    laps[1] = lap(3, 100_000, official_best=True, is_valid=False)
    assert lap_stats.best_lap(laps) == (laps[0], "computed")
    assert lap_stats.best_lap([lap(1, 90_000)]) == (None, None)


def test_ties_go_to_the_earlier_lap() -> None:
    assert lap_stats.best_lap([lap(3, 100_000), lap(2, 100_000)])[0] == lap(2, 100_000)


def test_theoretical_best_uses_laps_with_the_usual_sector_count() -> None:
    laps = [
        lap(2, 100_000, sector_times_ms=(30_000, 40_000, 30_000)),
        lap(3, 100_500, sector_times_ms=(29_000, 41_000, 30_500)),
        lap(4, 99_000, sector_times_ms=(20_000, 79_000)),  # a lap with a missing split: ignored
        lap(5, 99_900, sector_times_ms=(30_500, 39_900, 29_500), is_in_lap=True),
    ]  # in-lap: ignored
    assert lap_stats.best_sectors(laps) == [(29_000, 3), (40_000, 2), (30_000, 2)]
    assert lap_stats.theoretical_best(lap_stats.best_sectors(laps)) == 99_000
    assert lap_stats.best_sectors([lap(2, 100_000)]) == [] and lap_stats.theoretical_best([]) is None


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([(1, 100), (2, 102), (3, 104)], 2.0),
        ([(1, 100), (2, 110), (3, 100)], 0.0),
        ([(2, 101_000), (3, 100_500), (4, 102_500)], 750.0),
        ([(1, 100)], None),
        ([(1, 100), (1, 200)], None),
    ],
)
def test_least_squares_slope(points: list[tuple[float, float]], expected: float | None) -> None:
    assert lap_stats.slope(points) == expected


def test_degradation_needs_three_counting_laps() -> None:
    assert lap_stats.degradation([lap(2, 100_000), lap(3, 100_300), lap(4, 100_600)]) == 300.0
    assert lap_stats.degradation([lap(2, 100_000), lap(3, 100_300), lap(4, 90_000, is_valid=False)]) is None


def test_stints_come_from_the_laps_or_are_inferred_from_in_laps() -> None:
    given = [lap(1, 1, stint=1), lap(2, 1, stint=2), lap(3, 1), lap(4, 1, stint=1)]
    groups, inferred = lap_stats.stints(given)
    assert [(k, [x.lap_number for x in v]) for k, v in groups] == [(1, [1, 4]), (2, [2]), (None, [3])]
    assert not inferred
    timing = [lap(1, 1), lap(2, 1, is_in_lap=True), lap(3, 1, is_out_lap=True), lap(4, 1), lap(5, 1, is_in_lap=True)]
    groups, inferred = lap_stats.stints(timing)
    assert [(k, [x.lap_number for x in v]) for k, v in groups] == [(1, [1, 2]), (2, [3, 4, 5])] and inferred
    assert lap_stats.stints([]) == ([], False)


def test_summary_shape() -> None:
    laps = [
        lap(1, 110_000, stint=1, driver_id="d1", is_out_lap=True),
        lap(2, 100_000, stint=1, driver_id="d1", sector_times_ms=(50_000, 50_000)),
        lap(3, 100_600, stint=1, driver_id="d1", sector_times_ms=(49_000, 51_600)),
        lap(4, 101_000, stint=1, driver_number="9"),
    ]
    summary = lap_stats.summary(laps)
    assert summary["bestLap"] == {
        "id": "lap-2",
        "lapNumber": 2,
        "lapTimeMs": 100_000,
        "driverId": "d1",
        "driverNumber": None,
        "stint": 1,
        "basis": "computed",
    }
    assert (summary["laps"], summary["countingLaps"], summary["theoreticalBestMs"]) == (4, 3, 99_000)
    assert summary["stints"] == [
        {
            "stint": 1,
            "firstLap": 1,
            "lastLap": 4,
            "laps": 4,
            "countingLaps": 3,
            "bestLapMs": 100_000,
            "averageLapMs": 100_533.3,
            "degradationMsPerLap": 500.0,
            "driverIds": ["d1"],
        }
    ]
    assert [(d["driverId"], d["driverNumber"], d["laps"], d["averageLapMs"]) for d in summary["drivers"]] == [
        ("d1", None, 3, 100_300.0),
        (None, "9", 1, 101_000.0),
    ]
    empty = lap_stats.summary([])
    assert empty["bestLap"] is None and empty["stints"] == [] and empty["theoreticalBestMs"] is None
