"""GET /sessions/{id}/standings against the official results of real races, and the results import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chalicelib.timing.alkamel import duration_ms
from tests.integration.conftest import TIMING_DATA, Stack, new_account, token_for
from tests.integration.test_timing_import import CSV, FIXTURES, Api, Weekend, ok, run_worker
from tests.integration.test_timing_import import weekend as weekend  # the fixture, re-exported

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True, scope="module")
def _drained_timing_queue(stack: Stack) -> None:
    """Start from an empty timing queue (other modules queue dozens of imports). Received and deleted
    rather than purged: SQS allows one purge a minute and test_timing_import purges too."""
    import os

    import boto3

    from chalicelib.resources import TIMING_IMPORT_QUEUE

    sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=TIMING_IMPORT_QUEUE.name)["QueueUrl"]
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


RACES = {
    "barber_r1": (
        "barber_race1_23_AnalysisEnduranceWithSections_Race_1_Anonymized.CSV",
        "barber_race1_03_Provisional_Results_Race_1_Anonymized.CSV",
    ),
    "barber_r2": (
        "barber_race2_23_AnalysisEnduranceWithSections_Race_2_Anonymized.CSV",
        "barber_race2_03_Results_GR_Cup_Race_2_Official_Anonymized.CSV",
    ),
    "indy_r1": (
        "indianapolis_race1_23_AnalysisEnduranceWithSections_Race_1.CSV",
        "indianapolis_race1_03_GR_Cup_Race_1_Official_Results.CSV",
    ),
    "indy_r2": (
        "indianapolis_race2_23_AnalysisEnduranceWithSections_Race_2.CSV",
        "indianapolis_race2_03_GR_Cup_Race_2_Official_Results.CSV",
    ),
}


def _race(name: str) -> tuple[Path, Path]:
    laps, results = (TIMING_DATA / f for f in RACES[name])
    if not laps.exists() or not results.exists():
        pytest.skip(f"real timing exports of {name} absent under {TIMING_DATA} (set RACE_TIMING_DATA)")
    return laps, results


def official(path: Path) -> list[dict[str, str]]:
    lines = path.read_bytes().decode("utf-8-sig").splitlines()
    names = [name.strip() for name in lines[0].split(";")]
    return [dict(zip(names, line.split(";"), strict=False)) for line in lines[1:] if line.strip()]


def gap(text: str) -> tuple[int | None, int | None]:
    """GAP_FIRST as printed ("-", "+2.740", "+1:14.985", "1 Lap", "14 Laps") as (ms, laps)."""
    if text == "-":
        return None, None
    if text.endswith(("Lap", "Laps")):
        return None, int(text.split()[0])
    return duration_ms(text.lstrip("+")), 0


def standings(weekend: Weekend) -> dict[str, Any]:
    return ok(weekend.api.get(f"/sessions/{weekend.session['id']}/standings"))  # type: ignore[no-any-return]


@pytest.mark.parametrize("race", ["barber_r1", "barber_r2"])
def test_laps_then_elapsed_time_reproduce_the_official_results_at_barber(weekend: Weekend, race: str) -> None:
    laps, results = _race(race)
    weekend.import_file(laps.read_bytes())
    answer = standings(weekend)
    assert answer["order"] == "laps" and answer["resultsImported"] is False
    rows = official(results)
    got = answer["items"]
    assert [car["number"] for car in got] == [row["NUMBER"] for row in rows]
    for car, row in zip(got, rows, strict=True):
        assert car["position"] == int(row["POSITION"]) == car["roadPosition"]
        assert car["laps"] == int(row["LAPS"])
        assert car["elapsedMs"] == duration_ms(row["TOTAL_TIME"])
        assert (car["gapToLeaderMs"], car["gapToLeaderLaps"]) == gap(row["GAP_FIRST"]), car["number"]
        assert (car["gapToAheadMs"], car["gapToAheadLaps"]) == gap(row["GAP_PREVIOUS"]), car["number"]
        assert (car["bestLapMs"], car["bestLapNumber"]) == (duration_ms(row["FL_TIME"]), int(row["FL_LAPNUM"]))
        assert car["status"] is None and car["penaltyMs"] is None


@pytest.mark.parametrize(
    ("race", "penalties"),
    [("indy_r1", {"22": 5000, "8": 68000, "72": 68000}), ("indy_r2", {"22": 5000, "03": 68000, "5": 68000})],
)
def test_official_results_at_indianapolis_carry_the_penalties_the_lap_file_lacks(
    weekend: Weekend, race: str, penalties: dict[str, int]
) -> None:
    laps, results = _race(race)
    weekend.import_file(laps.read_bytes())
    road = [car["number"] for car in standings(weekend)["items"]]
    rows = official(results)
    assert road != [row["NUMBER"] for row in rows]  # the order on the road is not the classification
    if race == "indy_r1":
        assert road[:2] == ["22", "55"]  # car 22 crossed the line first

    done = weekend.import_file(results.read_bytes())
    assert done["kind"] == "results" and done["lapsCreated"] == 0
    assert (done["rowsRead"], done["resultsCreated"], done["rowsRejectedCount"]) == (len(rows), len(rows), 0)
    answer = standings(weekend)
    assert answer["order"] == "official" and answer["resultsImported"] is True
    got = answer["items"]
    assert [car["number"] for car in got] == [row["NUMBER"] for row in rows]
    for car, row in zip(got, rows, strict=True):
        assert car["position"] == car["officialPosition"] == int(row["POSITION"])
        assert car["status"] == row["STATUS"] == "Classified"
        assert car["totalTimeMs"] == duration_ms(row["TOTAL_TIME"])
        assert car["penaltyMs"] == penalties.get(car["number"], 0), car["number"]
        assert car["roadPosition"] == road.index(car["number"]) + 1
        assert (car["gapToLeaderMs"], car["gapToLeaderLaps"]) == gap(row["GAP_FIRST"]), car["number"]
    if race == "indy_r1":  # first on the road, eighth once its 5 s are added (not second, as issue 21 says)
        assert (got[7]["number"], got[7]["roadPosition"], got[0]["number"]) == ("22", 1, "55")

    again = weekend.import_file(results.read_bytes())  # the same file again: nothing new
    assert (again["resultsCreated"], again["resultsUpdated"], again["resultsUnchanged"]) == (0, 0, len(rows))


RESULTS_HEADER = b"POSITION;NUMBER;STATUS;LAPS;TOTAL_TIME;GAP_FIRST;GAP_PREVIOUS;FL_LAPNUM;FL_TIME;FL_KPH;CLASS\n"


def test_a_results_file_alone_gives_standings_and_its_bad_rows_are_reported_by_line(weekend: Weekend) -> None:
    data = RESULTS_HEADER + (
        b"1;7;Classified;10;20:00.000;-;-;3;1:50.000;140.0;GT3\n"
        b"2;07;Classified;9;20:05.000;1 Lap;1 Lap;4;1:51.000;139.0;GT3\n"
        b"3;9;DNF;four;;;;;;;GT3\n"
        b"4;7;DNF;2;4:00.000;;;;;;GT3\n"
        b"5;12;DNF;2;4:10.000;8 Laps;7 Laps;2;1:59.000;130.0;GT4\n"
    )
    done = weekend.import_file(data)
    assert done["status"] == "done" and done["kind"] == "results"
    assert done["rowsRejected"] == [
        {"line": 4, "reason": "LAPS 'four' is not a whole number"},
        {"line": 5, "reason": "car 7 is already on line 2"},
    ]
    items = standings(weekend)["items"]
    assert [(c["number"], c["status"], c["carId"], c["gapToLeaderLaps"]) for c in items] == [
        ("7", "Classified", None, None),
        ("07", "Classified", None, 1),
        ("12", "DNF", None, 8),
    ]
    assert weekend.laps() == []  # a results file writes no laps and creates no cars
    assert weekend.cars() == {}


def test_a_newer_results_file_replaces_the_classification(weekend: Weekend) -> None:
    weekend.import_file(RESULTS_HEADER + b"1;7;Classified;10;20:00.000;-;-;3;1:50.000;140.0;GT3\n2;8;DNF;3;;;;;;;GT3\n")
    done = weekend.import_file(RESULTS_HEADER + b"1;8;Classified;10;19:59.000;-;-;3;1:50.000;140.0;GT3\n")
    assert (done["resultsCreated"], done["resultsUpdated"], done["resultsUnchanged"]) == (0, 2, 0)
    assert [c["number"] for c in standings(weekend)["items"]] == ["8"]


def test_neither_a_lap_export_nor_results_is_refused_naming_both(weekend: Weekend) -> None:
    answer = weekend.post_csv(b"POSITION;NUMBER;LAPS\n1;7;10\n")
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] and "LAP_TIME" in error["message"] and "03_...Results" in error["message"]


def test_a_lap_added_after_the_import_moves_the_table(weekend: Weekend) -> None:
    weekend.import_file((FIXTURES / "indy_style_race.CSV").read_bytes())
    before = standings(weekend)["items"]
    last = before[-1]
    sheet = next(
        s
        for s in ok(weekend.api.get(f"/run-sheets?sessionId={weekend.session['id']}"))["items"]
        if s["carId"] == last["carId"]
    )
    added = before[0]["laps"] - last["laps"] + 1  # one lap more than the leader
    for number in range(last["laps"] + 1, last["laps"] + added + 1):
        ok(weekend.api.post("/laps", {"runSheetId": sheet["id"], "lapNumber": number, "lapTimeMs": 1000}))
    after = standings(weekend)["items"]
    assert after[0]["number"] == last["number"]
    assert after[0]["laps"] == before[0]["laps"] + 1
    assert after[1]["gapToAheadLaps"] == 1
    # the file's elapsed time, then the sum of lap times after it
    assert after[0]["elapsedMs"] == last["elapsedMs"] + added * 1000


def test_practice_is_ordered_by_best_lap(stack: Stack) -> None:
    email, _ = new_account("owner")
    api = Api(stack.api_url, token_for(email))
    event = ok(api.post("/events", {"name": "Test day"}))
    session = ok(api.post("/sessions", {"eventId": event["id"], "name": "FP1", "type": "practice"}))
    path = f"/sessions/{session['id']}/timing-imports"
    answer = api.call("POST", path, data=(FIXTURES / "indy_style_race.CSV").read_bytes(), headers=CSV)
    run_worker(api, path, answer.json()["id"])
    got = ok(api.get(f"/sessions/{session['id']}/standings"))
    assert got["order"] == "bestLap"
    best = [car["bestLapMs"] for car in got["items"] if car["bestLapMs"] is not None]
    assert best == sorted(best) and len(best) >= 2
    assert got["items"][1]["gapToLeaderMs"] == best[1] - best[0]


def test_another_accounts_session_is_404_and_a_bad_id_or_parameter_is_400(weekend: Weekend, stack: Stack) -> None:
    email, _ = new_account("owner")
    other = Api(stack.api_url, token_for(email))
    path = f"/sessions/{weekend.session['id']}/standings"
    assert other.get(path).status_code == 404
    assert weekend.api.get("/sessions/not-a-uuid/standings").status_code == 400
    assert weekend.api.get(path + "?limit=5").json()["error"]["code"]
    assert weekend.api.get(path + "?limit=5").status_code == 400


def test_a_team_written_custom_of_the_wrong_type_reads_as_absent(weekend: Weekend) -> None:
    weekend.import_file((FIXTURES / "indy_style_race.CSV").read_bytes())
    lap = weekend.laps()[0]
    custom = {"elapsedMs": "soon", "officialBest": "yes", "driverName": 7}
    ok(weekend.api.call("PATCH", f"/laps/{lap['id']}", {"custom": custom}))
    assert all(isinstance(car["position"], int) for car in standings(weekend)["items"])


def test_the_lap_chart_gives_each_cars_laps_as_columns_with_marks(weekend: Weekend, stack: Stack) -> None:
    weekend.import_file((FIXTURES / "indy_style_race.CSV").read_bytes())
    path = f"/sessions/{weekend.session['id']}/lap-chart"
    chart = ok(weekend.api.get(path))
    numbers = {car["id"]: number for number, car in weekend.cars().items()}
    laps = sorted(weekend.laps(), key=lambda lap: (numbers[lap["carId"]], lap["lapNumber"]))
    assert [item["number"] for item in chart["items"]] == sorted(numbers.values())
    columns = [
        (item["number"], n, t, m)
        for item in chart["items"]
        for n, t, m in zip(item["lapNumbers"], item["lapTimesMs"], item["marks"], strict=True)
    ]
    green = {None, "GF", "FF"}
    expected = []
    for i, lap in enumerate(laps):
        before = laps[i - 1] if i and laps[i - 1]["carId"] == lap["carId"] else None
        neutralised = lap["flag"] not in green or (before is not None and before["flag"] not in green)
        number = numbers[lap["carId"]]
        expected.append(
            (number, lap["lapNumber"], lap["lapTimeMs"], lap["isInLap"] | lap["isOutLap"] << 1 | neutralised << 2)
        )
    assert columns == expected
    assert any(m & 4 for _, _, _, m in columns)  # the fixture has neutralised laps
    by_number = {item["number"]: item for item in chart["items"]}
    assert by_number["03"]["elapsedMs"][:2] == [107_285, 213_922]  # the file's ELAPSED column
    email, _ = new_account("owner")
    assert Api(stack.api_url, token_for(email)).get(path).status_code == 404
    assert weekend.api.get(path + "?x=1").status_code == 400
