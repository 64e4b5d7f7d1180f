"""Standings as pure functions: the order, gaps by class and laps down, penalties; the export kind."""

from __future__ import annotations

from typing import Any

from chalicelib.domain import standings
from chalicelib.timing import imports, results

SESSION = {"id": "00000000-0000-0000-0000-000000000001", "type": "race"}


def car(number: str, car_class: str, ours: bool = False) -> dict[str, Any]:
    return {"id": f"id-{number}", "number": number, "class": car_class, "team": None, "is_competitor": not ours}


def laps(number: str, times: list[int], in_laps: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    return [
        {
            "car_id": f"id-{number}",
            "lap_number": i,
            "lap_time_ms": t,
            "is_in_lap": i in in_laps,
            "is_out_lap": i == 1 or i - 1 in in_laps,
            "is_valid": True,
            "pit_time_ms": None,
            "flag": None,
            "driver_number": "1",
            "stint": None,
            "elapsed_ms": None,
            "official_best": False,
            "driver_name": None,
        }
        for i, t in enumerate(times, start=1)
    ]


def test_race_order_is_laps_then_elapsed_with_gaps_in_laps_and_by_class() -> None:
    cars = [car("1", "GT3"), car("2", "GT4", ours=True), car("3", "GT3"), car("4", "GT4")]
    rows = laps("1", [100, 100, 100]) + laps("2", [101, 101, 101], in_laps=(2,)) + laps("3", [100, 100])
    rows += laps("4", [103, 103, 103])
    got = standings.compute(SESSION, cars, rows, [])["items"]
    assert [c["number"] for c in got] == ["1", "2", "4", "3"]
    assert [(c["gapToLeaderMs"], c["gapToLeaderLaps"]) for c in got] == [(None, None), (3, 0), (9, 0), (None, 1)]
    assert [c["classPosition"] for c in got] == [1, 1, 2, 2]
    assert got[2]["gapToClassLeaderMs"] == 6 and got[3]["gapToClassLeaderLaps"] == 1
    assert (got[1]["isOurs"], got[1]["pitStops"], got[1]["stint"]) == (True, 1, 2)
    assert got[1]["bestLapMs"] is None  # lap 1, the in-lap 2 and the out-lap 3 never count
    assert (got[0]["bestLapMs"], got[0]["bestLapNumber"], got[0]["lastLapMs"]) == (100, 2, 100)


def test_practice_order_is_best_lap_and_cars_without_one_come_last() -> None:
    cars = [car("1", "GT3"), car("2", "GT3"), car("3", "GT3")]
    rows = laps("1", [90, 105, 104]) + laps("2", [100, 99]) + laps("3", [80])
    got = standings.compute({**SESSION, "type": "practice"}, cars, rows, [])
    assert got["order"] == "bestLap"
    assert [(c["number"], c["gapToLeaderMs"]) for c in got["items"]] == [("2", None), ("1", 5), ("3", None)]


def test_official_results_take_precedence_and_show_the_penalty() -> None:
    cars = [car("1", "GT3"), car("2", "GT3")]
    rows = laps("1", [100, 100]) + laps("2", [101, 101])
    official = [
        {"car_number": "2", "position": 1, "status": "Classified", "laps": 2, "total_time_ms": 202},
        {"car_number": "1", "position": 2, "status": "Classified", "laps": 2, "total_time_ms": 205},
        {"car_number": "9", "position": 3, "status": "DNF", "laps": 0, "total_time_ms": None},
    ]
    official = [{**row, "class": "GT3", "team": None} for row in official]
    got = standings.compute(SESSION, cars, rows, official)["items"]
    assert [(c["number"], c["roadPosition"], c["penaltyMs"], c["status"]) for c in got] == [
        ("2", 2, 0, "Classified"),
        ("1", 1, 5, "Classified"),
        ("9", None, None, "DNF"),
    ]
    assert (got[1]["gapToAheadMs"], got[2]["gapToLeaderLaps"]) == (3, 2)


def test_the_kind_of_an_export_is_told_from_its_header() -> None:
    assert imports.export_kind(b"\xef\xbb\xbfPOSITION;NUMBER;STATUS;LAPS;TOTAL_TIME;GAP_FIRST\r\n1;7;") == (
        "results",
        None,
    )
    assert imports.export_kind(b"NUMBER; DRIVER_NUMBER; LAP_NUMBER; LAP_TIME;\n") == ("laps", None)
    kind, problem = imports.export_kind(b"POSITION;NUMBER;LAPS\n")
    assert kind == "laps" and problem and "LAP_TIME" in problem and "TOTAL_TIME" in problem


def test_results_rows_keep_numbers_as_text_and_read_gaps_as_printed() -> None:
    parsed = results.parse(
        [
            b"POSITION;NUMBER;STATUS;LAPS;TOTAL_TIME;GAP_FIRST;GAP_PREVIOUS;FL_LAPNUM;FL_TIME;CLASS;\n1;03;Cla",
            b"ssified;23;46:47.549;+1:16.855;+56.571;11;1:42.343;Am;\n2;X Y;DNF;;;;;;;;\n",
        ]
    )
    assert [(r.car_number, r.total_time_ms, r.gap_first, r.best_lap_ms) for r in parsed.rows] == [
        ("03", 2807549, "+1:16.855", 102343)
    ]
    assert [(r.line, r.reason) for r in parsed.rejected] == [(3, "NUMBER 'X Y' must be 1 to 10 letters or digits")]


def test_a_results_file_of_more_than_max_rows_is_refused_whole() -> None:
    import pytest

    from chalicelib.timing.alkamel import NotAlKamel

    rows = b"".join(b"%d;%d;Classified;1;1:00.000\n" % (i, i) for i in range(1, results.MAX_ROWS + 2))
    with pytest.raises(NotAlKamel, match="at most"):
        results.parse([b"POSITION;NUMBER;STATUS;LAPS;TOTAL_TIME\n" + rows])


def test_results_lines_with_a_nul_byte_or_broken_quotes_are_rejected_by_line() -> None:
    parsed = results.parse(
        [b'POSITION;NUMBER;STATUS;LAPS;TOTAL_TIME\n1;7;Classi\x00fied;1;1:00.000\n2;"8;DNF;1;\n3;9;DNF;1;2:00.000\n']
    )
    assert [r.car_number for r in parsed.rows] == ["9"]
    assert [r.line for r in parsed.rejected] == [2, 3]
    assert parsed.rejected[0].reason == "the line contains a NUL byte"
