"""Writes to race data: validation, roles, cascades, isolation and the domain events they record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.integration.conftest import Api, Stack, new_account, token_for

pytestmark = pytest.mark.integration


class Team:
    """A fresh account with members of every role and a small weekend."""

    def __init__(self, stack: Stack) -> None:
        email, self.account_id = new_account("owner")
        self.owner = Api(stack.api_url, token_for(email))
        self.by_role = {"owner": self.owner}
        for role in ("admin", "engineer", "viewer"):
            self.by_role[role] = Api(stack.api_url, token_for(_add_member(stack, self.account_id, role)))
        self.event = self.ok(
            self.owner.post("/events", {"name": "Daytona 24", "track": "Daytona", "startsAt": "2026-01-24T18:40:00Z"})
        )
        self.session = self.ok(
            self.owner.post("/sessions", {"eventId": self.event["id"], "name": "Race", "type": "race"})
        )
        self.car = self.ok(
            self.owner.post(
                "/cars", {"eventId": self.event["id"], "number": "07", "class": "GTD", "liveryColor": "#112233"}
            )
        )
        self.sheet = self.ok(self.owner.post("/run-sheets", {"sessionId": self.session["id"], "carId": self.car["id"]}))

    @staticmethod
    def ok(answer: Any) -> dict[str, Any]:
        assert answer.status_code in (200, 201), answer.text
        return answer.json()  # type: ignore[no-any-return]


def _add_member(stack: Stack, account_id: str, role: str) -> str:
    import uuid

    email = f"{role}-{uuid.uuid4().hex[:8]}@example.test"
    with psycopg.connect(stack.database_url) as conn:
        user_id = conn.execute(
            "INSERT INTO users (email, name) VALUES (%s, %s) RETURNING id", (email, role.title())
        ).fetchone()[0]  # type: ignore[index]
        conn.execute("INSERT INTO memberships VALUES (%s, %s, %s)", (account_id, user_id, role))
    return email


@pytest.fixture()
def team(stack: Stack) -> Team:
    return Team(stack)


def _events(stack: Stack, account_id: str) -> list[tuple[str, Any]]:
    with psycopg.connect(stack.database_url) as conn:
        return [
            (t, d)
            for t, d in conn.execute(
                "SELECT type, data FROM domain_events WHERE account_id = %s ORDER BY id", (account_id,)
            )
        ]


def test_create_update_delete_record_domain_events(team: Team, stack: Stack) -> None:
    card = team.ok(team.owner.post("/board-cards", {"title": "Check brake ducts", "sessionId": team.session["id"]}))
    updated = team.ok(team.owner.call("PATCH", f"/board-cards/{card['id']}", {"column": "done"}))
    assert updated["column"] == "done" and updated["title"] == "Check brake ducts"
    assert team.owner.delete(f"/board-cards/{card['id']}").status_code == 200
    assert team.owner.get(f"/board-cards/{card['id']}").status_code == 404
    types = [t for t, _ in _events(stack, team.account_id)]
    assert types[:4] == ["event.create", "session.create", "car.create", "run_sheet.create"]
    assert types[-3:] == ["board_card.create", "board_card.update", "board_card.delete"]


def test_run_sheet_tabs_round_trip(team: Team) -> None:
    patch = {
        "setup": {"rearWingDeg": 8.5},
        "tyres": {"set": "M3", "pressuresKpa": [170, 171, 168, 169]},
        "engineerNotes": "Understeer in T1",
        "lapColumns": [{"key": "fuelUsed", "label": "Fuel", "type": "number", "unit": "l"}],
    }
    sheet = team.ok(team.owner.call("PATCH", f"/run-sheets/{team.sheet['id']}", patch))
    for key, value in patch.items():
        assert sheet[key] == value


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/events", {}, "name"),
        ("/events", {"name": "x", "startsAt": "2026-01-02T00:00:00Z", "endsAt": "2026-01-01T00:00:00Z"}, "endsAt"),
        ("/events", {"name": "x", "startsAt": "yesterday"}, "startsAt"),
        ("/events", {"name": "x", "colour": "red"}, "colour"),
        ("/events", {"name": 7}, "name"),
        ("/events", {"name": "x" * 201}, "name"),
        ("/sessions", {"name": "FP1", "type": "practice"}, "eventId"),
        ("/sessions", {"eventId": "EVENT", "name": "FP1", "type": "sprint"}, "type"),
        ("/cars", {"eventId": "EVENT", "number": "7 7"}, "number"),
        ("/cars", {"eventId": "EVENT", "number": "8", "liveryColor": "red"}, "liveryColor"),
        ("/cars", {"eventId": "not-a-uuid", "number": "8"}, "eventId"),
        ("/run-sheets", {"sessionId": "SESSION"}, "carId"),
        ("/run-sheets", {"sessionId": "SESSION", "carId": "CAR", "lapColumns": [{"key": "a"}]}, "lapColumns[0].label"),
        ("/issues", {"carId": "CAR", "title": "Vibration", "severity": "meh"}, "severity"),
        ("/board-cards", {"title": "t", "position": -1}, "position"),
        ("/setups", {"carId": "CAR", "name": "base", "values": []}, "values"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_changes_nothing(
    team: Team, stack: Stack, path: str, body: dict[str, Any], field: str
) -> None:
    ids = {"EVENT": team.event["id"], "SESSION": team.session["id"], "CAR": team.car["id"]}
    body = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    before = _events(stack, team.account_id)
    answer = team.owner.post(path, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"] == field
    assert _events(stack, team.account_id) == before


def test_duplicate_car_number_is_409_but_07_and_7_are_different_cars(team: Team) -> None:
    again = team.owner.post("/cars", {"eventId": team.event["id"], "number": "07"})
    assert again.status_code == 409 and "07" in again.json()["error"]["message"]
    assert team.owner.post("/cars", {"eventId": team.event["id"], "number": "7"}).status_code == 201


def test_second_run_sheet_for_the_same_session_and_car_is_409(team: Team) -> None:
    again = team.owner.post("/run-sheets", {"sessionId": team.session["id"], "carId": team.car["id"]})
    assert again.status_code == 409


def test_run_sheet_car_must_belong_to_the_sessions_event(team: Team) -> None:
    other = team.ok(team.owner.post("/events", {"name": "Sebring"}))
    car = team.ok(team.owner.post("/cars", {"eventId": other["id"], "number": "1"}))
    answer = team.owner.post("/run-sheets", {"sessionId": team.session["id"], "carId": car["id"]})
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "carId"


def test_create_only_fields_cannot_change(team: Team) -> None:
    answer = team.owner.call("PATCH", f"/cars/{team.car['id']}", {"eventId": team.event["id"]})
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "eventId"
    assert team.owner.call("PATCH", f"/cars/{team.car['id']}", {}).status_code == 400


def test_deleting_a_parent_with_children_is_409_unless_cascade(team: Team, stack: Stack) -> None:
    blocked = team.owner.delete(f"/events/{team.event['id']}")
    assert blocked.status_code == 409
    assert "cascade=true" in blocked.json()["error"]["message"]
    assert team.owner.get(f"/sessions/{team.session['id']}").status_code == 200
    done = team.ok(team.owner.delete(f"/events/{team.event['id']}?cascade=true"))
    assert done["deleted"]["sessions"] == 1 and done["deleted"]["run_sheets"] == 1
    for path in (
        f"/events/{team.event['id']}",
        f"/sessions/{team.session['id']}",
        f"/cars/{team.car['id']}",
        f"/run-sheets/{team.sheet['id']}",
    ):
        assert team.owner.get(path).status_code == 404
    assert team.owner.delete(f"/events/{team.event['id']}?cascade=maybe").status_code == 400


ROLE_CASES: list[tuple[str, str, Callable[[Team], tuple[str, str, Any]]]] = [
    ("viewer", "create", lambda t: ("POST", "/board-cards", {"title": "x"})),
    ("viewer", "update", lambda t: ("PATCH", f"/cars/{t.car['id']}", {"class": "GT3"})),
    ("viewer", "delete", lambda t: ("DELETE", f"/run-sheets/{t.sheet['id']}", None)),
]


@pytest.mark.parametrize(("role", "what", "request_of"), ROLE_CASES)
def test_viewers_read_but_do_not_write(
    team: Team, role: str, what: str, request_of: Callable[[Team], tuple[str, str, Any]]
) -> None:
    method, path, body = request_of(team)
    answer = team.by_role[role].call(method, path, body)
    assert answer.status_code == 403, answer.text
    assert team.by_role[role].get(f"/cars/{team.car['id']}").status_code == 200


def test_engineers_write_race_data(team: Team) -> None:
    engineer = team.by_role["engineer"]
    issue = team.ok(
        engineer.post(
            "/issues",
            {
                "carId": team.car["id"],
                "title": "Vibration at 250 km/h",
                "severity": "high",
                "sessionId": team.session["id"],
            },
        )
    )
    assert issue["status"] == "open"
    setup = team.ok(
        engineer.post(
            "/setups",
            {
                "carId": team.car["id"],
                "runSheetId": team.sheet["id"],
                "name": "Quali trim",
                "values": {"rideHeightMm": 55},
            },
        )
    )
    assert setup["values"] == {"rideHeightMm": 55}


WRITE_ROUTES = ["/events", "/sessions", "/cars", "/drivers", "/run-sheets", "/setups", "/issues", "/board-cards"]


@pytest.mark.parametrize("route", WRITE_ROUTES)
def test_another_accounts_rows_cannot_be_changed_or_deleted(team: Team, stack: Stack, route: str) -> None:
    rival = Api(stack.api_url, token_for("alex@rivalmotorsport.io"))
    mine = {
        "/events": team.event,
        "/sessions": team.session,
        "/cars": team.car,
        "/run-sheets": team.sheet,
        "/drivers": lambda: team.ok(team.owner.post("/drivers", {"name": "A. Driver", "carId": team.car["id"]})),
        "/setups": lambda: team.ok(team.owner.post("/setups", {"carId": team.car["id"], "name": "s"})),
        "/issues": lambda: team.ok(team.owner.post("/issues", {"carId": team.car["id"], "title": "i"})),
        "/board-cards": lambda: team.ok(team.owner.post("/board-cards", {"title": "b"})),
    }[route]
    row = mine() if callable(mine) else mine
    before = team.owner.get(f"{route}/{row['id']}").json()
    assert rival.get(f"{route}/{row['id']}").status_code == 404
    patch_field = {
        "/events": "name",
        "/sessions": "name",
        "/cars": "class",
        "/drivers": "name",
        "/run-sheets": "engineerNotes",
        "/setups": "name",
        "/issues": "title",
        "/board-cards": "title",
    }
    assert rival.call("PATCH", f"{route}/{row['id']}", {patch_field[route]: "hijacked"}).status_code == 404
    assert rival.delete(f"{route}/{row['id']}?cascade=true").status_code == 404
    assert team.owner.get(f"{route}/{row['id']}").json() == before


def test_parents_from_another_account_are_404(team: Team, stack: Stack) -> None:
    rival = Api(stack.api_url, token_for("alex@rivalmotorsport.io"))
    assert rival.post("/sessions", {"eventId": team.event["id"], "name": "x", "type": "test"}).status_code == 404
    assert rival.post("/cars", {"eventId": team.event["id"], "number": "99"}).status_code == 404
    assert team.owner.get(f"/cars?eventId={team.event['id']}").json()["items"] == [team.car]


def test_strategy_plan_and_actual_stints(team: Team, stack: Stack) -> None:
    with psycopg.connect(stack.database_url) as conn:
        for n in range(1, 9):
            conn.execute(
                "INSERT INTO laps (account_id, run_sheet_id, session_id, car_id, lap_number, lap_time_ms, "
                "is_out_lap, is_in_lap) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    team.account_id,
                    team.sheet["id"],
                    team.session["id"],
                    team.car["id"],
                    n,
                    100_000 + n,
                    n in (1, 6),
                    n in (5, 8),
                ),
            )
    plan = {
        "stints": [
            {"carId": team.car["id"], "stint": 1, "plannedLaps": 6},
            {"carId": team.car["id"], "stint": 2, "plannedLaps": 3},
        ]
    }
    assert team.owner.call("PUT", f"/events/{team.event['id']}/strategy", plan).status_code == 200
    strategy = team.ok(team.owner.get(f"/events/{team.event['id']}/strategy"))
    car = strategy["cars"][0]
    assert [s["laps"] for s in car["actual"]] == [5, 3]
    assert [c["deltaLaps"] for c in car["comparison"]] == [-1, 0]
    duplicate = {"stints": [{"carId": team.car["id"], "stint": 1, "plannedLaps": 6}] * 2}
    answer = team.owner.call("PUT", f"/events/{team.event['id']}/strategy", duplicate)
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "stints[1].stint"
    rival = Api(stack.api_url, token_for("alex@rivalmotorsport.io"))
    assert rival.get(f"/events/{team.event['id']}/strategy").status_code == 404
