"""The Al Kamel lap export parser on our own nasty fixtures and on every real export we have."""

from __future__ import annotations

import collections
import os
from pathlib import Path

import pytest

from chalicelib.timing import alkamel
from chalicelib.timing.alkamel import Rejection

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests/fixtures/timing"
TIMING_DATA = Path(os.environ.get("RACE_TIMING_DATA", ROOT.parent / "shared/data/timing"))
REAL_EXPORTS = sorted(TIMING_DATA.glob("*_23_Analysis*")) if TIMING_DATA.is_dir() else []
GR_CUP_RACES = ("barber_race1", "barber_race2", "indianapolis_race1", "indianapolis_race2")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("33.413", 33_413),
        ("39.57", 39_570),
        ("0:33.413", 33_413),
        ("1:54.168", 114_168),
        ("59.9995", 60_000),
        ("1:48:48.501", 6_528_501),
        ("17:31:33.055", 63_093_055),
        ("0:00:35.158", 35_158),
        ("125.679", 125_679),
        ("2:05", 125_000),
        ("1:30.5", 90_500),
    ],
)
def test_durations_are_exact_milliseconds(text: str, ms: int) -> None:
    assert alkamel.duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "1:4x.123", "-1:00.000", "1:60.000", "1:61:00.000", "1,5", "1:2:3:4", "."])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        alkamel.duration_ms(text)


def test_indy_style_fixture_bom_crlf_trailing_separator_and_every_bad_row_reported() -> None:
    parsed = alkamel.parse(fixture("indy_style_race.CSV"))
    assert parsed.rows_read == 25  # the blank line is not a row
    assert len(parsed.laps) == 18
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (8, "LAP_TIME '1:4x.123' is not a time (m:ss.fff or h:mm:ss.fff)"),
        (16, "LAP_TIME is empty"),
        (17, "car 03 lap 2 is already on line 10"),
        (24, "NUMBER '#7' must be 1 to 10 letters or digits"),
        (25, "LAP_NUMBER 0 is out of range (1 to 100000)"),
        (26, "the line has 43 fields, the header 41"),
        (27, "the line has 14 fields, the header 41 (truncated?)"),
    ]
    by_key = {lap.key: lap for lap in parsed.laps}
    assert {lap.car_number for lap in parsed.laps} == {"3", "03", "21", "021"}  # text, never numbers
    first = by_key[("3", 1)]
    assert first.line == 2 and first.lap_time_ms == 106_900 and first.driver_number == "1"
    assert first.sectors_ms == (35_277, 34_208, 37_415) and first.sector_times_ms == [35_277, 34_208, 37_415]
    assert first.car_class == "Am" and first.team == "Precision Racing LA" and first.driver_name == "Karl Forman"
    assert first.hour == "08:50:46.900" and first.elapsed_ms == 106_900 and first.kph == 132.2
    assert set(first.intermediates_ms) == {"IM1a", "IM1", "IM2a", "IM2", "IM3a", "FL"}
    assert by_key[("03", 1)].team == "Speed; Syndicate Motorsports"  # a quoted field holding the separator
    assert by_key[("021", 1)].team == "Équipe Vitesse"
    assert by_key[("021", 3)].lap_time_ms == 3_723_456 and by_key[("021", 3)].pit_time_ms == 3_610_000
    assert by_key[("3", 5)].crossing_in_pit and by_key[("3", 6)].pit_time_ms == 67_389
    assert by_key[("03", 2)].lap_time_ms == 106_637  # the first of the duplicates is kept
    assert by_key[("3", 3)].lap_improvement == 2 and by_key[("03", 5)].lap_improvement == 3
    assert by_key[("03", 6)].flag == "FF" and by_key[("3", 4)].flag == "FCY"


def test_lf_file_without_bom_nor_trailing_separator() -> None:
    parsed = alkamel.parse(fixture("barber_style_lf.CSV"))
    assert parsed.rejected == [] and len(parsed.laps) == 6
    lap = parsed.laps[1]
    assert lap.sectors_ms == (39_570, 57_345, 36_776)  # "39.57": two decimals
    assert lap.team is None and lap.driver_name is None and lap.flag == "FCY"
    assert lap.intermediates_ms["IM1a"] == 20_769 and lap.intermediates_ms["FL"] == 23_247


def test_hour_long_laps_missing_sectors_and_a_latin1_name() -> None:
    parsed = alkamel.parse(fixture("lemans_style_long_laps.CSV"))
    assert parsed.rejected == []
    by_key = {lap.key: lap for lap in parsed.laps}
    assert by_key[("311", 226)].lap_time_ms == 6_528_501
    assert by_key[("311", 226)].sectors_ms[0] == 6_330_705
    assert by_key[("311", 227)].sectors_ms == (None, None, None) and by_key[("311", 227)].sector_times_ms == []
    assert by_key[("10", 4)].driver_name == "René Müller" and by_key[("10", 4)].driver_number == "3"
    assert by_key[("10", 3)].flag == "SF" and by_key[("10", 4)].flag == "FCY"
    assert by_key[("10", 1)].intermediates_ms == {}


@pytest.mark.parametrize("chunk_bytes", [1, 7, 4096])
def test_streaming_in_chunks_split_anywhere_gives_the_same_result(chunk_bytes: int) -> None:
    data = fixture("indy_style_race.CSV")
    whole = alkamel.parse(data)
    chunks = (data[i : i + chunk_bytes] for i in range(0, len(data), chunk_bytes))
    streamed = alkamel.parse(chunks)
    assert streamed.laps == whole.laps and streamed.rejected == whole.rejected


def test_pit_laps_in_lap_out_lap_and_lap_one() -> None:
    pits = alkamel.pit_laps(alkamel.parse(fixture("indy_style_race.CSV")).laps)
    assert pits[("3", 1)] == (False, True)  # lap 1 leaves the grid
    assert pits[("3", 2)] == (False, False)
    assert pits[("3", 5)] == (True, False)  # crossed the line in the pit lane
    assert pits[("3", 6)] == (False, True)  # the lap after an in-lap
    assert pits[("021", 3)] == (False, True)  # PIT_TIME without a marked in-lap
    lemans = alkamel.pit_laps(alkamel.parse(fixture("lemans_style_long_laps.CSV")).laps)
    assert lemans[("311", 226)] == (True, True) and lemans[("311", 227)] == (False, True)


def test_official_best_follows_the_file_mark_and_never_counts_lap_one() -> None:
    laps = alkamel.parse(fixture("indy_style_race.CSV")).laps
    best = alkamel.official_best(laps)
    assert {car: (lap.lap_number, lap.lap_time_ms) for car, lap in best.items()} == {
        "3": (3, 107_868),  # lap 1 (1:46.900) is faster but does not count
        "03": (5, 105_500),
        "021": (2, 106_800),
    }  # car 21 ran lap 1 only: no official best
    unflagged = [alkamel.TimingLap(lap.line, lap.car_number, lap.lap_number, lap.lap_time_ms) for lap in laps]
    assert {car: lap.lap_number for car, lap in alkamel.official_best(unflagged).items()} == {"3": 3, "03": 5, "021": 2}


def test_a_flagged_lap_wins_over_a_faster_unflagged_one() -> None:
    laps = [alkamel.TimingLap(2, "7", 2, 100_000), alkamel.TimingLap(3, "7", 3, 101_000, lap_improvement=2)]
    assert alkamel.official_best(laps)["7"].lap_number == 3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\r\n\r\n", "empty"),
        (b"POSITION;NUMBER;STATUS;LAPS;TOTAL_TIME\r\n1;55;Classified;26;46:41.553\r\n", "lacks LAP_NUMBER, LAP_TIME"),
        ("NUMBER;LAP_NUMBER;LAP_TIME\n".encode("utf-16"), "UTF-16"),
        (b'NUMBER;"LAP_NUMBER"\rx;LAP_TIME\n', "header line is not valid CSV"),
    ],
)
def test_a_file_that_is_not_a_lap_export_is_refused_whole(data: bytes, message: str) -> None:
    with pytest.raises(alkamel.NotAlKamel, match=message):
        alkamel.parse(data)
    problem = alkamel.header_problem(data)
    assert problem is not None and message in problem


def test_header_problem_accepts_real_headers() -> None:
    for name in ("indy_style_race.CSV", "barber_style_lf.CSV", "lemans_style_long_laps.CSV"):
        assert alkamel.header_problem(fixture(name)[:300]) is None


def test_minimal_header_and_odd_rows() -> None:
    data = b"number ; lap_number ;lap_time\n7;1;1:40.000\n7;2;0:00.000\n7;3;1:40.000;;\n07;1;1:39.000\n\x00;1;1\n"
    parsed = alkamel.parse(data)
    assert [(lap.car_number, lap.lap_number) for lap in parsed.laps] == [("7", 1), ("7", 3), ("07", 1)]
    assert parsed.rejected == [
        Rejection(3, "LAP_TIME must be more than zero"),
        Rejection(6, "the line contains a NUL byte"),
    ]


def test_a_line_the_csv_module_cannot_read_is_rejected_with_its_number() -> None:
    """A carriage return after a closing quote made csv raise, and the whole import failed."""
    parsed = alkamel.parse(b'NUMBER;LAP_NUMBER;LAP_TIME\n7;1;1:40.000\n8;"1"\rb;1:40.000\n7;2;1:41.000\n')
    assert [(lap.car_number, lap.lap_number) for lap in parsed.laps] == [("7", 1), ("7", 2)]
    assert parsed.rejected == [Rejection(3, "the line is not valid CSV: a quote or a carriage return is out of place")]


# ---- the real exports (RACE_TIMING_DATA) --------------------------------------------------------


def _table(path: Path) -> list[dict[str, str]]:
    lines = path.read_bytes().decode("utf-8-sig").splitlines()
    names = [name.strip() for name in lines[0].split(";")]
    return [dict(zip(names, (value.strip() for value in line.split(";")), strict=False)) for line in lines[1:]]


needs_data = pytest.mark.skipif(
    not REAL_EXPORTS, reason=f"no real timing exports under {TIMING_DATA} (set RACE_TIMING_DATA)"
)


@needs_data
@pytest.mark.parametrize("path", REAL_EXPORTS, ids=lambda p: p.name[:40])
def test_every_row_of_every_real_export_parses(path: Path) -> None:
    data = path.read_bytes()
    parsed = alkamel.parse(data[i : i + 65536] for i in range(0, len(data), 65536))
    data_lines = [line for line in data.splitlines()[1:] if line.strip()]
    assert parsed.rejected == []
    assert parsed.rows_read == len(data_lines) == len(parsed.laps)
    raw = _table(path)
    assert [lap.car_number for lap in parsed.laps] == [row["NUMBER"] for row in raw]
    assert [lap.lap_number for lap in parsed.laps] == [int(row["LAP_NUMBER"]) for row in raw]
    assert all(
        lap.sector_times_ms and sum(lap.sector_times_ms) in range(lap.lap_time_ms - 3, lap.lap_time_ms + 4)
        for lap in parsed.laps
        if lap.sector_times_ms
    )


@needs_data
@pytest.mark.parametrize("race", GR_CUP_RACES)
def test_official_best_equals_the_best_10_laps_file_for_every_car(race: str) -> None:
    analysis = next(TIMING_DATA.glob(f"{race}_23_*"))
    best_10 = next(TIMING_DATA.glob(f"{race}_99_*"))
    laps = alkamel.parse(analysis.read_bytes()).laps
    ours = alkamel.official_best(laps)
    official = {row["NUMBER"]: row for row in _table(best_10)}
    assert set(official) == {lap.car_number for lap in laps}
    for car, row in official.items():
        if not row["BESTLAP_1"]:
            assert car not in ours, f"car {car} has no official best lap"
            continue
        assert (ours[car].lap_time_ms, ours[car].lap_number) == (
            alkamel.duration_ms(row["BESTLAP_1"]),
            int(row["BESTLAP_1_LAPNUM"]),
        ), f"{race} car {car}"
    # the fallback rule (fastest lap but lap 1) agrees too, without the file's marks
    unflagged = [alkamel.TimingLap(lap.line, lap.car_number, lap.lap_number, lap.lap_time_ms) for lap in laps]
    assert {car: lap.lap_number for car, lap in alkamel.official_best(unflagged).items()} == {
        car: lap.lap_number for car, lap in ours.items()
    }


@needs_data
def test_the_known_lap_one_and_one_lap_cases() -> None:
    race1 = alkamel.official_best(alkamel.parse(next(TIMING_DATA.glob("indianapolis_race1_23_*")).read_bytes()).laps)
    race2 = alkamel.official_best(alkamel.parse(next(TIMING_DATA.glob("indianapolis_race2_23_*")).read_bytes()).laps)
    assert (race1["31"].lap_number, race1["31"].lap_time_ms) == (2, 107_868)
    assert "86" not in race1
    assert (race2["113"].lap_number, race2["113"].lap_time_ms) == (2, 124_538)
    assert "3" in race1 and "03" in race1 and race1["3"] != race1["03"]


@needs_data
def test_le_mans_24h_export() -> None:
    path = next(TIMING_DATA.glob("lemans_*"))
    parsed = alkamel.parse(path.read_bytes())
    laps = parsed.laps
    assert len(laps) == 15_593 and len({lap.car_number for lap in laps}) == 62
    per_car = collections.Counter(lap.car_number for lap in laps)
    assert per_car["50"] == 311
    assert sum(lap.crossing_in_pit for lap in laps) == 1_548
    assert sum(lap.pit_time_ms is not None for lap in laps) == 1_542
    assert {lap.flag for lap in laps} == {"GF", "FCY", "SF", "FF"}
    assert max(lap.lap_time_ms for lap in laps) == 63_093_055  # 17:31:33.055, stopped in the garage
    best = alkamel.official_best(laps)
    assert len(best) == 62
    assert all(best[car].lap_improvement in (2, 3) for car in best)
