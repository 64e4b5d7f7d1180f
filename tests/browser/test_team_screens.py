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


def at_tablet_sizes(page: Any, artifacts: Path, name: str) -> None:
    """Screenshots at both tablet sizes; nothing may scroll the page sideways."""
    for label, size in (("tablet", TABLET_LANDSCAPE), ("tablet-portrait", TABLET_PORTRAIT)):
        page.set_viewport_size(size)
        page.wait_for_timeout(100)  # a layout pass, not a timing threshold
        page.screenshot(path=str(artifacts / f"{name}-{label}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {label}"
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
