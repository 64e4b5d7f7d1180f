"""Runs the attack rows of docs/permissions.md: each is tried as an attacker inside a tenant would,
on a fresh account, and must get the documented status (with the checks its function adds)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.integration.conftest import CONFIRM_ROUTE, PASSWORD, Api, Stack, mailed_token, new_account, token_for

pytestmark = pytest.mark.integration
DOC = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"


def attack_rows() -> list[tuple[str, int]]:
    block = DOC.read_text().split("<!-- attacks:start -->")[1].split("<!-- attacks:end -->")[0]
    rows = []
    for line in block.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows.append((cells[0].strip("`"), int(cells[3])))
    return rows


@dataclass
class Team:
    stack: Stack
    account_id: str
    owner: Api

    def db(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.stack.database_url, autocommit=True)

    def member(self, role: str) -> tuple[Api, str]:
        """A new member of `role`; returns (their client, their user id)."""
        email = f"{role}-{uuid.uuid4().hex[:8]}@attack.test"
        with self.db() as conn:
            user_id = conn.execute(
                "INSERT INTO users (email, name) VALUES (%s, %s) RETURNING id", (email, role.title())
            ).fetchone()[0]  # type: ignore[index]
            conn.execute("INSERT INTO memberships VALUES (%s, %s, %s)", (self.account_id, user_id, role))
        return Api(self.stack.api_url, token_for(email)), str(user_id)

    def set_role(self, user_id: str, role: str) -> None:
        answer = self.owner.call("PATCH", f"/members/{user_id}", {"role": role})
        assert answer.status_code == 200, answer.text

    def key_of(self, api: Api, role: str = "admin", **kwargs: Any) -> tuple[Api, dict[str, Any]]:
        made = api.post("/api-keys", {"name": f"{role} key", "role": role}, **kwargs)
        assert made.status_code == 201, made.text
        return Api(self.stack.api_url, api_key=made.json()["key"]), made.json()


def _team(stack: Stack) -> Team:
    email, account_id = new_account("owner")
    return Team(stack, account_id, Api(stack.api_url, token_for(email)))


def _keyed() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def _nothing_of_the_answer(answer: Any, secret: str) -> None:
    assert answer.json()["error"]["code"] == "idempotency_key_reused", answer.text
    assert secret not in answer.text and "Idempotent-Replayed" not in answer.headers


# ---- replays -------------------------------------------------------------------------------------


def _replay(team: Team, maker: Api, thief: Api | Callable[[], Api]) -> int:
    """`maker` mints an admin key with an Idempotency-Key; `thief` sends the same key and body."""
    key = _keyed()
    _, made = team.key_of(maker, headers=key)
    thief_api = thief() if callable(thief) else thief
    stolen = thief_api.post("/api-keys", {"name": "admin key", "role": "admin"}, headers=key)
    _nothing_of_the_answer(stolen, made["key"])
    return stolen.status_code


def viewer_replays_admin_key(team: Team) -> int:
    viewer, _ = team.member("viewer")
    status = _replay(team, team.member("admin")[0], viewer)
    assert viewer.get("/api-keys").status_code == 403
    return status


def admin_replays_other_admins_key(team: Team) -> int:
    return _replay(team, team.member("admin")[0], team.member("admin")[0])


def key_replays_its_creators_request(team: Team) -> int:
    admin, _ = team.member("admin")
    return _replay(team, admin, team.key_of(admin)[0])


def demoted_admin_replays_own_request(team: Team) -> int:
    admin, admin_id = team.member("admin")
    return _replay(team, admin, lambda: (team.set_role(admin_id, "engineer"), admin)[1])


def admin_replays_own_request(team: Team) -> int:
    admin, _ = team.member("admin")
    key = _keyed()
    _, made = team.key_of(admin, headers=key)
    again = admin.post("/api-keys", {"name": "admin key", "role": "admin"}, headers=key)
    assert again.headers.get("Idempotent-Replayed") == "true", again.text
    body = again.json()
    assert body["id"] == made["id"] and body["key"] is None and body["secretShownOnce"] == ["key"]
    assert made["key"] not in again.text
    return again.status_code


# ---- keys never outrank their creator -------------------------------------------------------------


def key_of_demoted_admin(team: Team) -> int:
    admin, admin_id = team.member("admin")
    key, _ = team.key_of(admin)
    team.set_role(admin_id, "engineer")
    assert key.get("/auth/me").json()["role"] == "engineer"
    assert key.post("/board-cards", {"title": "still an engineer"}).status_code == 201
    return key.get("/api-keys").status_code


def key_of_removed_admin(team: Team) -> int:
    admin, admin_id = team.member("admin")
    key, made = team.key_of(admin, role="viewer")
    removed = team.owner.delete(f"/members/{admin_id}")
    assert removed.status_code == 200 and [k["id"] for k in removed.json()["revokedApiKeys"]] == [made["id"]]
    assert made["id"] not in [k["id"] for k in team.owner.get("/api-keys").json()["items"]]
    with team.db() as conn:
        reasons = conn.execute(
            "SELECT data->>'reason' FROM domain_events WHERE account_id = %s AND type = 'api_key.delete' "
            "AND entity_id = %s",
            (team.account_id, made["id"]),
        ).fetchall()
    assert reasons == [("creator_removed",)]
    return key.get("/events").status_code


def key_minted_by_a_key(team: Team) -> int:
    admin, admin_id = team.member("admin")
    parent, _ = team.key_of(admin)
    child, made = team.key_of(parent)
    assert made["createdBy"] == admin_id  # the user behind the minting key
    assert child.get("/api-keys").status_code == 200
    team.set_role(admin_id, "viewer")
    assert child.get("/events").status_code == 200
    return child.get("/api-keys").status_code


def creatorless_key(team: Team) -> int:
    from chalicelib.domain import tokens

    secret, prefix, key_hash = tokens.new_api_key()
    with team.db() as conn:  # as keys minted by keys were stored before they recorded a creator
        conn.execute(
            "INSERT INTO api_keys (account_id, created_by, name, prefix, key_hash, role) "
            "VALUES (%s, NULL, 'legacy', %s, %s, 'admin')",
            (team.account_id, prefix, key_hash),
        )
    key = Api(team.stack.api_url, api_key=secret)
    assert key.get("/auth/me").json()["role"] == "viewer" and key.get("/events").status_code == 200
    assert key.post("/board-cards", {"title": "no"}).status_code == 403
    return key.get("/api-keys").status_code


# ---- invitations, webhooks and grants ---------------------------------------------------------------


def _invite(api: Api) -> dict[str, Any]:
    made = api.post("/members", {"email": f"invitee-{uuid.uuid4().hex[:8]}@attack.test", "role": "viewer"})
    assert made.status_code == 201, made.text
    return made.json()  # type: ignore[no-any-return]


def _accept(team: Team, invite: dict[str, Any]) -> int:
    listed = [m["id"] for m in team.owner.get("/members?limit=500").json()["items"]]
    assert invite["id"] not in listed  # withdrawn: gone from the team's list
    answer = Api(team.stack.api_url).post(
        "/auth/accept-invite", {"token": mailed_token(invite["email"]), "password": PASSWORD, "name": "Invitee"}
    )
    assert answer.json()["error"]["field"] == "token", answer.text
    return answer.status_code


def invite_of_demoted_admin(team: Team) -> int:
    admin, admin_id = team.member("admin")
    invite = _invite(admin)
    team.set_role(admin_id, "engineer")
    with team.db() as conn:
        reasons = conn.execute(
            "SELECT data->>'reason' FROM domain_events WHERE type = 'member.delete' AND entity_id = %s",
            (invite["id"],),
        ).fetchall()
    assert reasons == [("inviter_demoted",)]
    return _accept(team, invite)


def invite_of_removed_admin(team: Team) -> int:
    admin, admin_id = team.member("admin")
    invite = _invite(admin)
    removed = team.owner.delete(f"/members/{admin_id}").json()
    assert [i["id"] for i in removed["withdrawnInvites"]] == [invite["id"]]
    return _accept(team, invite)


def invite_by_key(team: Team) -> int:
    admin, admin_id = team.member("admin")
    invite = _invite(team.key_of(admin)[0])
    team.set_role(admin_id, "engineer")
    return _accept(team, invite)


def webhook_of_removed_admin(team: Team) -> int:
    from tests.integration.test_authorization_matrix import _QUIET_WEBHOOK, _plugin_body

    admin, admin_id = team.member("admin")
    hook = admin.post("/webhooks", _QUIET_WEBHOOK).json()
    plugin = admin.post("/plugins", _plugin_body()).json()
    grants = admin.call("PUT", f"/plugins/{plugin['id']}/grants", {"capabilities": []}).json()
    assert hook["createdBy"] == admin_id and grants["grantsSetBy"] == admin_id
    assert team.owner.delete(f"/members/{admin_id}").status_code == 200
    kept = team.owner.get(f"/plugins/{plugin['id']}").json()
    assert (kept["createdBy"], kept["grantsSetBy"]) == (admin_id, admin_id)
    read = team.owner.get(f"/webhooks/{hook['id']}")
    assert read.json()["createdBy"] == admin_id
    return read.status_code


# ---- the squatting chain (issue 16): tenant B reaches for an address of team A -------------------


def _newhire() -> str:
    return f"newhire-{uuid.uuid4().hex[:8]}@team-a.test"


def _users_named(team: Team, email: str) -> int:
    with team.db() as conn:
        row = conn.execute("SELECT count(*) FROM users WHERE lower(email) = lower(%s)", (email,)).fetchone()
    return int(row[0]) if row else 0


def squat_oracle(team: Team) -> int:
    """B's admin adds a registered and an unregistered address: one answer shape, no membership, no token."""
    registered, _ = new_account("owner")
    answers = [team.owner.post("/members", {"email": e, "role": "admin"}) for e in (registered, _newhire())]
    assert answers[0].status_code == answers[1].status_code
    first, second = (a.json() for a in answers)
    assert set(first) == set(second) and "inviteToken" not in first and "inviteUrl" not in first
    assert (
        (first["userId"], first["name"], first["status"])
        == (None, None, "invited")
        == (
            second["userId"],
            second["name"],
            second["status"],
        )
    )
    with team.db() as conn:
        members = conn.execute("SELECT count(*) FROM memberships WHERE account_id = %s", (team.account_id,)).fetchone()
    assert members == (1,)
    return answers[0].status_code


def squat_accept_own_invite(team: Team) -> int:
    """B invites newhire@team-a and tries to accept it with what it holds: the answer (no token in it)."""
    email = _newhire()
    invite = team.owner.post("/members", {"email": email, "role": "viewer"}).json()
    guesses = [invite["id"], *(str(v) for v in invite.values() if isinstance(v, str))]
    statuses = {
        Api(team.stack.api_url).post("/auth/accept-invite", {"token": g, "password": PASSWORD, "name": "B"}).status_code
        for g in guesses
    }
    assert _users_named(team, email) == 0
    (status,) = statuses
    return status


def squat_signup(team: Team) -> int:
    """B signs up as newhire@team-a: nothing exists, B cannot sign in (it never saw the emailed link)."""
    email = _newhire()
    anonymous = Api(team.stack.api_url)
    body = {"email": email, "password": PASSWORD, "name": "B", "accountName": "Squat"}
    assert anonymous.post("/auth/signup", body).status_code == 202
    assert _users_named(team, email) == 0
    guessed = anonymous.post("/auth/confirm", {"token": "guessed-" + uuid.uuid4().hex, "password": PASSWORD})
    assert guessed.status_code == 400
    return anonymous.post("/auth/login", {"email": email, "password": PASSWORD}).status_code


def squat_victim_confirms(team: Team) -> int:
    """newhire opens the confirmation link B's sign-up sent them: without B's password it confirms nothing."""
    email = _newhire()
    anonymous = Api(team.stack.api_url)
    squat = {"email": email, "password": PASSWORD, "name": "B", "accountName": "Squat"}
    assert anonymous.post("/auth/signup", squat).status_code == 202
    clicked = anonymous.post(
        "/auth/confirm", {"token": mailed_token(email, CONFIRM_ROUTE), "password": "newhire-own-pw"}
    )
    assert _users_named(team, email) == 0
    return clicked.status_code


def squat_later_invite(team: Team) -> int:
    """After B's pending sign-up, team A invites newhire: newhire joins with their own password from the
    email, and B's password signs in nowhere."""
    email = _newhire()
    anonymous = Api(team.stack.api_url)
    squat = {"email": email, "password": PASSWORD, "name": "B", "accountName": "Squat"}
    assert anonymous.post("/auth/signup", squat).status_code == 202
    assert team.owner.post("/members", {"email": email, "role": "engineer"}).status_code == 201
    own = "newhire-own-passphrase"
    joined = anonymous.post("/auth/accept-invite", {"token": mailed_token(email), "password": own, "name": "New"})
    assert joined.status_code == 200 and joined.json()["user"]["accountId"] == team.account_id
    assert [a["name"] for a in joined.json()["accounts"]] == ["Test Team"]  # no squatted account came along
    late = anonymous.post("/auth/confirm", {"token": mailed_token(email, CONFIRM_ROUTE), "password": PASSWORD})
    assert late.status_code == 409
    return anonymous.post("/auth/login", {"email": email, "password": PASSWORD}).status_code


def squat_forwarded_invite(team: Team) -> int:
    """A's invite to a registered address reaches B (forwarded): B, signed in as itself, tries it."""
    registered, _ = new_account("viewer")
    assert team.owner.post("/members", {"email": registered, "role": "admin"}).status_code == 201
    b_user, _ = new_account("owner")
    answer = Api(team.stack.api_url, token_for(b_user)).post("/auth/accept-invite", {"token": mailed_token(registered)})
    anonymous = Api(team.stack.api_url).post(
        "/auth/accept-invite", {"token": mailed_token(registered), "password": "b-chooses-this-one", "name": "B"}
    )
    assert anonymous.status_code == 409  # the token alone never joins (or re-passwords) a login
    with team.db() as conn:
        members = conn.execute("SELECT count(*) FROM memberships WHERE account_id = %s", (team.account_id,)).fetchone()
    assert members == (1,)
    return answer.status_code


ATTACKS: dict[str, Callable[[Team], int]] = {
    "squat-oracle": squat_oracle,
    "squat-accept-own-invite": squat_accept_own_invite,
    "squat-signup": squat_signup,
    "squat-victim-confirms": squat_victim_confirms,
    "squat-later-invite": squat_later_invite,
    "squat-forwarded-invite": squat_forwarded_invite,
    "invite-of-demoted-admin": invite_of_demoted_admin,
    "invite-of-removed-admin": invite_of_removed_admin,
    "invite-by-key": invite_by_key,
    "webhook-of-removed-admin": webhook_of_removed_admin,
    "key-demoted-creator": key_of_demoted_admin,
    "key-removed-creator": key_of_removed_admin,
    "key-minted-by-key": key_minted_by_a_key,
    "key-creatorless": creatorless_key,
    "replay-viewer": viewer_replays_admin_key,
    "replay-other-admin": admin_replays_other_admins_key,
    "replay-by-key": key_replays_its_creators_request,
    "replay-demoted": demoted_admin_replays_own_request,
    "replay-own": admin_replays_own_request,
}


def test_every_attack_has_a_row_and_every_row_an_attack() -> None:
    assert {name for name, _ in attack_rows()} == set(ATTACKS)


@pytest.mark.parametrize(("name", "expected"), attack_rows(), ids=lambda v: v if isinstance(v, str) else "")
def test_attack_row(stack: Stack, name: str, expected: int) -> None:
    assert ATTACKS[name](_team(stack)) == expected
