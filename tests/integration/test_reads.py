"""Read routes: the seeded data, filters, pagination, and isolation between accounts."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Api

pytestmark = pytest.mark.integration

LIST_ROUTES = ["/events", "/sessions", "/cars", "/drivers", "/run-sheets", "/laps"]


def _sebring(api: Api) -> dict[str, object]:
    return next(e for e in api.get("/events").json()["items"] if "Sebring" in e["name"])


def test_seeded_sebring_weekend_is_visible(jamie: Api) -> None:
    event = _sebring(jamie)
    sessions = jamie.get(f"/sessions?eventId={event['id']}").json()["items"]
    assert {s["type"] for s in sessions} == {"practice", "qualifying", "race"}
    cars = jamie.get(f"/cars?eventId={event['id']}").json()["items"]
    assert sorted(c["number"] for c in cars) == ["7", "77"]
    sheets = jamie.get(f"/run-sheets?eventId={event['id']}").json()["items"]
    assert len(sheets) == 6


def test_seeded_laps_are_realistic(jamie: Api) -> None:
    sheet = jamie.get("/run-sheets").json()["items"][0]
    laps = jamie.get(f"/laps?runSheetId={sheet['id']}&limit=500").json()["items"]
    assert laps, "seeded run sheets have laps"
    assert [lap["lapNumber"] for lap in laps] == list(range(1, len(laps) + 1))
    for lap in laps:
        assert sum(lap["sectorTimesMs"]) == lap["lapTimeMs"]
    assert laps[0]["isOutLap"] and laps[-1]["isInLap"]


def test_pagination_walks_every_row_once(jamie: Api) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        path = "/laps?limit=7" + (f"&cursor={cursor}" if cursor else "")
        page = jamie.get(path).json()
        seen.extend(lap["id"] for lap in page["items"])
        cursor = page["nextCursor"]
        if not cursor:
            break
    everything = jamie.get("/laps?limit=500").json()["items"]
    assert len(seen) == len(set(seen)) == len(everything)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=abc", "limit"),
        ("cursor=%%%", "cursor"),
        ("cursor=WzFd", "cursor"),
        ("eventId=not-a-uuid", "eventId"),
        ("runSheetId='%20OR%201=1--", "runSheetId"),
        ("lapNumber=1e9999", "lapNumber"),
        ("isValid=yes", "isValid"),
        ("colour=red", "colour"),
        ("limit=5&limit=6", "limit"),
    ],
)
def test_bad_list_parameters_are_400_naming_the_field(jamie: Api, query: str, field: str) -> None:
    answer = jamie.get(f"/laps?{query}")
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"] == field


@pytest.mark.parametrize("route", LIST_ROUTES)
def test_lists_only_show_the_callers_account(jamie: Api, alex: Api, route: str) -> None:
    mine = {item["id"] for item in jamie.get(f"{route}?limit=500").json()["items"]}
    theirs = {item["id"] for item in alex.get(f"{route}?limit=500").json()["items"]}
    assert mine and theirs and not mine & theirs


@pytest.mark.parametrize("route", LIST_ROUTES)
def test_another_accounts_id_is_404_on_every_read_route(jamie: Api, alex: Api, route: str) -> None:
    their_item = alex.get(route).json()["items"][0]
    answer = jamie.get(f"{route}/{their_item['id']}")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"
    assert alex.get(f"{route}/{their_item['id']}").status_code == 200


@pytest.mark.parametrize(
    ("route", "parameter"),
    [
        ("/sessions", "eventId"),
        ("/cars", "eventId"),
        ("/run-sheets", "sessionId"),
        ("/laps", "runSheetId"),
        ("/laps", "carId"),
        ("/laps", "sessionId"),
        ("/run-sheets", "eventId"),
    ],
)
def test_filtering_by_another_accounts_parent_finds_nothing(jamie: Api, alex: Api, route: str, parameter: str) -> None:
    source = {"eventId": "/events", "sessionId": "/sessions", "runSheetId": "/run-sheets", "carId": "/cars"}
    their_parent = alex.get(source[parameter]).json()["items"][0]["id"]
    answer = jamie.get(f"{route}?{parameter}={their_parent}")
    assert answer.status_code == 200
    assert answer.json()["items"] == []


def test_unknown_ids_are_404_and_malformed_ids_400(jamie: Api) -> None:
    assert jamie.get("/events/00000000-0000-4000-8000-000000000000").status_code == 404
    assert jamie.get("/events/not-a-uuid").status_code == 400
