"""Migration 0014: every user made before it counts as confirmed, and invites whose tokens went back
to the inviting admin are withdrawn."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chalicelib.db.migrate import MIGRATIONS_DIR, migrate

pytestmark = pytest.mark.integration
MIGRATION = "0014_email_proof.sql"


def test_existing_users_are_backfilled_as_confirmed_and_pending_invites_withdrawn(
    postgres: Any, tmp_path: Path
) -> None:
    url = postgres.create_database("race_email_proof")
    before = tmp_path / "before"
    before.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if path.name < MIGRATION:
            shutil.copy(path, before)
    migrate(url, before, log=False)
    with psycopg.connect(url, autocommit=True) as conn:
        account = conn.execute("INSERT INTO accounts (name, slug) VALUES ('T', 't') RETURNING id").fetchone()[0]  # type: ignore[index]
        user = conn.execute(
            "INSERT INTO users (email, name, created_at) VALUES ('u@t.test', 'U', '2026-01-02T03:04:05Z') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        conn.execute("INSERT INTO memberships VALUES (%s, %s, 'owner')", (account, user))
        conn.execute(
            "INSERT INTO member_invites (account_id, email, role, token_hash, invited_by, expires_at) "
            "VALUES (%s, 'i@t.test', 'viewer', %s, %s, now() + interval '1 day')",
            (account, uuid.uuid4().hex, user),
        )
    applied = migrate(url, log=False)
    assert applied[0] == MIGRATION
    with psycopg.connect(url, autocommit=True) as conn:
        confirmed = conn.execute("SELECT email_confirmed_at = created_at FROM users").fetchall()
        assert confirmed == [(True,)]
        assert conn.execute("SELECT count(*) FROM member_invites").fetchone() == (0,)
        # Rows inserted without the stamp (seed, test helpers) are confirmed by the default.
        conn.execute("INSERT INTO users (email, name) VALUES ('s@t.test', 'S')")
        stamped = "SELECT email_confirmed_at IS NOT NULL FROM users WHERE email = 's@t.test'"
        assert conn.execute(stamped).fetchone() == (True,)
