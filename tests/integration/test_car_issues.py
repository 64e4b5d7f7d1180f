"""Car issues: who reported them, the run sheet or lap they came from, per-event listing, isolation."""

from __future__ import annotations

import psycopg
import pytest

from tests.integration.conftest import Api, Stack
from tests.integration.test_race_data import Team

pytestmark = pytest.mark.integration


@pytest.fixture()
def team(stack: Stack) -> Team:
    return Team(stack)


def _lap(team: Team, number: int = 1, sheet: dict | None = None) -> dict:
    sheet = sheet or team.sheet
    return team.ok(team.owner.post("/laps", {"runSheetId": sheet["id"], "lapNumber": number, "lapTimeMs": 91_234}))


def _user_id(stack: Stack, api: Api) -> str:
    me = api.get("/auth/me").json()
    return str(me["user"]["id"])


def test_issue_from_a_lap_records_reporter_and_source(team: Team, stack: Stack) -> None:
    engineer = team.by_role["engineer"]
    lap = _lap(team)
    issue = team.ok(
        engineer.post(
            "/issues",
            {
                "carId": team.car["id"],
                "sessionId": team.session["id"],
                "runSheetId": team.sheet["id"],
                "lapId": lap["id"],
                "title": "Brake pedal long",
                "severity": "critical",
            },
        )
    )
    assert issue["reportedBy"] == _user_id(stack, engineer)
    assert (issue["runSheetId"], issue["lapId"], issue["severity"]) == (team.sheet["id"], lap["id"], "critical")
    listed = team.ok(team.owner.get(f"/issues?runSheetId={team.sheet['id']}"))["items"]
    assert [i["id"] for i in listed] == [issue["id"]]
    resolved = team.ok(team.owner.call("PATCH", f"/issues/{issue['id']}", {"status": "resolved"}))
    assert resolved["status"] == "resolved" and resolved["reportedBy"] == issue["reportedBy"]


def test_reporter_cannot_be_sent_or_changed(team: Team) -> None:
    body = {"carId": team.car["id"], "title": "x", "reportedBy": "00000000-0000-0000-0000-000000000001"}
    answer = team.owner.post("/issues", body)
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "reportedBy"
    issue = team.ok(team.owner.post("/issues", {"carId": team.car["id"], "title": "x"}))
    answer = team.owner.call("PATCH", f"/issues/{issue['id']}", {"reportedBy": issue["reportedBy"]})
    assert answer.status_code == 400


def test_issue_without_session_is_heard_in_its_run_sheet_room(team: Team, stack: Stack) -> None:
    issue = team.ok(team.owner.post("/issues", {"carId": team.car["id"], "runSheetId": team.sheet["id"], "title": "x"}))
    with psycopg.connect(stack.database_url) as conn:
        row = conn.execute(
            "SELECT session_id FROM domain_events WHERE entity = 'issue' AND entity_id = %s", (issue["id"],)
        ).fetchone()
    assert row is not None and str(row[0]) == team.session["id"]


def test_source_must_fit_the_car(team: Team) -> None:
    other_car = team.ok(team.owner.post("/cars", {"eventId": team.event["id"], "number": "99"}))
    lap = _lap(team)
    cases = [
        ({"carId": other_car["id"], "runSheetId": team.sheet["id"]}, "runSheetId"),
        ({"carId": other_car["id"], "lapId": lap["id"]}, "lapId"),
    ]
    second_session = team.ok(
        team.owner.post("/sessions", {"eventId": team.event["id"], "name": "Q", "type": "qualifying"})
    )
    second_sheet = team.ok(team.owner.post("/run-sheets", {"sessionId": second_session["id"], "carId": team.car["id"]}))
    cases.append(({"carId": team.car["id"], "runSheetId": second_sheet["id"], "lapId": lap["id"]}, "lapId"))
    cases.append(
        ({"carId": team.car["id"], "runSheetId": second_sheet["id"], "sessionId": team.session["id"]}, "runSheetId")
    )
    for body, field in cases:
        answer = team.owner.post("/issues", {**body, "title": "x"})
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["error"]["field"] == field
    assert team.ok(team.owner.get("/issues"))["items"] == []  # nothing partial


def test_another_accounts_run_sheet_or_lap_is_not_found(team: Team, stack: Stack) -> None:
    rival = Team(stack)
    lap = _lap(rival, sheet=rival.sheet)
    for body in ({"runSheetId": rival.sheet["id"]}, {"lapId": lap["id"]}):
        answer = team.owner.post("/issues", {"carId": team.car["id"], "title": "x", **body})
        assert answer.status_code == 404, answer.text
    issue = team.ok(rival.owner.post("/issues", {"carId": rival.car["id"], "title": "theirs"}))
    assert team.owner.get(f"/issues/{issue['id']}").status_code == 404
    assert team.ok(team.owner.get(f"/issues?eventId={rival.event['id']}"))["items"] == []
    assert team.ok(team.owner.get(f"/issues?reportedBy={issue['reportedBy']}"))["items"] == []


def test_issues_listed_per_event_and_kept_when_the_lap_goes(team: Team, stack: Stack) -> None:
    lap = _lap(team)
    issue = team.ok(
        team.owner.post(
            "/issues", {"carId": team.car["id"], "runSheetId": team.sheet["id"], "lapId": lap["id"], "title": "x"}
        )
    )
    other_event = team.ok(team.owner.post("/events", {"name": "Sebring"}))
    assert [i["id"] for i in team.ok(team.owner.get(f"/issues?eventId={team.event['id']}"))["items"]] == [issue["id"]]
    assert team.ok(team.owner.get(f"/issues?eventId={other_event['id']}"))["items"] == []
    assert team.owner.delete(f"/laps/{lap['id']}").status_code == 200
    kept = team.ok(team.owner.get(f"/issues/{issue['id']}"))
    assert kept["lapId"] is None and kept["runSheetId"] == team.sheet["id"]


def test_an_api_key_reports_as_its_creator(team: Team, stack: Stack) -> None:
    created = team.ok(team.owner.post("/api-keys", {"name": "pit wall", "role": "engineer"}))
    key = Api(stack.api_url, api_key=created["key"])
    issue = team.ok(key.post("/issues", {"carId": team.car["id"], "title": "from the timing screen"}))
    assert issue["reportedBy"] == _user_id(stack, team.owner)


def test_viewer_cannot_report(team: Team) -> None:
    answer = team.by_role["viewer"].post("/issues", {"carId": team.car["id"], "title": "x"})
    assert answer.status_code == 403
