"""Reading laps from request bodies: every problem named by index and field, nothing half-read."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from chalicelib.domain import laps
from chalicelib.errors import Conflict, Invalid

pytestmark = pytest.mark.unit
SHEET = str(uuid.uuid4())


def good(number: int = 1, **extra: Any) -> dict[str, Any]:
    return {"runSheetId": SHEET, "lapNumber": number, "lapTimeMs": 100_000, **extra}


def problems(item: Any, creating: bool = True) -> list[tuple[str, str]]:
    return laps.read_lap(item, creating=creating)[1]


def test_a_full_lap_reads_into_columns() -> None:
    columns, wrong = laps.read_lap(
        good(
            sectorTimesMs=[30_000, 40_000, 30_000],
            isInLap=True,
            isOutLap=False,
            isValid=False,
            pitTimeMs=0,
            flag="FCY",
            driverId=SHEET,
            driverNumber="07",
            stint=2,
            fuelL=12.345,
            tyreSet=" S3 ",
            recordedAt="2026-03-14T10:00:00Z",
            custom={"tyrePsi": 27.5},
        ),
        creating=True,
    )
    assert wrong == []
    assert columns["fuel_l"] == 12.35 and columns["tyre_set"] == "S3" and columns["driver_number"] == "07"
    assert columns["recorded_at"] == dt.datetime(2026, 3, 14, 10, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lapTimeMs": -1}, "lapTimeMs"),
        ({"lapTimeMs": 0}, "lapTimeMs"),
        ({"lapTimeMs": 86_400_001}, "lapTimeMs"),
        ({"lapTimeMs": 1.5}, "lapTimeMs"),
        ({"lapTimeMs": True}, "lapTimeMs"),
        ({"lapTimeMs": "100000"}, "lapTimeMs"),
        ({"lapNumber": 0}, "lapNumber"),
        ({"runSheetId": "sheet-1"}, "runSheetId"),
        ({"runSheetId": 7}, "runSheetId"),
        ({"sectorTimesMs": [50_000, 50_000, 0]}, "sectorTimesMs"),
        ({"sectorTimesMs": "1,2"}, "sectorTimesMs"),
        ({"sectorTimesMs": [50_000, 50_003]}, "sectorTimesMs"),
        ({"sectorTimesMs": [1] * 51}, "sectorTimesMs"),
        ({"isValid": 1}, "isValid"),
        ({"flag": "gf"}, "flag"),
        ({"driverNumber": "1;--"}, "driverNumber"),
        ({"stint": 0}, "stint"),
        ({"fuelL": -1}, "fuelL"),
        ({"fuelL": 10_000}, "fuelL"),
        ({"tyreSet": ""}, "tyreSet"),
        ({"recordedAt": "yesterday"}, "recordedAt"),
        ({"recordedAt": "2026-03-14T10:00:00"}, "recordedAt"),
        ({"custom": []}, "custom"),
        ({"custom": {f"k{i}": i for i in range(101)}}, "custom"),
        ({"custom": {"x": "y" * 9000}}, "custom"),
        ({"sessionId": SHEET}, "sessionId"),
        ({"carId": SHEET}, "carId"),
        ({"source": "timing"}, "source"),
        ({"lapTimeMS": 1}, "lapTimeMS"),
    ],
)
def test_each_bad_value_is_named(change: dict[str, Any], field: str) -> None:
    assert [f for f, _ in problems({**good(), **change})] == [field]


def test_sectors_may_differ_by_one_ms_each() -> None:
    assert problems(good(sectorTimesMs=[33_334, 33_334, 33_334])) == []  # 100,002 for 100,000: 2 <= 3
    assert problems(good(sectorTimesMs=[33_335, 33_335, 33_334]))[0][0] == "sectorTimesMs"
    assert problems(good(sectorTimesMs=[])) == []


def test_required_fields_and_nulls_on_create() -> None:
    assert sorted(f for f, _ in problems({"lapTimeMs": None})) == ["lapNumber", "lapTimeMs", "runSheetId"]
    assert problems(good(flag=None, stint=None, custom=None)) == []  # null on create: the default
    assert problems([1, 2]) == [("", "a lap must be a JSON object")]
    with pytest.raises(Invalid) as error:
        laps.read_new_laps({"laps": [good(1), 7]})
    assert error.value.field == "laps[1]" and error.value.details == [
        {"index": 1, "field": "", "message": "a lap must be a JSON object"}
    ]


def test_nulls_on_patch_clear_optional_fields_only() -> None:
    columns, wrong = laps.read_lap({"flag": None, "sectorTimesMs": None, "custom": None}, creating=False)
    assert wrong == [] and columns == {"flag": None, "sector_times_ms": [], "custom": {}}
    assert problems({"lapTimeMs": None}, creating=False) == [("lapTimeMs", "lapTimeMs must not be null")]
    assert "cannot be changed" in problems({"runSheetId": SHEET}, creating=False)[0][1]


def test_a_batch_lists_every_bad_index_and_field() -> None:
    body = {"laps": [good(1), good(2, lapTimeMs=-1), good(3), good(4, lapNumber=0, flag="X")]}
    with pytest.raises(Invalid) as error:
        laps.read_new_laps(body)
    assert error.value.field == "laps[1].lapTimeMs"
    assert [(d["index"], d["field"]) for d in error.value.details] == [(1, "lapTimeMs"), (3, "lapNumber"), (3, "flag")]
    assert error.value.message.startswith("2 of the laps are invalid")


def test_batch_shape_and_size() -> None:
    assert laps.read_new_laps(good()) == ([laps.read_lap(good(), creating=True)[0]], False)
    for body, field in (
        ({"laps": []}, "laps"),
        ({"laps": {}}, "laps"),
        ({"laps": [good()], "x": 1}, "x"),
        ([good()], "body"),
        ({"laps": [good(n) for n in range(1, 5_002)]}, "laps"),
    ):
        with pytest.raises(Invalid) as error:
            laps.read_new_laps(body)
        assert error.value.field == field
    assert len(laps.read_new_laps({"laps": [good(n) for n in range(1, 5_001)]})[0]) == 5_000


def test_the_same_lap_twice_in_a_batch_is_a_conflict_naming_it() -> None:
    twice = rf"lap 2 of run sheet {SHEET} is in the batch twice \(laps\[1\] and laps\[2\]\)"
    with pytest.raises(Conflict, match=twice):
        laps.read_new_laps({"laps": [good(1), good(2), good(2)]})
    other = str(uuid.uuid4())
    assert len(laps.read_new_laps({"laps": [good(1), {**good(1), "runSheetId": other}]})[0]) == 2


@pytest.mark.parametrize(
    "custom",
    [
        {f"k{i}": "é" * 40 for i in range(16)},  # the quick path's worst case is still under 8 KB
        {"big": 10**4000},
        {"deep": {"a": {"b": 1}}},
        {"k": "x" * 8000},
    ],
)
def test_custom_size_is_checked_whichever_path(custom: dict[str, Any]) -> None:
    import json

    wrong = problems(good(custom=custom))
    assert (wrong == []) == (len(json.dumps(custom, separators=(",", ":"))) <= laps.MAX_CUSTOM_BYTES)
