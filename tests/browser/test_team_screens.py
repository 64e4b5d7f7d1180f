"""The team's other work in Chromium: car issues (from a run sheet and the event's list), the board
(two browsers side by side), the strategy timeline and the run sheet's extra tabs. Screenshots land
in test-artifacts/ (docs/using-the-client.md shows them)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Client, Team, post_laps
from tests.browser.test_web_client import open_run_sheet, stint_laps, unlabelled

pytestmark = pytest.mark.browser

TABLET_LANDSCAPE = {"width": 1024, "height": 768}
TABLET_PORTRAIT = {"width": 768, "height": 1024}
# The elements that stick out of the viewport (to name the culprit of a sideways scroll).
WIDEST = """[...document.querySelectorAll('main *')]
  .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .slice(0, 8).map((e) => `${e.tagName}.${e.className}`)"""


def at_tablet_sizes(page: Any, artifacts: Path, name: str) -> None:
    """Screenshots at both tablet sizes; nothing may scroll the page sideways."""
    for label, size in (("tablet", TABLET_LANDSCAPE), ("tablet-portrait", TABLET_PORTRAIT)):
        page.set_viewport_size(size)
        page.wait_for_timeout(100)  # a layout pass, not a timing threshold
        page.screenshot(path=str(artifacts / f"{name}-{label}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {label}: {page.evaluate(WIDEST)}"
    page.set_viewport_size({"width": 1600, "height": 980})


def test_open_and_resolve_a_car_issue_from_the_run_sheet(client: Client, team: Team, artifacts: Path) -> None:
    from playwright.sync_api import expect

    laps = post_laps(team, stint_laps(team))
    page = open_run_sheet(client, team)
    page.get_by_role("tab", name="Issues").click()
    expect(page.get_by_text("No open issues on this car")).to_be_visible()
    page.get_by_role("button", name="Report issue").click()
    dialog = page.get_by_role("dialog", name="Report a car issue")
    dialog.get_by_label("What is wrong").fill("Brake pedal goes long")
    dialog.get_by_label("Severity").select_option("critical")
    lap5 = next(item for item in laps if item["lapNumber"] == 5)
    dialog.get_by_label("Seen on").select_option(lap5["id"])
    dialog.get_by_label("Details").fill("After the kerb at T17, two laps in a row.")
    assert unlabelled(page) == []
    page.screenshot(path=str(artifacts / "issue-dialog.png"))
    dialog.get_by_role("button", name="Report issue").click()
    row = page.locator(".issues-grid tr.issue-row", has_text="Brake pedal goes long")
    expect(page.locator(".issues-grid tr.issue-row:not(.is-pending)")).to_have_count(1)
    expect(page.locator(".issues-grid tr.issue-row")).to_have_count(1)
    expect(row).to_contain_text("Test User")  # who reported it
    expect(row).to_contain_text("Test 1 · lap 5")  # where it came from
    expect(row.locator(".badge")).to_have_text("Open")
    page.screenshot(path=str(artifacts / "run-sheet-issues.png"))

    stored = team.owner.get(f"/issues?runSheetId={team.run_sheet_id}").json()["items"]
    assert [(i["title"], i["severity"], i["lapId"], i["sessionId"]) for i in stored] == [
        ("Brake pedal goes long", "critical", lap5["id"], team.session_id)
    ]

    row.get_by_role("button", name="Resolve: Brake pedal goes long").click()
    expect(row.locator(".badge")).to_have_text("Resolved")
    expect(page.locator(".tag-pending")).to_have_count(0)
    assert team.owner.get(f"/issues/{stored[0]['id']}").json()["status"] == "resolved"

    # The event's list: per car, by status; resolved ones behind their filter.
    page.goto(client.url(f"#/events/{team.event_id}/issues"))
    expect(page.get_by_role("heading", name="Car issues")).to_be_visible()
    expect(page.get_by_text("No issues here")).to_be_visible()
    page.get_by_role("radio", name=re.compile("^Resolved")).click()
    expect(page.locator(".issues-grid")).to_contain_text("Brake pedal goes long")
    expect(page.locator(".issues-grid")).to_contain_text("#42")
    team.owner.post("/issues", {"carId": team.car_id, "title": "Radio drops out in the infield", "severity": "low"})
    page.get_by_role("radio", name=re.compile("^All")).click()
    page.get_by_role("button", name="Report issue").click()
    dialog = page.get_by_role("dialog", name="Report a car issue")
    dialog.get_by_label("What is wrong").fill("Left rear wheel nut cross-threaded")
    dialog.get_by_label("Severity").select_option("high")
    dialog.get_by_role("button", name="Report issue").click()
    expect(page.locator(".issues-grid tr.issue-row")).to_have_count(2)  # the POSTed one appears on refresh only
    page.reload()  # back to the default filter: unresolved ones of every car
    expect(page.locator(".issues-grid tr.issue-row")).to_have_count(2)
    expect(page.locator(".issues-grid")).to_contain_text("Radio drops out")
    row = page.locator("tr.issue-row", has_text="Left rear wheel nut")
    row.get_by_role("button", name="Start: Left rear wheel nut cross-threaded").click()
    expect(row.locator(".badge")).to_have_text("In progress")
    assert unlabelled(page) == []
    page.screenshot(path=str(artifacts / "car-issues.png"))
    at_tablet_sizes(page, artifacts, "car-issues")
    assert page.errors == []


def open_board(client: Client, team: Team, token: str, user: dict[str, Any], **timings: int) -> Any:
    page = client.open(f"#/events/{team.event_id}/board", token=token, user=user, **timings)
    page.wait_for_selector(".board-page .board")
    page.wait_for_selector("#sync-pill[data-state=online]")
    return page


def column_of(page: Any, title: str) -> Any:
    return page.locator(".board-column", has=page.locator(".board-card", has_text=title))


def test_board_cards_move_live_in_a_second_browser_and_offline_moves_are_sent(
    client: Client, team: Team, stack: Any, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    from tests.browser.conftest import add_member, start_api, stop_api, token_for

    second = team.owner.post("/sessions", {"eventId": team.event_id, "name": "Test 2", "type": "test"}).json()
    mate_email = add_member(team.account_id, "engineer", "Rosa Engineer")
    mate_user = {"name": "Rosa Engineer", "email": mate_email, "role": "engineer", "accountName": "Test Team"}
    a = open_board(client, team, team.token, team.user, pollMs=1000, retryMs=600)
    b = open_board(client, team, token_for(mate_email), mate_user, pollMs=1000, retryMs=600)
    expect(a.locator(".presence")).to_contain_text("RE")  # both are in the event's room

    # Create in A: B sees it without a reload.
    a.get_by_role("button", name="Add card", exact=True).click()
    dialog = a.get_by_role("dialog", name="New card")
    dialog.get_by_label("Title").fill("Order two sets of wets")
    dialog.get_by_label("Notes").fill("Forecast says rain for Sunday.")
    assert unlabelled(a) == []
    dialog.get_by_role("button", name="Add card").click()
    expect(column_of(b, "Order two sets of wets")).to_have_attribute("data-column", "todo")
    a.get_by_role("button", name="Add a card to Blocked").click()
    dialog = a.get_by_role("dialog", name="New card")
    dialog.get_by_label("Title").fill("Brake duct for Test 2")
    dialog.get_by_label("Session").select_option(second["id"])
    dialog.get_by_role("button", name="Add card").click()
    expect(column_of(b, "Brake duct for Test 2")).to_have_attribute("data-column", "blocked")

    # Move in A with the button: it moves in B.
    a.get_by_role("button", name='Move "Order two sets of wets" to In progress').click()
    expect(column_of(b, "Order two sets of wets")).to_have_attribute("data-column", "doing")
    # Move in B with the keyboard: it moves in A.
    card = b.locator(".board-card", has_text="Order two sets of wets")
    card.focus()
    b.keyboard.press("Alt+ArrowRight")
    expect(column_of(a, "Order two sets of wets")).to_have_attribute("data-column", "blocked")
    expect(b.locator(".board-card", has_text="Order two sets of wets")).to_be_focused()
    a.screenshot(path=str(artifacts / "board.png"))
    b.screenshot(path=str(artifacts / "board-second-browser.png"))

    # Filter by session.
    b.get_by_label("Show cards of").select_option(second["id"])
    expect(b.locator(".board-card")).to_have_count(1)
    expect(b.locator(".board-card")).to_contain_text("Brake duct for Test 2")
    assert f"/board/{second['id']}" in b.url
    b.get_by_label("Show cards of").select_option("")

    # Edit in B: A sees the new title.
    b.locator(".board-card", has_text="Brake duct for Test 2").click()
    dialog = b.get_by_role("dialog", name="Edit card")
    dialog.get_by_label("Title").fill("Brake duct (left) for Test 2")
    dialog.get_by_role("button", name="Save card").click()
    expect(a.locator(".board-card", has_text="Brake duct (left) for Test 2")).to_be_visible()

    # Offline in A: the move queues, shows pending, and is sent when the API is back; B sees it.
    stop_api(stack)
    try:
        expect(a.locator("#sync-pill")).to_have_attribute("data-state", "offline", timeout=15_000)
        a.get_by_role("button", name='Move "Order two sets of wets" to Done').click()
        expect(column_of(a, "Order two sets of wets")).to_have_attribute("data-column", "done")
        expect(a.locator(".board-card.is-pending", has_text="Order two sets of wets")).to_be_visible()
        expect(a.locator("#sync-pill")).to_contain_text("1 pending")
        a.screenshot(path=str(artifacts / "board-offline-pending.png"))
    finally:
        start_api(stack)
    expect(a.locator("#sync-pill")).to_have_attribute("data-state", "online", timeout=20_000)
    expect(a.locator(".board-card.is-pending")).to_have_count(0, timeout=10_000)
    expect(column_of(b, "Order two sets of wets")).to_have_attribute("data-column", "done", timeout=15_000)
    stored = team.owner.get(f"/board-cards?eventId={team.event_id}").json()["items"]
    assert {c["title"]: c["column"] for c in stored} == {
        "Order two sets of wets": "done",
        "Brake duct (left) for Test 2": "blocked",
    }

    # Delete in B: gone in A.
    b.locator(".board-card", has_text="Brake duct (left)").click()
    b.get_by_role("dialog", name="Edit card").get_by_role("button", name="Delete").click()
    b.get_by_role("dialog", name='Delete "Brake duct (left) for Test 2"?').get_by_role("button", name="Delete").click()
    expect(a.locator(".board-card", has_text="Brake duct (left)")).to_have_count(0)
    assert unlabelled(a) == []
    at_tablet_sizes(a, artifacts, "board")
    assert a.errors == [] and b.errors == []


def test_a_viewer_reads_the_board_but_cannot_change_it(client: Client, team: Team) -> None:
    from playwright.sync_api import expect

    from tests.browser.conftest import add_member, token_for

    team.owner.post("/board-cards", {"eventId": team.event_id, "title": "Book the hotel"})
    email = add_member(team.account_id, "viewer", "Val Viewer")
    page = open_board(client, team, token_for(email), {"name": "Val Viewer", "email": email, "role": "viewer"})
    expect(page.locator(".board-card")).to_contain_text("Book the hotel")
    expect(page.get_by_role("button", name="Add card", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Move "))).to_have_count(0)
    assert page.errors == []


def test_edit_a_stint_plan_and_see_it_beside_the_actual_stints(client: Client, team: Team, artifacts: Path) -> None:
    from playwright.sync_api import expect

    laps = stint_laps(team)
    for item in laps:
        item["fuelL"] = round(100 - 2.5 * ((item["lapNumber"] - 1) % 7), 1)
    race = team.owner.post("/sessions", {"eventId": team.event_id, "name": "Race", "type": "race"}).json()
    sheet = team.owner.post("/run-sheets", {"sessionId": race["id"], "carId": team.car_id}).json()
    answer = team.owner.post("/laps", {"laps": [{"runSheetId": sheet["id"], **item} for item in laps]})
    assert answer.status_code == 201, answer.text
    page = client.open(f"#/events/{team.event_id}/strategy", token=team.token, user=team.user)
    page.wait_for_selector(".strategy-page .timeline")
    expect(page.locator(".timeline-row", has_text="Actual").locator(".stint")).to_have_count(2)
    expect(page.get_by_text("No plan for this car")).to_be_visible()

    page.get_by_role("button", name="Add stint").click()
    page.get_by_label("Stint 1 driver").select_option(label="Noor Haddad")
    page.get_by_label("Stint 1 planned laps").fill("8")
    page.get_by_label("Stint 1 fuel (L)").fill("100")
    page.get_by_role("button", name="Add stint").click()
    page.get_by_label("Stint 2 driver").select_option(label="Theo Brandt")
    page.get_by_label("Stint 2 planned laps").fill("6")
    page.get_by_label("Stint 2 tyre set").fill("M4")
    assert unlabelled(page) == []
    page.get_by_role("button", name="Save plan").click()
    plan_row = page.locator(".timeline-row", has_text="Plan")
    expect(plan_row.locator(".stint")).to_have_count(2)
    expect(plan_row.locator(".stint").first).to_have_attribute("aria-label", "Stint 1: 8 laps, Noor Haddad, 100 L")
    first = page.locator(".strategy-grid tr[data-stint='1']")
    expect(first).to_contain_text("Noor Haddad")
    expect(first.locator("td").nth(3)).to_have_text("-1")  # planned 8, ran 7
    actual = page.locator(".timeline-row", has_text="Actual").locator(".stint").first
    expect(actual).to_have_attribute("aria-label", re.compile("^Stint 1: laps 1\u20137, Noor Haddad, 15 L used, best "))
    expect(page.locator(".pill .pending-count")).to_be_hidden()  # the outbox sent it (a toast may be gone already)
    stored = team.owner.get(f"/events/{team.event_id}/strategy").json()
    assert [(s["stint"], s["plannedLaps"], s["fuelL"], s["tyreSet"]) for s in stored["cars"][0]["planned"]] == [
        (1, 8, 100.0, None),
        (2, 6, 100.0, "M4"),  # a new stint starts from the previous one's fuel
    ]
    # A teammate's change arrives through the event room.
    body = {"stints": [{"carId": team.car_id, "stint": 1, "plannedLaps": 9, "driverId": team.driver_ids[0]}]}
    assert team.owner.call("PUT", f"/events/{team.event_id}/strategy", body).status_code == 200
    expect(plan_row.locator(".stint")).to_have_count(1)
    expect(page.get_by_label("Stint 1 planned laps")).to_have_value("9")
    page.screenshot(path=str(artifacts / "strategy.png"))
    at_tablet_sizes(page, artifacts, "strategy")
    assert page.errors == []


def test_run_sheet_tabs_setup_change_wear_ambient_overview_and_a_custom_lap_column(
    client: Client, team: Team, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    first = team.owner.call(
        "PATCH",
        f"/run-sheets/{team.run_sheet_id}",
        {"setup": {"rearWingDeg": 8, "frontArbClicks": 3, "tyrePressureKpa": 170}},
    )
    assert first.status_code == 200, first.text
    later = team.owner.post(
        "/sessions", {"eventId": team.event_id, "name": "Test 2", "type": "test", "startsAt": "2026-01-11T15:00:00Z"}
    ).json()
    sheet = team.owner.post("/run-sheets", {"sessionId": later["id"], "carId": team.car_id}).json()
    saved = {"carId": team.car_id, "runSheetId": sheet["id"], "name": "Low drag", "values": {"rearWingDeg": 9.5}}
    saved["values"].update({"frontArbClicks": 3, "brakeBias": 56.5})
    assert team.owner.post("/setups", saved).status_code == 201
    laps = stint_laps(team)
    for item in laps:
        item["custom"] = {"rearTyreTempC": 80 + item["lapNumber"], "note": "ok"}
    assert team.owner.post("/laps", {"laps": [{"runSheetId": sheet["id"], **item} for item in laps]}).status_code == 201
    team.owner.post("/issues", {"carId": team.car_id, "title": "Gearbox whine in 4th", "severity": "high"})

    page = client.open(f"#/run-sheets/{sheet['id']}/changes", token=team.token, user=team.user)
    page.wait_for_selector(".diff-grid")
    rows = page.locator(".diff-grid tbody tr")
    expect(rows).to_have_count(3)  # the anti-roll bar did not change
    expect(page.locator('.diff-grid tr[data-key="rearWingDeg"]')).to_contain_text("+1.5")
    expect(page.locator('.diff-grid tr[data-key="brakeBias"]')).to_contain_text("added")
    expect(page.locator('.diff-grid tr[data-key="tyrePressureKpa"]')).to_contain_text("removed")
    expect(page.get_by_text('this run: saved setup "Low drag"')).to_be_visible()
    page.screenshot(path=str(artifacts / "run-sheet-setup-change.png"))

    # Wear and Ambient are tabs of their own now, saved through the outbox.
    page.get_by_role("tab", name="Wear", exact=True).click()
    wear = page.locator(".kv-panel", has_text="Wear")
    wear.get_by_role("button", name="Row").click()
    wear.get_by_label("Wear: name of row 1").fill("frontLeftMm")
    wear.get_by_label(re.compile("^Wear: (row 1|Front Left Mm)$")).last.fill("6.2")
    wear.get_by_role("button", name="Save").click()
    expect(page.locator(".pill .pending-count")).to_be_hidden()  # sent
    assert team.owner.get(f"/run-sheets/{sheet['id']}").json()["wear"] == {"frontLeftMm": 6.2}
    page.get_by_role("tab", name="Ambient", exact=True).click()
    expect(page.get_by_role("heading", name="Ambient", exact=True)).to_be_visible()

    # Overview: best, stints, open issues and setup changes at a glance.
    page.get_by_role("tab", name="Overview", exact=True).click()
    glance = page.get_by_role("group", name="At a glance")
    expect(glance).to_contain_text("1:44.233")
    expect(glance.locator(".kpi", has_text="Setup changes")).to_contain_text("3")
    expect(glance.locator(".kpi", has_text="Open issues")).to_contain_text("1")
    expect(page.locator(".overview")).to_contain_text("Gearbox whine in 4th")
    page.screenshot(path=str(artifacts / "run-sheet-overview.png"))

    # A custom lap column from lap.custom.
    page.get_by_role("tab", name="Laps", exact=True).click()
    page.get_by_role("button", name="Columns").click()
    dialog = page.get_by_role("dialog", name="Lap columns")
    dialog.get_by_label("Show rearTyreTempC").check()
    dialog.get_by_label("rearTyreTempC: column title").fill("Rear tyre")
    dialog.get_by_label("rearTyreTempC: unit").fill("°C")
    assert unlabelled(page) == []
    page.screenshot(path=str(artifacts / "lap-columns-dialog.png"))
    dialog.get_by_role("button", name="Save columns").click()
    expect(page.locator(".laps-grid thead")).to_contain_text("Rear tyre (°C)")
    expect(page.locator('.laps-grid tr[data-lap="9"] td').nth(-2)).to_have_text("89")  # before the actions
    expect(page.locator(".pill .pending-count")).to_be_hidden()  # sent
    stored = team.owner.get(f"/run-sheets/{sheet['id']}").json()["lapColumns"]
    assert stored == [{"key": "rearTyreTempC", "label": "Rear tyre", "type": "number", "unit": "°C"}]
    page.screenshot(path=str(artifacts / "run-sheet-custom-column.png"))
    at_tablet_sizes(page, artifacts, "run-sheet-tabs")
    assert page.errors == []
