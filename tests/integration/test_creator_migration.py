"""Migration 0012 applies the creator rules to rows made before them, and an invite's acceptance
re-checks its sender even when the withdrawal was skipped."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chalicelib.db.migrate import MIGRATIONS_DIR, migrate
from tests.integration.conftest import PASSWORD, Api, Stack, mailed_token, new_account, token_for

pytestmark = pytest.mark.integration
MIGRATION = "0012_creators.sql"


def test_creatorless_keys_become_viewers_and_creatorless_invites_are_withdrawn(postgres: Any, tmp_path: Path) -> None:
    url = postgres.create_database("race_creators")
    before = tmp_path / "migrations"
    before.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if path.name < MIGRATION:
            shutil.copy(path, before)
    migrate(url, before, log=False)
    with psycopg.connect(url, autocommit=True) as conn:
        account = conn.execute("INSERT INTO accounts (name, slug) VALUES ('T', 't') RETURNING id").fetchone()[0]  # type: ignore[index]
        admin = conn.execute("INSERT INTO users (email, name) VALUES ('a@t.test', 'A') RETURNING id").fetchone()[0]  # type: ignore[index]
        conn.execute("INSERT INTO memberships VALUES (%s, %s, 'admin')", (account, admin))
        for name, creator in (("by a key", None), ("by the admin", admin)):
            conn.execute(
                "INSERT INTO api_keys (account_id, created_by, name, prefix, key_hash, role) "
                "VALUES (%s, %s, %s, 'race_x', %s, 'admin')",
                (account, creator, name, uuid.uuid4().hex),
            )
        for email, inviter in (("k@t.test", None), ("i@t.test", admin)):
            conn.execute(
                "INSERT INTO member_invites (account_id, email, role, token_hash, invited_by, expires_at) "
                "VALUES (%s, %s, 'viewer', %s, %s, now() + interval '1 day')",
                (account, email, uuid.uuid4().hex, inviter),
            )
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if path.name == MIGRATION:
            shutil.copy(path, before)  # only this one: later migrations change invites again (0014)
    assert migrate(url, before, log=False) == [MIGRATION]
    with psycopg.connect(url, autocommit=True) as conn:
        roles = dict(conn.execute("SELECT name, role FROM api_keys").fetchall())  # type: ignore[arg-type]
        assert roles == {"by a key": "viewer", "by the admin": "admin"}
        assert conn.execute("SELECT email FROM member_invites").fetchall() == [("i@t.test",)]
        conn.execute("DELETE FROM users WHERE id = %s", (admin,))  # a deleted user's keys go with them
        assert conn.execute("SELECT name FROM api_keys").fetchall() == [("by a key",)]


def test_an_invite_whose_sender_lost_the_right_is_refused_at_acceptance(stack: Stack) -> None:
    email, account_id = new_account("owner")
    owner = Api(stack.api_url, token_for(email))
    invited = f"late-{uuid.uuid4().hex[:8]}@t.test"
    assert owner.post("/members", {"email": invited, "role": "viewer"}).status_code == 201
    with psycopg.connect(stack.database_url, autocommit=True) as conn:  # demoted behind the API's back
        conn.execute("UPDATE memberships SET role = 'engineer' WHERE account_id = %s", (account_id,))
    answer = Api(stack.api_url).post(
        "/auth/accept-invite", {"token": mailed_token(invited), "password": PASSWORD, "name": "Late"}
    )
    assert answer.status_code == 400 and "withdrawn" in answer.json()["error"]["message"], answer.text
