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

from tests.integration.conftest import Api, Stack, new_account, token_for

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
    key, _ = team.key_of(admin, role="viewer")
    assert team.owner.delete(f"/members/{admin_id}").status_code in (200, 204)
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


ATTACKS: dict[str, Callable[[Team], int]] = {
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
