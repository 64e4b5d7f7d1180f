"""The session view in Chromium: a real race imported from the page (presigned upload, the worker
behind its queue), the field's order against the official results, penalties, the charts, a lap
added in a second browser moving the table, roles, tablet sizes and the Le Mans budget.
Screenshots land in test-artifacts/."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Api, Client, Team, add_member, token_for
from tests.integration.conftest import TIMING_DATA, Stack

pytestmark = pytest.mark.browser

BARBER_R1 = TIMING_DATA / "barber_race1_23_AnalysisEnduranceWithSections_Race_1_Anonymized.CSV"
BARBER_R1_RESULTS = TIMING_DATA / "barber_race1_03_Provisional_Results_Race_1_Anonymized.CSV"
INDY_R1 = TIMING_DATA / "indianapolis_race1_23_AnalysisEnduranceWithSections_Race_1.CSV"
INDY_R1_RESULTS = TIMING_DATA / "indianapolis_race1_03_GR_Cup_Race_1_Official_Results.CSV"
LEMANS = TIMING_DATA / "lemans_2024_23_Analysis_Race_Hour_24.csv"


def need(*paths: Path) -> None:
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        pytest.skip(f"real timing exports absent under {TIMING_DATA} (set RACE_TIMING_DATA): {', '.join(missing)}")


@contextlib.contextmanager
def timing_worker(stack: Stack) -> Iterator[None]:
    """The timing-import worker behind its SQS queue, as the dev stack runs it."""
    import boto3

    from app import app
    from chalicelib.resources import TIMING_IMPORT_QUEUE
    from infra.local.sqs_poller import SqsPoller

    sqs = boto3.client("sqs", endpoint_url=stack.aws_endpoint_url, region_name="us-east-1")
    poller = SqsPoller(app, sqs, wait_time_s=1, only={TIMING_IMPORT_QUEUE.name})
    poller.start_in_thread()
    try:
        yield
    finally:
        poller.stop()


def race_session(team: Team, name: str = "Race 1") -> str:
    answer = team.owner.post(
        "/sessions", {"eventId": team.event_id, "name": name, "type": "race", "startsAt": "2026-01-11T15:00:00Z"}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def official_order(path: Path) -> list[str]:
    lines = path.read_bytes().decode("utf-8-sig").splitlines()[1:]
    return [line.split(";")[1] for line in lines if line.strip()]


def open_session(client: Client, team: Team, session_id: str, token: str | None = None, **user: Any) -> Any:
    page = client.open(f"#/sessions/{session_id}", token=token or team.token, user=user or team.user)
    # Requests to the emulator go through Playwright's router (see test_a_file_uploads_through_the_presigned_url).
    page.context.route(f"{client.stack.aws_endpoint_url}/**", lambda route: route.continue_())
    page.wait_for_selector(".session-view:not([aria-busy])")
    page.wait_for_selector("#sync-pill[data-state=online]")
    return page


def import_from_page(page: Any, path: Path) -> Any:
    from playwright.sync_api import expect

    line = page.locator(".import-line")
    previous = line.get_attribute("data-import-id") if line.count() else None
    page.get_by_label("Timing file (Al Kamel CSV)").set_input_files(str(path))
    page.get_by_role("button", name="Import").click()
    if previous:  # the line of an earlier import says done already: wait for this import's own line
        expect(line).not_to_have_attribute("data-import-id", previous, timeout=60_000)
    expect(line).to_have_attribute("data-status", re.compile("done|failed"), timeout=60_000)
    expect(line).to_have_attribute("data-status", "done")
    return page.locator(".import-status")


def table_order(page: Any) -> list[str]:
    return list(page.locator(".standings-grid tbody tr.standing").evaluate_all("rows => rows.map(r => r.dataset.car)"))


def test_a_real_race_imported_from_the_page_reads_in_the_official_order(
    client: Client, team: Team, stack: Stack, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    need(BARBER_R1, BARBER_R1_RESULTS)
    session_id = race_session(team)
    ours = team.owner.post("/cars", {"eventId": team.event_id, "number": "13", "class": "Am"})
    assert ours.status_code == 201, ours.text
    page = open_session(client, team, session_id)
    expect(page.locator(".standings-grid")).to_contain_text("No cars yet")
    with timing_worker(stack):
        status = import_from_page(page, BARBER_R1)
        expect(status.locator("[data-count=rowsRead]")).to_have_text("579")
        expect(status.locator("[data-count=created]")).to_have_text("579")
        expect(status.locator("[data-count=rejected]")).to_have_text("0")
        official = official_order(BARBER_R1_RESULTS)
        expect(page.locator(".standings-grid tbody tr.standing")).to_have_count(len(official))
        assert table_order(page) == official  # laps, then elapsed time: the official classification
        expect(page.locator('tr.standing[data-car="13"]')).to_have_class(re.compile("is-ours"))
        expect(page.locator('tr.standing[data-car="13"] .tag-ours')).to_be_visible()
        expect(page.locator('tr.standing[data-car="22"] .gap')).to_have_text("+2.740")
        expect(page.locator('tr.standing[data-car="88"] .gap')).to_have_text("+14 laps")
        # Default picks: ours and the three fastest of our class, in both charts.
        expect(page.locator("#pace-chart .car-series")).to_have_count(4)
        expect(page.locator("#race-trace .car-series")).to_have_count(4)
        expect(page.locator('#pace-chart .car-series.ours[data-car="13"]')).to_have_count(1)
        page.screenshot(path=str(artifacts / "session-view-barber.png"), full_page=True)

        again = import_from_page(page, BARBER_R1)  # the same file again
        expect(again.locator(".import-nothing-new")).to_be_visible()
        expect(again.locator("[data-count=created]")).to_have_text("0")
        expect(again.locator("[data-count=updated]")).to_have_text("0")
        page.screenshot(path=str(artifacts / "session-view-import-again.png"))

    # Keyboard: the class filter and a car's chart toggle are reachable and work without a mouse.
    page.get_by_label("Class").focus()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Class")).to_have_value("Am")
    toggle = page.get_by_label("Chart car 88")
    toggle.focus()
    page.keyboard.press("Space")
    expect(page.locator("#pace-chart .car-series")).to_have_count(5)
    for width, height in ((1024, 768), (768, 1024)):
        page.set_viewport_size({"width": width, "height": height})
        expect(page.locator("#pace-chart svg")).to_have_attribute("width", re.compile(r"\d+"))
        page.screenshot(path=str(artifacts / f"session-view-{width}x{height}.png"))
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the page scrolls sideways at {width}x{height}"
    assert page.errors == []


def test_official_results_from_the_page_show_penalties_and_the_road_order(
    client: Client, team: Team, stack: Stack, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    need(INDY_R1, INDY_R1_RESULTS)
    session_id = race_session(team)
    page = open_session(client, team, session_id)
    with timing_worker(stack):
        import_from_page(page, INDY_R1)
        expect(page.locator(".standings-grid tbody tr.standing").first).to_have_attribute("data-car", "22")
        status = import_from_page(page, INDY_R1_RESULTS)
        expect(status).to_contain_text("official results")
        expect(status.locator("[data-count=created]")).to_have_text("29")
    official = official_order(INDY_R1_RESULTS)
    expect(page.locator(".standings-grid tbody tr.standing").first).to_have_attribute("data-car", official[0])
    assert table_order(page) == official
    car22 = page.locator('tr.standing[data-car="22"]')
    expect(car22.locator(".pos")).to_contain_text("8")
    expect(car22.locator(".tag-road")).to_have_text("ROAD P1")
    expect(car22.locator(".penalty")).to_have_text("+5.000")
    expect(page.locator('tr.standing[data-car="8"] .penalty')).to_have_text("+1:08.000")
    expect(car22).to_contain_text("Classified")
    page.screenshot(path=str(artifacts / "session-view-official-results.png"), full_page=True)
    assert page.errors == []


def test_a_lap_added_in_a_second_browser_moves_the_table(client: Client, team: Team, artifacts: Path) -> None:
    from playwright.sync_api import expect

    session_id = race_session(team)
    sheets = {}
    for number, times in (("1", [100_000] * 3), ("2", [101_000] * 3), ("3", [100_000] * 2)):
        car = team.owner.post("/cars", {"eventId": team.event_id, "number": number, "isCompetitor": True}).json()
        sheets[number] = team.owner.post("/run-sheets", {"sessionId": session_id, "carId": car["id"]}).json()["id"]
        laps = [{"runSheetId": sheets[number], "lapNumber": i + 1, "lapTimeMs": t} for i, t in enumerate(times)]
        assert team.owner.post("/laps", {"laps": laps}).status_code == 201
    watcher = open_session(client, team, session_id)
    assert table_order(watcher) == ["1", "2", "3"]
    watcher.evaluate("window.__stillTheSamePage = true")
    mate_email = add_member(team.account_id, "engineer", "Sam Ortiz")
    mate = {"name": "Sam Ortiz", "email": mate_email, "role": "engineer", "accountName": "Test Team"}
    other = client.open(f"#/run-sheets/{sheets['3']}", token=token_for(mate_email), user=mate)
    other.wait_for_selector(".laps-grid tr.lap-row")
    other.get_by_role("button", name="Add lap").click()
    dialog = other.get_by_role("dialog", name="Add lap")
    dialog.get_by_label("Lap time", exact=True).fill("1:00.000")
    dialog.get_by_role("button", name="Add lap").click()
    # Car 3 now has 3 laps in 260 s: it leads, without a reload of the first browser.
    expect(watcher.locator(".standings-grid tbody tr.standing").first).to_have_attribute("data-car", "3")
    expect(watcher.locator('tr.standing[data-car="1"] .gap')).to_have_text("+40.000")
    assert watcher.evaluate("window.__stillTheSamePage") is True
    watcher.screenshot(path=str(artifacts / "session-view-live.png"))
    other.screenshot(path=str(artifacts / "session-view-live-second-browser.png"))
    assert watcher.errors == [] and other.errors == []


def test_a_viewer_reads_the_session_but_sees_no_import(client: Client, team: Team) -> None:
    from playwright.sync_api import expect

    session_id = race_session(team)
    viewer_email = add_member(team.account_id, "viewer", "Vic Viewer")
    viewer = {"name": "Vic Viewer", "email": viewer_email, "role": "viewer", "accountName": "Test Team"}
    page = open_session(client, team, session_id, token=token_for(viewer_email), **viewer)
    expect(page.get_by_role("heading", name="Standings")).to_be_visible()
    expect(page.get_by_label("Timing file (Al Kamel CSV)")).to_have_count(0)
    expect(page.get_by_role("button", name="Import")).to_have_count(0)
    assert page.errors == []


def test_the_event_page_links_to_the_session_view(client: Client, team: Team) -> None:
    from playwright.sync_api import expect

    page = client.open(f"#/events/{team.event_id}", token=team.token, user=team.user)
    page.get_by_role("link", name="Session view Test 1: every car").click()
    expect(page).to_have_url(re.compile(f"#/sessions/{team.session_id}$"))
    expect(page.get_by_role("heading", name="Standings")).to_be_visible()


def test_le_mans_loads_within_budget(client: Client, team: Team, stack: Stack, artifacts: Path) -> None:
    """Measures (and reports) the load time and bytes of the session view for 15,593 laps."""
    from tests.integration.test_timing_import import run_worker

    need(LEMANS)
    session_id = race_session(team, "Le Mans 24 Hours")
    api = Api(stack.api_url, team.token)
    path = f"/sessions/{session_id}/timing-imports"
    answer = api.call("POST", path, data=LEMANS.read_bytes(), headers={"Content-Type": "text/csv"})
    assert answer.status_code == 202, answer.text
    done = run_worker(api, path, answer.json()["id"])
    assert done["lapsCreated"] == 15593
    tab = client.open(f"#/sessions/{session_id}", token=team.token, user=team.user)
    tab.wait_for_selector(".session-view[data-load-ms]", timeout=60_000)
    load_ms = int(tab.locator(".session-view").get_attribute("data-load-ms"))
    series = tab.locator("#pace-chart .car-series").count()
    # What the view fetched for its table and charts, byte for byte as the API sends it.
    sizes = {name: len(api.get(f"/sessions/{session_id}/{name}").content) for name in ("standings", "lap-chart")}
    measured = {
        "laps": 15593,
        "cars": tab.locator("tr.standing").count(),
        "loadMs": load_ms,
        "bytes": sizes,
        "chartedCars": series,
    }
    (artifacts / "session-view-lemans.json").write_text(json.dumps(measured, indent=2) + "\n")
    tab.screenshot(path=str(artifacts / "session-view-lemans.png"))
    print(f"MEASURED session view Le Mans: {measured}")  # the issue asks for the numbers
    assert measured["cars"] == 62 and series >= 3
    assert sum(sizes.values()) < 3 * 1024 * 1024  # the fields the charts need, not every lap's wire form
