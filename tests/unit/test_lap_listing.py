"""Lap lists: OpenF1-style comparisons however the query string spells them, sort with cursors
that carry their sort, field selection, and CSV pages."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid

import pytest

from chalicelib.domain import listing
from chalicelib.domain.laps import LAP_QUERY
from chalicelib.domain.records import EVENTS, LAPS
from chalicelib.errors import Invalid

pytestmark = pytest.mark.unit


def parse(params: dict[str, str], **options: int) -> listing.ListRequest:
    return listing.parse(LAPS, params, query=LAP_QUERY, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("lapTimeMs<", "95000", ("lap_time_ms", "<=", 95_000)),  # ?lapTimeMs<=95000 as parsers split it
        ("lapTimeMs<=95000", "", ("lap_time_ms", "<=", 95_000)),  # the whole expression percent-encoded
        ("lapTimeMs<95000", "", ("lap_time_ms", "<", 95_000)),
        ("lapNumber>", "5", ("lap_number", ">=", 5)),
        ("lapNumber>5", "", ("lap_number", ">", 5)),
        ("recordedAt>", "2026-03-14T10:00:00Z", ("recorded_at", ">=", dt.datetime(2026, 3, 14, 10, tzinfo=dt.UTC))),
        ("fuelL<20.5", "", ("fuel_l", "<", 20.5)),
    ],
)
def test_comparisons_however_spelled(name: str, value: str, expected: tuple[str, str, object]) -> None:
    assert parse({name: value}).ranges == (expected,)


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("lapTimeMs<", "", "lapTimeMs"),
        ("lapTimeMs<", "1;DROP TABLE laps", "lapTimeMs"),
        ("isValid<", "true", "isValid"),
        ("flag>", "A", "flag"),
        ("lapNumber>5", "6", "lapNumber"),
        ("lapNumber>", "=5", "lapNumber"),
        ("recordedAt>", "2026-03-14 10:00:00 01:00", "recordedAt"),
        ("lapTime<", "5", "lapTime"),
        ("flag", "GF' OR 1=1", "flag"),
        ("source", "robot", "source"),
        ("driverNumber", "1 OR 1", "driverNumber"),
        ("lapNumber", "99999999999", "lapNumber"),
    ],
)
def test_bad_comparisons_and_filters_are_invalid_naming_the_field(name: str, value: str, field: str) -> None:
    with pytest.raises(Invalid) as error:
        parse({name: value})
    assert error.value.field == field


def test_resources_without_a_queryable_keep_their_old_parameters() -> None:
    with pytest.raises(Invalid) as error:
        listing.parse(LAPS, {"lapNumber>5": ""})
    assert error.value.field == "lapNumber>5"
    for name in ("sort", "fields"):
        with pytest.raises(Invalid):
            listing.parse(EVENTS, {name: "id"})
    assert listing.parse(LAPS, {"flag": "anything"}).filters == {"flag": "anything"}


def test_sort_appends_id_and_is_whitelisted() -> None:
    assert parse({"sort": "-lapTimeMs"}).order == (("lap_time_ms", True), ("id", True))
    assert parse({"sort": "runSheetId,-lapNumber"}).order == (
        ("run_sheet_id", False),
        ("lap_number", True),
        ("id", True),
    )
    assert parse({}).order_by(LAPS) == (("run_sheet_id", False), ("lap_number", False), ("id", False))
    for bad in ("", "-", "flag", "custom", "lapTimeMs;DROP", "a,b,c,d", "lapNumber,-lapNumber"):
        with pytest.raises(Invalid) as error:
            parse({"sort": bad})
        assert error.value.field == "sort"


def test_a_sorted_cursor_carries_its_sort_and_is_checked() -> None:
    request = parse({"sort": "-lapTimeMs"})
    row = {"lap_time_ms": 95_000, "id": uuid.uuid4()}
    cursor = listing.cursor_after(LAPS, request, row)
    assert parse({"sort": "-lapTimeMs", "cursor": cursor}).after == (95_000, str(row["id"]))
    for other in ({"sort": "lapTimeMs"}, {"sort": "-lapNumber"}, {}):
        with pytest.raises(Invalid) as error:
            parse({**other, "cursor": cursor})
        assert error.value.field == "cursor"


def test_forged_cursors_are_invalid_not_sql() -> None:
    forged = listing.encode_cursor(("not-a-uuid", 1, str(uuid.uuid4())))
    with pytest.raises(Invalid):
        parse({"cursor": forged})
    forged = listing.encode_cursor((str(uuid.uuid4()), "1", str(uuid.uuid4())))
    with pytest.raises(Invalid):
        parse({"cursor": forged})


def test_fields_are_checked_and_keep_their_order() -> None:
    assert parse({"fields": "lapTimeMs, id,lapTimeMs"}).fields == ("lapTimeMs", "id")
    for bad in ("", "id,password", "id,(select 1)"):
        with pytest.raises(Invalid) as error:
            parse({"fields": bad})
        assert error.value.field == "fields"


def test_limits_and_csv_limits() -> None:
    assert parse({}).limit == 50 and parse({"limit": "500"}).limit == 500
    with pytest.raises(Invalid):
        parse({"limit": "501"})
    assert parse({}, max_limit=50_000, default_limit=50_000).limit == 50_000


def _row(n: int, **extra: object) -> dict[str, object]:
    return {
        "id": uuid.UUID(int=n),
        "run_sheet_id": uuid.UUID(int=0),
        "lap_number": n,
        "lap_time_ms": 100_000 + n,
        "sector_times_ms": [1, 2],
        "tyre_set": "S",
        "custom": {},
        "is_valid": True,
        "flag": None,
        **extra,
    }


def test_csv_is_rfc_4180_and_safe_in_a_spreadsheet() -> None:
    request = parse({"fields": "lapNumber,tyreSet,custom,sectorTimesMs,isValid,flag"})
    rows = [_row(1, tyre_set="=cmd|' /C calc'!A0"), _row(2, custom={"a": 'x, "y"\nz'})]
    page = listing.csv_page(LAPS, rows, request, max_bytes=10_000)
    assert page.text.startswith("lapNumber,tyreSet,custom,sectorTimesMs,isValid,flag\r\n")
    parsed = list(csv.reader(io.StringIO(page.text, newline="")))
    assert parsed[1] == ["1", "'=cmd|' /C calc'!A0", "{}", "[1,2]", "true", ""]
    assert parsed[2][2] == '{"a":"x, \\"y\\"\\nz"}' and page.rows == 2 and page.next_cursor is None


def test_a_csv_page_stops_before_its_byte_budget_with_a_cursor_after_the_last_row() -> None:
    request = parse({"fields": "lapNumber", "sort": "lapNumber"}, max_limit=50_000, default_limit=50_000)
    rows = [_row(n) for n in range(1, 1001)]
    page = listing.csv_page(LAPS, rows, request, max_bytes=100)
    assert page.text.count("\r\n") == page.rows + 1 and len(page.text) <= 100 and page.rows < 1000
    assert parse({"fields": "lapNumber", "sort": "lapNumber", "cursor": page.next_cursor or ""}).after == (
        page.rows,
        str(uuid.UUID(int=page.rows)),
    )
