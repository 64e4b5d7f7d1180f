"""The web client in a real browser (Debian's Chromium): sign in, run sheet, live laps, the sync
pill through an API outage, webhook replay. Screenshots land in test-artifacts/."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import (
    Api,
    Client,
    Team,
    add_member,
    lap,
    post_laps,
    routes_exist,
    start_api,
    stop_api,
    token_for,
    webhook_worker,
)

pytestmark = pytest.mark.browser

SEBRING = "Sebring 12 Hours"


def test_sign_in_and_open_a_run_sheet(client: Client, artifacts: Path) -> None:
    page = client.open("#/events")
    page.get_by_label("Email").fill("jamie@apexracing.io")
    page.get_by_label("Password").fill("sebring12h")
    page.screenshot(path=str(artifacts / "sign-in.png"))
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name=re.compile(SEBRING)).click()
    page.get_by_role("link", name="Run sheet Race, car 7", exact=True).click()
    page.wait_for_selector(".laps-grid tbody tr.lap-row")
    page.wait_for_selector("#sync-pill[data-state=online]")
    page.screenshot(path=str(artifacts / "run-sheet.png"))
    assert page.errors == []


def stint_laps(team: Team) -> list[dict[str, Any]]:
    """Two stints of a test session: out lap, laps at pace (one invalid), in lap with a pit stop."""
    first, second = team.driver_ids
    laps = [lap(1, 112_900, first, 1, isOutLap=True, isValid=False)]
    pace = (104_812, 104_530, 104_377, 104_690, 104_955)
    laps += [lap(n, t, first, 1) for n, t in zip(range(2, 7), pace, strict=True)]
    laps[3]["isValid"] = False  # track limits on lap 4
    laps.append(lap(7, 109_420, first, 1, isInLap=True, isValid=False, pitTimeMs=41_300))
    laps.append(lap(8, 114_020, second, 2, isOutLap=True, isValid=False))
    pace = (104_401, 104_233, 104_615, 104_298, 104_702)
    laps += [lap(n, t, second, 2) for n, t in zip(range(9, 14), pace, strict=True)]
    return laps


def open_run_sheet(
    client: Client, team: Team, token: str | None = None, user: dict[str, Any] | None = None, **timings: int
) -> Any:
    page = client.open(
        f"#/run-sheets/{team.run_sheet_id}", token=token or team.token, user=user or team.user, **timings
    )
    page.wait_for_selector(".laps-grid tr.lap-row")
    page.wait_for_selector("#sync-pill[data-state=online]")
    return page


def test_a_lap_posted_by_another_client_appears_without_reload(client: Client, team: Team, artifacts: Path) -> None:
    from playwright.sync_api import expect

    post_laps(team, stint_laps(team))
    page = open_run_sheet(client, team)
    mate_email = add_member(team.account_id, "engineer", "Sam Ortiz")
    mate = open_run_sheet(
        client,
        team,
        token_for(mate_email),
        {"name": "Sam Ortiz", "email": mate_email, "role": "engineer", "accountName": "Test Team"},
    )
    # Presence: each sees both people in the session.
    expect(page.locator(".presence .presence-item")).to_have_count(2)
    expect(mate.locator(".presence .presence-item")).to_have_count(2)
    page.evaluate("window.__stillTheSamePage = true")
    post_laps(team, [lap(14, 104_105, team.driver_ids[1], 2)])
    for viewer in (page, mate):
        row = viewer.locator('.laps-grid tr[data-lap="14"]')
        expect(row).to_be_visible()
        expect(row.locator(".lap-time")).to_contain_text("1:44.105")
        expect(row.locator(".tag-best")).to_be_visible()  # the new best lap
    assert page.evaluate("window.__stillTheSamePage") is True
    expect(page.locator(".kpi-best .kpi-value")).to_have_text("1:44.105")
    page.screenshot(path=str(artifacts / "run-sheet-live.png"))
    assert page.errors == [] and mate.errors == []


def test_pill_goes_reconnecting_then_offline_and_queued_writes_are_sent_on_reconnect(
    client: Client, team: Team, stack: Any, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    post_laps(team, stint_laps(team))
    page = open_run_sheet(client, team, pollMs=1000, retryMs=600)
    pill = page.locator("#sync-pill")
    expect(pill).to_have_text(re.compile("Online"))
    page.screenshot(path=str(artifacts / "pill-online.png"))
    rows = page.locator(".laps-grid tr.lap-row")
    expect(rows).to_have_count(13)
    laps_writable = routes_exist(team, "POST", "/laps")

    stop_api(stack)
    try:
        expect(pill).to_have_attribute("data-state", "reconnecting", timeout=10_000)
        expect(pill).to_have_text(re.compile("Reconnecting"))
        page.screenshot(path=str(artifacts / "pill-reconnecting.png"))
        expect(pill).to_have_attribute("data-state", "offline", timeout=15_000)
        banner = page.locator(".offline-banner")
        expect(banner).to_be_visible()
        expect(banner.locator("#offline-error")).to_contain_text("GET /health")
        expect(rows).to_have_count(13)  # the offline cache stays on screen
        page.screenshot(path=str(artifacts / "pill-offline.png"))

        # Writes made while Offline queue, in order.
        if laps_writable:
            page.get_by_role("button", name="Add lap").click()
            dialog = page.get_by_role("dialog", name="Add lap")
            dialog.get_by_label("Lap time", exact=True).fill("1:44.050")
            dialog.get_by_role("button", name="Add lap").click()
            expect(page.locator('.laps-grid tr[data-lap="14"] .tag-pending')).to_be_visible()
        page.get_by_role("tab", name="Notes").click()
        notes = page.get_by_label("Notes for this run (visible to the whole team)")
        for text in ("Offline note 1: rear feels loose", "Offline note 2: try +1 click rear wing"):
            notes.fill(text)
            page.get_by_role("button", name="Save notes").click()
        queued = 3 if laps_writable else 2
        expect(pill).to_contain_text(f"{queued} pending")
        pill.click()
        expect(page.locator("#sync-details")).to_contain_text("/auth/me")
        page.screenshot(path=str(artifacts / "pill-offline-details.png"))
        pill.click()
    finally:
        start_api(stack)

    expect(pill).to_have_attribute("data-state", "online", timeout=20_000)
    expect(pill.locator(".pending-count")).to_be_hidden(timeout=10_000)
    expect(page.locator(".offline-banner")).to_be_hidden()
    sheet = team.owner.get(f"/run-sheets/{team.run_sheet_id}").json()
    assert sheet["engineerNotes"] == "Offline note 2: try +1 click rear wing"  # sent in order
    if laps_writable:
        laps = team.owner.get(f"/laps?runSheetId={team.run_sheet_id}&lapNumber=14").json()["items"]
        assert [item["lapTimeMs"] for item in laps] == [104_050]
    page.get_by_role("tab", name="Laps").click()
    page.screenshot(path=str(artifacts / "pill-online-again.png"))
    assert page.errors == []


def test_admin_creates_an_api_key_shown_once_and_revokes_it(client: Client, team: Team, artifacts: Path) -> None:
    from playwright.sync_api import expect

    page = client.open("#/admin/keys", token=team.token, user=team.user)
    page.get_by_label("Name").fill("timing-bridge")
    page.get_by_label("Role").select_option("engineer")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key-secret")
    expect(secret).to_have_text(re.compile(r"^race_"))
    key = secret.inner_text()
    by_key = Api(client.stack.api_url, api_key=key)
    assert by_key.get("/auth/me").json()["role"] == "engineer"
    expect(page.locator("table.grid tbody tr")).to_have_count(1)
    page.screenshot(path=str(artifacts / "admin-api-keys.png"))
    page.get_by_role("button", name="I have stored it").click()
    expect(secret).to_have_count(0)  # shown once: gone from the page
    page.get_by_role("button", name="Revoke key timing-bridge").click()
    page.get_by_role("button", name="Revoke", exact=True).click()
    expect(page.get_by_text("No API keys")).to_be_visible()
    assert by_key.get("/auth/me").status_code == 401  # revoked at once
    assert page.errors == []


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button, a[href], [role=tab]')]
    .filter((el) => el.offsetParent !== null || el.getClientRects().length)
    .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
      && !el.getAttribute('aria-labelledby') && !el.textContent.trim() && !el.title)
    .map((el) => el.outerHTML.slice(0, 120))"""


def unlabelled(page: Any) -> list[str]:
    """Visible controls a screen reader could not name."""
    return list(page.evaluate(UNLABELLED))


def test_every_screen_renders_and_is_keyboard_reachable(client: Client, artifacts: Path) -> None:
    from playwright.sync_api import expect

    jamie = {"name": "Jamie Hart", "email": "jamie@apexracing.io", "role": "owner", "accountName": "Apex Racing"}
    page = client.open("#/events", token=token_for("jamie@apexracing.io"), user=jamie)
    expect(page.get_by_role("link", name=re.compile(SEBRING))).to_be_visible()
    page.screenshot(path=str(artifacts / "events.png"))
    page.get_by_role("link", name=re.compile(SEBRING)).click()
    expect(page.get_by_role("table")).to_contain_text("Qualifying")
    page.screenshot(path=str(artifacts / "event.png"))
    page.get_by_role("link", name="Run sheet FP1, car 77").click()
    page.wait_for_selector(".laps-grid tr.lap-row")
    # Keyboard: the tabs follow the arrow keys; the pill is a button with its details behind it.
    page.get_by_role("tab", name="Laps").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Setup", exact=True)).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("heading", name="Setup", exact=True)).to_be_visible()
    page.screenshot(path=str(artifacts / "tab-setup.png"))
    for tab in ("Setup change", "Tyres", "Wear", "Ambient", "Notes", "Issues", "Files", "Overview"):
        page.keyboard.press("ArrowRight")
        expect(page.get_by_role("tab", name=tab, exact=True)).to_have_attribute("aria-selected", "true")
        page.screenshot(path=str(artifacts / f"tab-{tab.lower().replace(' ', '-')}.png"))
    page.keyboard.press("Home")
    assert unlabelled(page) == []
    page.get_by_role("button", name="Edit lap 3").click()
    expect(page.get_by_role("dialog", name="Edit lap 3")).to_be_visible()
    page.screenshot(path=str(artifacts / "lap-dialog.png"))
    assert unlabelled(page) == []
    page.keyboard.press("Escape")
    pill = page.locator("#sync-pill")
    pill.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#sync-details")).to_be_visible()
    expect(pill).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#sync-live")).to_have_text("Connection Online")
    page.keyboard.press("Escape")
    expect(page.locator("#sync-details")).to_be_hidden()
    for section in ("webhooks", "plugins"):
        page.goto(client.url(f"#/admin/{section}"))
        expect(page.locator(".admin-content h1")).to_be_visible()
        page.screenshot(path=str(artifacts / f"admin-{section}.png"))
        assert unlabelled(page) == []
    assert page.errors == []


def test_a_file_uploads_through_the_presigned_url(client: Client, team: Team, artifacts: Path) -> None:
    from playwright.sync_api import expect

    if not routes_exist(team, "GET", f"/run-sheets/{team.run_sheet_id}/attachments"):
        pytest.skip("attachments are not built on this API yet")
    page = client.open(f"#/run-sheets/{team.run_sheet_id}/files", token=team.token, user=team.user)
    # moto answers the CORS preflight of a presigned URL with 403 (it checks the signed headers on
    # OPTIONS too), where S3 answers it from the bucket's CORS rules. Requests to the emulator go
    # through Playwright's router, which answers the preflight itself; the PUT still reaches moto.
    uploads: list[str] = []
    page.context.route(
        f"{client.stack.aws_endpoint_url}/**", lambda route: (uploads.append(route.request.method), route.continue_())
    )
    page.get_by_label("Add files").set_input_files(
        files=[{"name": "stint1-pressures.csv", "mimeType": "text/csv", "buffer": b"corner,cold_kpa\nFL,165\n"}]
    )
    page.get_by_role("button", name="Upload").click()
    row = page.locator("tr", has_text="stint1-pressures.csv")
    expect(row.get_by_role("link", name="Download")).to_be_visible()
    expect(row).to_contain_text("uploaded")
    page.screenshot(path=str(artifacts / "tab-files-uploaded.png"))
    assert uploads == ["PUT"]
    items = team.owner.get(f"/run-sheets/{team.run_sheet_id}/attachments").json()["items"]
    assert [(a["fileName"], a["sizeBytes"], a["status"]) for a in items] == [("stint1-pressures.csv", 23, "uploaded")]
    assert page.errors == []


def test_an_engineer_adds_and_edits_laps_and_teammates_see_it_live(client: Client, team: Team, artifacts: Path) -> None:
    from playwright.sync_api import expect

    if not (routes_exist(team, "POST", "/laps") and routes_exist(team, "PATCH", f"/laps/{team.run_sheet_id}")):
        pytest.skip("POST /laps and PATCH /laps/{id} are not built on this API yet")
    post_laps(team, stint_laps(team))
    mate_email = add_member(team.account_id, "engineer", "Sam Ortiz")
    mate = {"name": "Sam Ortiz", "email": mate_email, "role": "engineer", "accountName": "Test Team"}
    engineer = open_run_sheet(client, team, token_for(mate_email), mate)
    owner = open_run_sheet(client, team)

    engineer.get_by_role("button", name="Add lap").click()
    dialog = engineer.get_by_role("dialog", name="Add lap")
    expect(dialog.get_by_label("Lap", exact=True)).to_have_value("14")
    dialog.get_by_label("Lap time", exact=True).fill("1:44.180")
    dialog.get_by_role("button", name="Add lap").click()
    for page in (engineer, owner):
        expect(page.locator('.laps-grid tr[data-lap="14"] .lap-time')).to_contain_text("1:44.180")
    expect(engineer.locator('.laps-grid tr[data-lap="14"] .tag-pending')).to_have_count(0)

    engineer.get_by_role("button", name="Edit lap 12").click()
    dialog = engineer.get_by_role("dialog", name="Edit lap 12")
    dialog.get_by_label("Valid").uncheck()
    dialog.get_by_role("button", name="Save lap").click()
    for page in (engineer, owner):
        expect(page.locator('.laps-grid tr[data-lap="12"]')).to_have_class(re.compile("is-invalid"))
        expect(page.locator('.laps-grid tr[data-lap="12"] .lap-time s')).to_have_text("1:44.298")
    saved = team.owner.get(f"/laps?runSheetId={team.run_sheet_id}&lapNumber=12").json()["items"][0]
    assert saved["isValid"] is False and saved["lapTimeMs"] == 104_298  # only the changed field was sent
    owner.screenshot(path=str(artifacts / "run-sheet-edited-live.png"))
    assert engineer.errors == [] and owner.errors == []


def test_replay_a_failed_delivery_from_the_admin_screen(
    client: Client, team: Team, stack: Any, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    from tests.webhook_receiver import Answer, Receiver

    if not routes_exist(team, "GET", "/webhooks"):
        pytest.skip("webhooks are not built on this API yet")
    receiver = Receiver().start()
    receiver.answer = Answer(status=503, body=b"race control bridge restarting")
    try:
        with webhook_worker(stack):
            answer = team.owner.post(
                "/webhooks", {"url": receiver.url, "entityTypes": ["run_sheet"], "description": "Race control bridge"}
            )
            assert answer.status_code == 201, answer.text
            hook = answer.json()
            assert (
                team.owner.call(
                    "PATCH", f"/run-sheets/{team.run_sheet_id}", {"engineerNotes": "Box this lap"}
                ).status_code
                == 200
            )

            def delivery_status() -> str | None:
                items = team.owner.get(f"/webhooks/{hook['id']}/deliveries?limit=500").json()["items"]
                return items[0]["status"] if items else None

            deadline = time.monotonic() + 30
            while delivery_status() != "failed":
                assert time.monotonic() < deadline, f"the delivery never failed for good ({delivery_status()})"
                time.sleep(0.2)
            receiver.answer = Answer(status=200, body=b"ok")

            page = client.open("#/admin/webhooks", token=team.token, user=team.user)
            page.get_by_role("link", name="Recent deliveries").click()
            failed = page.locator("tr.delivery-row.is-failed")
            expect(failed).to_have_count(1)
            expect(failed).to_contain_text("run_sheet.update")
            expect(failed).to_contain_text("503")
            page.get_by_role("button", name=re.compile("^Attempts of delivery")).click()
            expect(page.locator(".attempts tbody tr")).to_have_count(4)  # the first try and 3 retries
            page.screenshot(path=str(artifacts / "webhook-deliveries-failed.png"))

            failed.get_by_role("button", name=re.compile("^Replay delivery")).click()
            expect(page.locator("tr.delivery-row .badge-succeeded")).to_be_visible(timeout=20_000)
            expect(page.locator("tr.delivery-row.is-failed")).to_have_count(0)
            expect(page.locator(".attempts tbody tr")).to_have_count(5)
            expect(page.locator(".attempts tbody tr").last).to_contain_text("200")
            page.screenshot(path=str(artifacts / "webhook-deliveries-replayed.png"))
            assert len(receiver.requests) == 5
            assert page.errors == []
    finally:
        receiver.stop()


def test_plugins_list_versions_and_grants(client: Client, team: Team, artifacts: Path) -> None:
    from playwright.sync_api import expect

    if not routes_exist(team, "GET", "/plugins"):
        pytest.skip("plugins are not built on this API yet")
    manifest = {
        "id": "tyre-deg",
        "name": "Tyre degradation",
        "interfaces": ["math", "kpiProcessor"],
        "capabilities": ["storage", "fetch:weather.example.com"],
    }
    bundle = "var plugin = { math: function (x) { return x; }, kpiProcessor: function (x) { return {}; } };"
    for version in ("1.0.0", "1.1.0"):
        answer = team.owner.post("/plugins", {"manifest": {**manifest, "version": version}, "bundle": bundle})
        assert answer.status_code == 201, answer.text
    page = client.open("#/admin/plugins", token=team.token, user=team.user)
    page.get_by_role("link", name="Tyre degradation").click()
    expect(page.locator(".admin-content table tbody tr")).to_have_count(2)
    page.get_by_label("storage").check()
    page.get_by_role("button", name="Save grants").click()
    expect(page.get_by_text("Grants saved")).to_be_visible()
    assert team.owner.get("/plugins/tyre-deg").json()["grants"] == ["storage"]
    page.screenshot(path=str(artifacts / "admin-plugin.png"))
    assert page.errors == []
