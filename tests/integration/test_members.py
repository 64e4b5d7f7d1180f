"""Accounts and members against the real stack: sign-up, invitations, role rules, removal, passwords."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.integration.conftest import (
    CONFIRM_ROUTE,
    JWT_SECRET,
    PASSWORD,
    Api,
    Stack,
    mailed_token,
    new_account,
    token_for,
)

pytestmark = pytest.mark.integration
NEW_PASSWORD = "a-longer-pit-wall-passphrase"


def _email(tag: str = "m") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@members.test"


def _db(stack: Stack) -> psycopg.Connection[Any]:
    return psycopg.connect(stack.database_url, autocommit=True)


def _owner(stack: Stack) -> tuple[Api, str]:
    email, account_id = new_account("owner")
    return Api(stack.api_url, token_for(email)), account_id


def _jwt(user_id: str, account_id: str, role: str) -> str:
    from chalicelib.domain.tokens import issue_jwt

    return issue_jwt(JWT_SECRET, user_id=user_id, account_id=account_id, role=role, ttl_s=3600)


def _join(stack: Stack, owner: Api, role: str) -> tuple[Api, str]:
    """A new person invited as `role` who accepted from the email; returns (their client, their user id)."""
    email = _email(role)
    invite = owner.post("/members", {"email": email, "role": role})
    assert invite.status_code == 201, invite.text
    accepted = Api(stack.api_url).post(
        "/auth/accept-invite", {"token": mailed_token(email), "password": PASSWORD, "name": role.title()}
    )
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    return Api(stack.api_url, body["token"]), body["user"]["id"]


@pytest.fixture()
def signup_switched_off(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from chalicelib.config import settings

    monkeypatch.setenv("SIGNUP_ENABLED", "false")
    settings.cache_clear()
    try:
        yield
    finally:
        monkeypatch.delenv("SIGNUP_ENABLED")
        settings.cache_clear()


def _users(stack: Stack, email: str) -> int:
    with _db(stack) as conn:
        row = conn.execute("SELECT count(*) FROM users WHERE lower(email) = lower(%s)", (email,)).fetchone()
    return int(row[0]) if row else 0


def test_signup_creates_nothing_until_the_emailed_link_is_confirmed_with_its_password(stack: Stack) -> None:
    email = _email("signup")
    anonymous = Api(stack.api_url)
    body = {"email": email, "password": PASSWORD, "name": "Sam Reyes", "accountName": "Reyes Motorsport"}
    answer = anonymous.post("/auth/signup", body)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"status": "confirmation_sent", "email": email}
    assert _users(stack, email) == 0
    unconfirmed = anonymous.post("/auth/login", {"email": email, "password": PASSWORD})
    assert unconfirmed.status_code == 403 and "confirm your email" in unconfirmed.json()["error"]["message"]
    assert anonymous.post("/auth/login", {"email": email, "password": "not-the-password"}).status_code == 401

    token = mailed_token(email, CONFIRM_ROUTE)
    wrong = anonymous.post("/auth/confirm", {"token": token, "password": "someone-elses-password"})
    assert wrong.status_code == 400 and wrong.json()["error"]["field"] == "password"
    assert anonymous.post("/auth/confirm", {"token": token + "x", "password": PASSWORD}).json()["error"]["field"] == (
        "token"
    )
    confirmed = anonymous.post("/auth/confirm", {"token": token, "password": PASSWORD})
    assert confirmed.status_code == 201, confirmed.text
    body = confirmed.json()
    assert set(body) == {"token", "expiresIn", "user", "accounts"}  # as POST /auth/login answers
    assert body["user"]["email"] == email and body["user"]["role"] == "owner"
    assert body["user"]["accountName"] == "Reyes Motorsport"
    me = Api(stack.api_url, body["token"]).get("/auth/me").json()
    assert me["role"] == "owner" and me["account"]["id"] == body["user"]["accountId"]
    assert me["account"]["slug"].startswith("reyes-motorsport-")
    members = Api(stack.api_url, body["token"]).get("/members").json()["items"]
    assert [(m["email"], m["role"], m["status"]) for m in members] == [(email, "owner", "active")]
    again = anonymous.post("/auth/confirm", {"token": token, "password": PASSWORD})
    assert again.status_code == 400 and again.json()["error"]["field"] == "token"
    assert anonymous.post("/auth/login", {"email": email, "password": PASSWORD}).status_code == 200


def test_signing_up_again_replaces_the_link_and_the_password(stack: Stack) -> None:
    email = _email("twice")
    anonymous = Api(stack.api_url)
    first = {"email": email, "password": PASSWORD, "name": "A", "accountName": "First"}
    assert anonymous.post("/auth/signup", first).status_code == 202
    old = mailed_token(email, CONFIRM_ROUTE)
    assert anonymous.post("/auth/signup", {**first, "password": NEW_PASSWORD}).status_code == 202
    new = mailed_token(email, CONFIRM_ROUTE)
    assert new != old
    assert anonymous.post("/auth/confirm", {"token": old, "password": PASSWORD}).json()["error"]["field"] == "token"
    assert anonymous.post("/auth/confirm", {"token": new, "password": PASSWORD}).status_code == 400
    assert anonymous.post("/auth/confirm", {"token": new, "password": NEW_PASSWORD}).status_code == 201


def test_an_expired_confirmation_link_is_refused(stack: Stack) -> None:
    email = _email("stale")
    anonymous = Api(stack.api_url)
    body = {"email": email, "password": PASSWORD, "name": "S", "accountName": "Stale"}
    assert anonymous.post("/auth/signup", body).status_code == 202
    with _db(stack) as conn:
        conn.execute("UPDATE pending_signups SET expires_at = now() - interval '1 s' WHERE email = %s", (email,))
    late = anonymous.post("/auth/confirm", {"token": mailed_token(email, CONFIRM_ROUTE), "password": PASSWORD})
    assert late.status_code == 400 and "expired" in late.json()["error"]["message"]
    assert _users(stack, email) == 0


def test_signup_with_a_registered_email_answers_the_same_and_mails_its_owner(stack: Stack) -> None:
    from infra.local import mail

    email, _ = new_account()
    body = {"email": email.upper(), "password": NEW_PASSWORD, "name": "X", "accountName": "Another Team"}
    answer = Api(stack.api_url).post("/auth/signup", body)
    assert answer.status_code == 202, answer.text
    assert set(answer.json()) == {"status", "email"} and answer.json()["status"] == "confirmation_sent"
    told = mail.messages(stack.aws_endpoint_url, email)
    assert [m["Subject"] for m in told] == ["Sign-up attempt for your Race Platform login"]
    assert "#/confirm" not in mail.text(told[0])
    with _db(stack) as conn:
        assert (
            conn.execute("SELECT count(*) FROM pending_signups WHERE lower(email) = lower(%s)", (email,)).fetchone()[0]
            == 0
        )  # type: ignore[index]
    assert Api(stack.api_url).post("/auth/login", {"email": email, "password": NEW_PASSWORD}).status_code == 401


def test_an_unconfirmed_user_cannot_sign_in_to_any_account(stack: Stack) -> None:
    email, account_id = new_account("owner")
    owner_jwt = token_for(email)
    with _db(stack) as conn:
        conn.execute("UPDATE users SET email_confirmed_at = NULL WHERE email = %s", (email,))
    anonymous = Api(stack.api_url)
    assert anonymous.post("/auth/login", {"email": email, "password": PASSWORD}).status_code == 401
    body = {"email": email, "password": PASSWORD, "accountId": account_id}
    assert anonymous.post("/auth/login", body).status_code == 401
    assert Api(stack.api_url, owner_jwt).get("/events").status_code == 401


def test_seeded_users_are_confirmed_and_sign_in(stack: Stack) -> None:
    with _db(stack) as conn:
        seeded = "SELECT count(*) FROM users WHERE email LIKE '%%@apexracing.io' AND email_confirmed_at IS NULL"
        assert conn.execute(seeded).fetchone() == (0,)
    assert Api(stack.api_url).post("/auth/login", {"email": "sam@apexracing.io", "password": PASSWORD}).ok


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"password": "short"}, "password"),
        ({"password": "x" * 1025}, "password"),
        ({"email": "not-an-email"}, "email"),
        ({"accountName": ""}, "accountName"),
        ({"name": None}, "name"),
        ({"plan": "gold"}, "plan"),
    ],
)
def test_bad_signups_name_the_field_and_create_nothing(stack: Stack, change: dict[str, Any], field: str) -> None:
    email = _email("bad")
    body = {"email": email, "password": PASSWORD, "name": "N", "accountName": "T", **change}
    answer = Api(stack.api_url).post("/auth/signup", {k: v for k, v in body.items() if v is not None})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"] == field
    with _db(stack) as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE lower(email) = lower(%s)", (email,)).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pending_signups WHERE email = %s", (email,)).fetchone() == (0,)


def test_signup_can_be_switched_off(stack: Stack, signup_switched_off: None) -> None:
    email = _email("off")
    answer = Api(stack.api_url).post(
        "/auth/signup", {"email": email, "password": PASSWORD, "name": "N", "accountName": "T"}
    )
    assert answer.status_code == 403
    assert "sign-up is switched off" in answer.json()["error"]["message"]


def test_signup_attempts_are_rate_limited_per_email(stack: Stack) -> None:
    email, _ = new_account()
    api = Api(stack.api_url)
    body = {"email": email, "password": PASSWORD, "name": "N", "accountName": "T"}
    assert [api.post("/auth/signup", body).status_code for _ in range(10)] == [202] * 10
    limited = api.post("/auth/signup", body)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 300


INVITE_FIELDS = {"id", "userId", "email", "name", "role", "status", "joinedAt", "inviteExpiresAt", "createdAt"}


def test_invite_accept_login_and_see_the_accounts_events(stack: Stack) -> None:
    from infra.local import mail

    owner, account_id = _owner(stack)
    event = owner.post("/events", {"name": "Petit Le Mans"}).json()
    email = _email("invitee")
    invite = owner.post("/members", {"email": email, "role": "engineer"})
    assert invite.status_code == 201, invite.text
    body = invite.json()
    assert set(body) == INVITE_FIELDS  # no token, no link: they went by email
    assert body["status"] == "invited" and body["userId"] is None and body["role"] == "engineer"
    sent = mail.messages(stack.aws_endpoint_url, email)
    assert len(sent) == 1 and sent[0]["Source"] == "no-reply@race-platform.dev"
    assert sent[0]["Subject"] == "Test User invited you to Test Team on Race Platform"
    link = mail.latest_link(email, "#/accept-invite", stack.aws_endpoint_url)
    assert link.startswith("http://127.0.0.1:6166/#/accept-invite?token=")  # WEB_URL, locally the web port
    token = mail.token_of(link)
    listed = {m["email"]: m for m in owner.get("/members").json()["items"]}
    assert listed[email]["status"] == "invited" and set(listed[email]) == INVITE_FIELDS
    with _db(stack) as conn:
        stored = conn.execute(
            "SELECT token_hash, expires_at - now() > interval '6 days 23 hours' "
            "FROM member_invites WHERE account_id = %s",
            (account_id,),
        ).fetchone()
    assert stored == (hashlib.sha256(token.encode()).hexdigest(), True)  # only the hash, 7 days

    anonymous = Api(stack.api_url)
    accepted = anonymous.post("/auth/accept-invite", {"token": token, "password": NEW_PASSWORD, "name": "Robin"})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["user"]["accountId"] == account_id and accepted.json()["user"]["role"] == "engineer"
    again = anonymous.post("/auth/accept-invite", {"token": token, "password": NEW_PASSWORD, "name": "Robin"})
    assert again.status_code == 400 and again.json()["error"]["field"] == "token"

    login = anonymous.post("/auth/login", {"email": email, "password": NEW_PASSWORD})
    assert login.status_code == 200, login.text
    member = Api(stack.api_url, login.json()["token"])
    assert event["id"] in [e["id"] for e in member.get("/events").json()["items"]]
    assert member.post("/events", {"name": "Engineers write"}).status_code == 201
    listed = {m["email"]: m for m in owner.get("/members").json()["items"]}
    assert listed[email]["status"] == "active" and listed[email]["name"] == "Robin"
    assert listed[email]["joinedAt"] is not None


@pytest.mark.parametrize(("change", "field"), [({"password": "short"}, "password"), ({"name": None}, "name")])
def test_a_new_person_needs_a_good_password_and_a_name(stack: Stack, change: dict[str, Any], field: str) -> None:
    owner, _ = _owner(stack)
    email = _email("new")
    assert owner.post("/members", {"email": email, "role": "viewer"}).status_code == 201
    body = {"token": mailed_token(email), "password": NEW_PASSWORD, "name": "N", **change}
    answer = Api(stack.api_url).post("/auth/accept-invite", {k: v for k, v in body.items() if v is not None})
    assert answer.status_code == 400 and answer.json()["error"]["field"] == field
    assert _users(stack, email) == 0


def test_an_expired_invite_is_refused_naming_the_token(stack: Stack) -> None:
    owner, account_id = _owner(stack)
    email = _email("late")
    assert owner.post("/members", {"email": email, "role": "viewer"}).status_code == 201
    token = mailed_token(email)
    with _db(stack) as conn:
        conn.execute(
            "UPDATE member_invites SET expires_at = now() - interval '1 minute' WHERE account_id = %s", (account_id,)
        )
    assert {m["email"]: m["status"] for m in owner.get("/members").json()["items"]}[email] == "expired"
    answer = Api(stack.api_url).post("/auth/accept-invite", {"token": token, "password": PASSWORD, "name": "L"})
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "token" and "expired" in answer.json()["error"]["message"]
    # Inviting again mails a fresh token; the old one is dead.
    assert owner.post("/members", {"email": email, "role": "viewer"}).status_code == 201
    fresh = mailed_token(email)
    assert fresh != token
    ok = Api(stack.api_url).post("/auth/accept-invite", {"token": fresh, "password": PASSWORD, "name": "L"})
    assert ok.status_code == 200, ok.text


def test_a_registered_and_an_unregistered_email_get_the_same_answer_and_no_membership(stack: Stack) -> None:
    owner, account_id = _owner(stack)
    registered, _ = new_account("engineer")
    answers = [owner.post("/members", {"email": e, "role": "viewer"}) for e in (registered, _email("unknown"))]
    assert [a.status_code for a in answers] == [201, 201]
    shapes = [
        {k: (v if k in ("userId", "name", "status", "role", "joinedAt") else type(v)) for k, v in a.json().items()}
        for a in answers
    ]
    assert shapes[0] == shapes[1] and shapes[0]["userId"] is None and shapes[0]["name"] is None
    with _db(stack) as conn:
        assert conn.execute("SELECT count(*) FROM memberships WHERE account_id = %s", (account_id,)).fetchone() == (1,)
    assert owner.post("/members", {"email": registered, "role": "viewer"}).status_code == 201  # re-sent, still pending


def test_an_existing_user_accepts_signed_in_as_themselves_and_keeps_their_password(stack: Stack) -> None:
    owner, account_id = _owner(stack)
    elsewhere, _ = new_account("engineer")
    assert owner.post("/members", {"email": elsewhere, "role": "viewer"}).status_code == 201
    token = mailed_token(elsewhere)
    anonymous = Api(stack.api_url)
    taken = anonymous.post("/auth/accept-invite", {"token": token, "password": NEW_PASSWORD, "name": "Taken"})
    assert taken.status_code == 409 and "sign in" in taken.json()["error"]["message"]
    someone_else = Api(stack.api_url, token_for(new_account("owner")[0]))
    assert someone_else.post("/auth/accept-invite", {"token": token}).status_code == 403
    key = owner.post("/api-keys", {"name": "k", "role": "admin"}).json()["key"]
    assert Api(stack.api_url, api_key=key).post("/auth/accept-invite", {"token": token}).status_code == 403
    themselves = Api(stack.api_url, token_for(elsewhere))
    with_password = themselves.post("/auth/accept-invite", {"token": token, "password": NEW_PASSWORD})
    assert with_password.status_code == 400 and with_password.json()["error"]["field"] == "password"
    accepted = themselves.post("/auth/accept-invite", {"token": token})
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["user"]["accountId"] == account_id and body["user"]["role"] == "viewer"
    assert {a["id"] for a in body["accounts"]} >= {account_id}
    member = Api(stack.api_url, body["token"])
    assert member.get("/members").status_code == 200
    assert member.post("/events", {"name": "viewer"}).status_code == 403
    assert anonymous.post("/auth/login", {"email": elsewhere, "password": PASSWORD}).status_code == 200
    assert owner.post("/members", {"email": elsewhere, "role": "viewer"}).status_code == 409  # a member now


def test_accepting_and_confirming_are_rate_limited_like_sign_in(stack: Stack) -> None:
    anonymous = Api(stack.api_url)
    for path, body in (
        ("/auth/accept-invite", {"token": "guess", "password": PASSWORD, "name": "G"}),
        ("/auth/confirm", {"token": "guess", "password": PASSWORD}),
    ):
        assert [anonymous.post(path, body).status_code for _ in range(10)] == [400] * 10
        limited = anonymous.post(path, body)
        assert limited.status_code == 429, limited.text
        assert 1 <= int(limited.headers["Retry-After"]) <= 300


def test_role_rules(stack: Stack) -> None:
    owner, account_id = _owner(stack)
    admin, admin_id = _join(stack, owner, "admin")
    engineer, engineer_id = _join(stack, owner, "engineer")
    owner_id = next(m["userId"] for m in owner.get("/members").json()["items"] if m["role"] == "owner")

    assert engineer.post("/members", {"email": _email(), "role": "viewer"}).status_code == 403
    assert engineer.call("PATCH", f"/members/{admin_id}", {"role": "viewer"}).status_code == 403
    assert engineer.get("/members").status_code == 200
    assert admin.post("/members", {"email": _email(), "role": "owner"}).status_code == 403
    assert admin.call("PATCH", f"/members/{owner_id}", {"role": "admin"}).status_code == 403
    assert admin.call("PATCH", f"/members/{engineer_id}", {"role": "owner"}).status_code == 403
    assert admin.delete(f"/members/{owner_id}").status_code == 403
    promoted = admin.call("PATCH", f"/members/{engineer_id}", {"role": "admin"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"

    last = owner.call("PATCH", f"/members/{owner_id}", {"role": "admin"})
    assert last.status_code == 409 and "last owner" in last.json()["error"]["message"]
    assert owner.delete(f"/members/{owner_id}").status_code == 409
    assert owner.call("PATCH", f"/members/{admin_id}", {"role": "owner"}).status_code == 200
    # With a second owner, the first may step down.
    assert owner.call("PATCH", f"/members/{owner_id}", {"role": "engineer"}).status_code == 200
    roles = {m["userId"]: m["role"] for m in admin.get("/members").json()["items"]}
    assert roles == {owner_id: "engineer", admin_id: "owner", engineer_id: "admin"}
    with _db(stack) as conn:
        types = [
            t
            for (t,) in conn.execute(
                "SELECT type FROM domain_events WHERE account_id = %s AND entity = 'member' ORDER BY id", (account_id,)
            )
        ]
    assert types.count("member.create") == 2 and types.count("member.update") >= 4


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "nope", "role": "viewer"}, "email"),
        ({"email": "a@b.co", "role": "boss"}, "role"),
        ({"email": "a@b.co"}, "role"),
        ({"email": "a@b.co", "role": "viewer", "x": 1}, "x"),
    ],
)
def test_bad_member_bodies_name_the_field(stack: Stack, body: dict[str, Any], field: str) -> None:
    owner, _ = _owner(stack)
    answer = owner.post("/members", body)
    assert answer.status_code == 400 and answer.json()["error"]["field"] == field


def test_another_accounts_member_is_a_404(stack: Stack, alex: Api) -> None:
    owner, _ = _owner(stack)
    _, engineer_id = _join(stack, owner, "engineer")
    assert alex.call("PATCH", f"/members/{engineer_id}", {"role": "viewer"}).status_code == 404
    assert alex.delete(f"/members/{engineer_id}").status_code == 404
    assert owner.delete("/members/not-a-uuid").json()["error"]["field"] == "userId"


def test_changes_take_effect_on_the_next_request(stack: Stack) -> None:
    owner, account_id = _owner(stack)
    engineer, engineer_id = _join(stack, owner, "engineer")
    assert engineer.post("/events", {"name": "before"}).status_code == 201
    assert owner.call("PATCH", f"/members/{engineer_id}", {"role": "viewer"}).status_code == 200
    assert engineer.post("/events", {"name": "after"}).status_code == 403  # same JWT, new role
    assert owner.delete(f"/members/{engineer_id}").status_code == 200
    gone = engineer.get("/events")
    assert gone.status_code == 401 and gone.json()["error"]["code"] == "unauthorized"
    with _db(stack) as conn:
        row = conn.execute(
            "SELECT data->>'email', session_id FROM domain_events WHERE account_id = %s AND type = 'member.delete'",
            (account_id,),
        ).fetchone()
    assert row is not None and row[1] is None


def test_a_pending_invite_can_be_revoked(stack: Stack) -> None:
    owner, _ = _owner(stack)
    email = _email()
    invite = owner.post("/members", {"email": email, "role": "viewer"}).json()
    assert owner.delete(f"/members/{invite['id']}").status_code == 200
    answer = Api(stack.api_url).post(
        "/auth/accept-invite", {"token": mailed_token(email), "password": PASSWORD, "name": "N"}
    )
    assert answer.status_code == 400


def test_changing_ones_password(stack: Stack) -> None:
    email, _ = new_account("viewer")
    old_jwt = token_for(email)
    me = Api(stack.api_url, old_jwt)
    wrong = me.post("/auth/password", {"currentPassword": "not-it-at-all", "newPassword": NEW_PASSWORD})
    assert wrong.status_code == 400 and wrong.json()["error"]["field"] == "currentPassword"
    short = me.post("/auth/password", {"currentPassword": PASSWORD, "newPassword": "short"})
    assert short.status_code == 400 and short.json()["error"]["field"] == "newPassword"
    assert me.post("/auth/password", {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}).status_code == 204

    anonymous = Api(stack.api_url)
    assert anonymous.post("/auth/login", {"email": email, "password": PASSWORD}).status_code == 401
    assert anonymous.post("/auth/login", {"email": email, "password": NEW_PASSWORD}).status_code == 200
    # Documented: JWTs issued before the change stay valid until they expire.
    assert me.get("/auth/me").status_code == 200


def test_an_api_key_has_no_password_to_change(stack: Stack) -> None:
    owner, _ = _owner(stack)
    key = owner.post("/api-keys", {"name": "k", "role": "admin"}).json()["key"]
    answer = Api(stack.api_url, api_key=key).post(
        "/auth/password", {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}
    )
    assert answer.status_code == 403


def test_signup_is_on_by_default_except_in_prod() -> None:
    from chalicelib.config import ConfigError, load

    base = {
        "JWT_SECRET": "s" * 40,
        "DATABASE_URL": "postgresql://x/y",
        "WEB_URL": "https://race.example",
        "WEBHOOK_KEY": "k" * 43 + "=",
    }
    assert load({**base, "STAGE": "local"}, fetch_secret=str).signup_enabled
    assert load({**base, "STAGE": "dev"}, fetch_secret=str).signup_enabled
    assert not load({**base, "STAGE": "prod"}, fetch_secret=str).signup_enabled
    assert load({**base, "STAGE": "prod", "SIGNUP_ENABLED": "true"}, fetch_secret=str).signup_enabled
    with pytest.raises(ConfigError, match="SIGNUP_ENABLED"):
        load({**base, "SIGNUP_ENABLED": "maybe"}, fetch_secret=str)
