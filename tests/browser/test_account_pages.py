"""Joining by email in Chromium: the team page (invite, role, remove; controls for admins only), sign-up
and its emailed confirmation, and accepting an emailed invitation as someone new or as an existing
login. Every link is read from the local SES mail (GET /_aws/ses), as a person would open it."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import Client, Team, add_member
from tests.browser.test_team_screens import at_tablet_sizes
from tests.browser.test_web_client import unlabelled
from tests.integration.conftest import CONFIRM_ROUTE, INVITE_ROUTE, PASSWORD, new_account, token_for

pytestmark = pytest.mark.browser


def mailed_link(client: Client, to: str, route: str) -> str:
    """The newest emailed `route` link to `to`, pointed at this test's web client and API."""
    from infra.local import mail

    link = mail.latest_link(to, route, os.environ["AWS_ENDPOINT_URL"])
    return client.url("#" + urlsplit(link).fragment)


def open_link(client: Client, link: str, token: str | None = None, user: dict[str, Any] | None = None) -> Any:
    return client.open("#" + urlsplit(link).fragment, token=token, user=user)


def member(team: Team, email: str) -> dict[str, Any] | None:
    items = team.owner.get("/members?limit=500").json()["items"]
    return next((m for m in items if m["email"] == email), None)


def signed_in(page: Any) -> dict[str, Any]:
    return dict(page.evaluate("window.race.session && window.race.session.user"))


def joined_as(page: Any, team: Team, email: str, role: str) -> dict[str, Any]:
    """The page landed on the events signed in to `team` as `email` with `role`; the team lists them active."""
    from playwright.sync_api import expect

    expect(page).to_have_url(re.compile(r"#/events$"))
    user = signed_in(page)
    assert (user["email"], user["role"], user["accountId"]) == (email, role, team.account_id)
    joined = member(team, email)
    assert joined is not None and (joined["status"], joined["role"]) == ("active", role)
    return joined


def test_admin_invites_changes_a_role_and_removes(client: Client, team: Team, artifacts: Path) -> None:
    from playwright.sync_api import expect

    engineer = add_member(team.account_id, "engineer", "Eve Engineer")
    page = client.open("#/members", token=team.token, user=team.user)
    rows = page.locator(".members-grid tr.member-row")
    expect(rows).to_have_count(2)
    yourself = page.locator("tr.member-row", has_text=team.email)
    expect(yourself).to_contain_text("YOU")
    expect(yourself.locator("select, button")).to_have_count(0)  # no demoting or removing yourself here
    invitee = f"invitee-{uuid.uuid4().hex[:8]}@example.test"
    page.get_by_label("Email", exact=True).fill(invitee)
    page.get_by_label("Role", exact=True).select_option("engineer")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status").filter(has_text="Invitation emailed")).to_contain_text(invitee)
    invited = page.locator("tr.member-row", has_text=invitee)
    expect(invited.locator(".badge")).to_have_text("Invited")
    assert member(team, invitee)["status"] == "invited"  # type: ignore[index]
    assert INVITE_ROUTE[1:] in mailed_link(client, invitee, INVITE_ROUTE)  # the link went to the mailbox
    assert unlabelled(page) == []
    page.screenshot(path=str(artifacts / "members-admin.png"), full_page=True)
    at_tablet_sizes(page, artifacts, "members-admin")

    page.get_by_label(f"Role of {invitee}").select_option("viewer")
    expect(page.get_by_text(f"{invitee} is now viewer")).to_be_visible()
    assert member(team, invitee)["role"] == "viewer"  # type: ignore[index]
    page.get_by_label(f"Role of {engineer}").select_option("admin")
    expect(page.get_by_text("Eve Engineer is now admin")).to_be_visible()
    assert member(team, engineer)["role"] == "admin"  # type: ignore[index]

    page.get_by_role("button", name=f"Remove {engineer}").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    expect(page.locator("tr.member-row", has_text=engineer)).to_have_count(0)
    assert member(team, engineer) is None
    page.get_by_role("button", name=f"Withdraw invitation to {invitee}").click()
    page.get_by_role("dialog").get_by_role("button", name="Withdraw").click()
    expect(invited).to_have_count(0)
    assert member(team, invitee) is None
    expect(rows).to_have_count(1)
    assert page.errors == []


def test_members_see_the_team_without_the_controls(client: Client, team: Team, artifacts: Path) -> None:
    from playwright.sync_api import expect

    engineer = add_member(team.account_id, "engineer", "Eve Engineer")
    user = {"name": "Eve Engineer", "email": engineer, "role": "engineer", "accountName": "Test Team"}
    page = client.open("#/events", token=token_for(engineer), user=user)
    page.get_by_role("link", name="Team", exact=True).click()
    expect(page.locator(".members-grid tr.member-row")).to_have_count(2)
    expect(page.locator("tr.member-row", has_text=team.email)).to_contain_text("owner")
    expect(page.get_by_role("button", name="Send invitation")).to_have_count(0)
    expect(page.locator(".members-grid select, .members-grid button")).to_have_count(0)
    page.screenshot(path=str(artifacts / "members-engineer.png"), full_page=True)
    assert page.errors == []


def test_sign_up_then_confirm_from_the_emailed_link(client: Client, artifacts: Path) -> None:
    from playwright.sync_api import expect

    email = f"founder-{uuid.uuid4().hex[:8]}@example.test"
    chosen = "pit-wall-2026!"
    page = client.open("#/login")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Your name").fill("Mara Quinn")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Team name").fill("Quinn Motorsport")
    page.get_by_label("Password").fill(chosen)
    assert unlabelled(page) == []
    page.screenshot(path=str(artifacts / "sign-up.png"))
    at_tablet_sizes(page, artifacts, "sign-up")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status")).to_contain_text(f"We sent a confirmation link to {email}")
    page.screenshot(path=str(artifacts / "sign-up-sent.png"))

    # Not confirmed yet: the login is refused with the reason.
    page.get_by_role("link", name="Back to sign in").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(chosen)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("confirm your email first")

    confirm = open_link(client, mailed_link(client, email, CONFIRM_ROUTE))
    expect(confirm.get_by_role("heading", name="Confirm your email")).to_be_visible()
    assert "token=" not in confirm.url  # the one-time token leaves the address bar
    confirm.get_by_label("Password").fill("not-the-one-chosen")
    confirm.get_by_role("button", name="Confirm and sign in").click()
    expect(confirm.get_by_role("alert")).to_contain_text("password is not the one chosen at sign-up")
    confirm.screenshot(path=str(artifacts / "confirm.png"))
    confirm.get_by_label("Password").fill(chosen)
    confirm.get_by_role("button", name="Confirm and sign in").click()
    expect(confirm.locator("#sync-pill")).to_be_visible()
    expect(confirm).to_have_url(re.compile(r"#/events$"))
    user = signed_in(confirm)
    assert (user["email"], user["role"], user["accountName"]) == (email, "owner", "Quinn Motorsport")
    assert page.errors == [] and confirm.errors == []


def test_someone_new_joins_from_the_emailed_invitation(client: Client, team: Team, artifacts: Path) -> None:
    from playwright.sync_api import expect

    newcomer = f"newcomer-{uuid.uuid4().hex[:8]}@example.test"
    answer = team.owner.post("/members", {"email": newcomer, "role": "engineer"})
    assert answer.status_code == 201, answer.text
    page = open_link(client, mailed_link(client, newcomer, INVITE_ROUTE))
    expect(page.get_by_role("heading", name="Join a team")).to_be_visible()
    page.get_by_role("button", name="Join the team").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter your name")
    page.get_by_label("Your name").fill("Nico Vale")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Join the team").click()
    expect(page.get_by_role("alert")).to_contain_text("at least 10 characters")
    page.get_by_label("Password").fill("fresh-tyres-42")
    assert unlabelled(page) == []
    page.screenshot(path=str(artifacts / "accept-invite-new.png"))
    page.get_by_role("button", name="Join the team").click()
    assert joined_as(page, team, newcomer, "engineer")["name"] == "Nico Vale"
    assert page.errors == []


def test_an_existing_login_accepts_signed_in_as_itself(client: Client, team: Team, artifacts: Path) -> None:
    from playwright.sync_api import expect

    existing, other_account = new_account("owner")
    answer = team.owner.post("/members", {"email": existing, "role": "viewer"})
    assert answer.status_code == 201 and answer.json()["userId"] is None, answer.text
    link = mailed_link(client, existing, INVITE_ROUTE)

    # Signed in as someone else (the inviting owner): the invitation is not theirs to take.
    wrong = open_link(client, link, token=team.token, user=team.user)
    expect(wrong.get_by_text(f"You are signed in as {team.email}")).to_be_visible()
    wrong.get_by_role("button", name="Accept invitation").click()
    expect(wrong.get_by_role("alert")).to_contain_text(f"this invitation is for {existing}")
    wrong.get_by_role("button", name="Not this email? Sign in as someone else").click()
    expect(wrong.get_by_role("alert")).to_contain_text("Sign in as the invited email")
    expect(wrong.get_by_role("button", name="Sign in")).to_be_visible()

    # Anonymous, the link cannot set a password on a login that exists: sign in first.
    page = open_link(client, link)
    page.get_by_label("Your name").fill("Squatter")
    page.get_by_label("Password").fill("taken-over-123")
    page.get_by_role("button", name="Join the team").click()
    expect(page.get_by_role("alert")).to_contain_text("already has a login")
    page.get_by_role("button", name="Sign in to accept").click()
    page.get_by_label("Email").fill(existing)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"You are signed in as {existing}")).to_be_visible()
    assert signed_in(page)["accountId"] == other_account
    page.screenshot(path=str(artifacts / "accept-invite-signed-in.png"))
    page.get_by_role("button", name="Accept invitation").click()
    assert joined_as(page, team, existing, "viewer")["name"] == "Test User"
    assert page.errors == [] and wrong.errors == []
