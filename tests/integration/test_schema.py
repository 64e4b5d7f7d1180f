"""Migrations are append-only; the seed is idempotent and refuses production."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chalicelib.db.migrate import MIGRATIONS_DIR, MigrationError, migrate
from chalicelib.db.seed import SeedRefused, seed

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _counts(url: str) -> dict[str, int]:
    tables = ["accounts", "users", "memberships", "events", "sessions", "cars", "drivers", "run_sheets", "laps"]
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}  # type: ignore[index]


def test_migrate_twice_applies_nothing_the_second_time(postgres: Any) -> None:
    url = postgres.create_database("race_migrate_twice")
    assert migrate(url, log=False) == sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql"))
    assert migrate(url, log=False) == []


def test_changed_applied_migration_is_refused_naming_the_file(postgres: Any, tmp_path: Path) -> None:
    url = postgres.create_database("race_migrate_changed")
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, folder)
    migrate(url, folder, log=False)
    first = sorted(folder.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- an innocent-looking edit\n")
    (folder / "9999_later.sql").write_text("CREATE TABLE later (id int);")
    with pytest.raises(MigrationError, match=first.name):
        migrate(url, folder, log=False)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('later')").fetchone() == (None,)


def test_migrate_command_exits_non_zero_on_a_changed_file(postgres: Any, tmp_path: Path) -> None:
    url = postgres.create_database("race_migrate_cli")
    migrate(url, log=False)
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE schema_migrations SET sha256 = 'tampered' WHERE filename LIKE '0001%%'")
    done = subprocess.run(
        [sys.executable, "-m", "chalicelib.db.migrate"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 1
    assert "0001_accounts_and_access.sql changed after it was applied" in done.stderr


def test_seed_twice_changes_nothing(postgres: Any) -> None:
    url = postgres.create_database("race_seed_twice")
    migrate(url, log=False)
    seed(url, "local", "pw-one")
    before = _counts(url)
    with psycopg.connect(url) as conn:
        hash_before = conn.execute("SELECT password_hash FROM users ORDER BY email LIMIT 1").fetchone()
    seed(url, "local", "pw-one")
    assert _counts(url) == before
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT password_hash FROM users ORDER BY email LIMIT 1").fetchone() == hash_before
    assert before["laps"] > 100 and before["accounts"] == 2


def test_seed_refuses_prod(postgres: Any) -> None:
    url = postgres.create_database("race_seed_prod")
    migrate(url, log=False)
    with pytest.raises(SeedRefused, match="STAGE=prod"):
        seed(url, "prod", "pw")
    assert _counts(url)["accounts"] == 0
    done = subprocess.run(
        [sys.executable, "-m", "infra.local", "seed"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"DATABASE_URL": url, "STAGE": "prod", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 1 and "STAGE=prod" in done.stderr
    assert _counts(url)["accounts"] == 0


def test_missing_relation_answers_503_telling_to_migrate(stack: Any, postgres: Any) -> None:
    """An unmigrated database gives the runbook's signature and what to do, never a bare 500."""
    from tests.integration.conftest import Api, cold_start_with, token_for

    token = token_for("jamie@apexracing.io")
    empty = postgres.create_database("race_unmigrated")
    migrate_only_first = empty
    with psycopg.connect(migrate_only_first) as conn:
        conn.execute((MIGRATIONS_DIR / "0001_accounts_and_access.sql").read_text().encode())
        conn.execute("INSERT INTO accounts (id, name, slug) SELECT %s, 'x', 'x'", (jwt_account(token),))
        conn.execute("INSERT INTO users (id, email, name) VALUES (%s, 'j@x.io', 'J')", (jwt_user(token),))
        conn.execute("INSERT INTO memberships VALUES (%s, %s, 'owner')", (jwt_account(token), jwt_user(token)))
    with cold_start_with(DATABASE_URL=empty):
        answer = Api(stack.api_url, token).get("/events")
    assert answer.status_code == 503
    message = answer.json()["error"]["message"]
    # Sign-in reads a column of a later migration (0014) first: a missing column is named the same way.
    assert "column u.email_confirmed_at does not exist" in message and "make migrate" in message


def jwt_account(token: str) -> str:
    import jwt

    return str(jwt.decode(token, options={"verify_signature": False})["acc"])


def jwt_user(token: str) -> str:
    import jwt

    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def _migrate_command(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chalicelib.db.migrate", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
    )


def _tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()
    return [row[0] for row in rows]


def test_migrate_status_on_a_new_database_lists_every_file_pending_and_creates_nothing(postgres: Any) -> None:
    url = postgres.create_database("race_migrate_status_new")
    done = _migrate_command(url, "--status")
    files = sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql"))
    assert done.returncode == 0, done.stderr
    assert [line.split()[1] for line in done.stdout.splitlines() if line.startswith("pending")] == files
    assert f"0 applied, {len(files)} pending" in done.stdout
    assert _tables(url) == []  # not even the ledger


def test_migrate_status_after_migrating_lists_applied_and_changes_nothing(postgres: Any) -> None:
    url = postgres.create_database("race_migrate_status_done")
    migrate(url, log=False)
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE filename = (SELECT max(filename) FROM schema_migrations)")
        ledger_before = conn.execute("SELECT filename, sha256, applied_at FROM schema_migrations").fetchall()
    done = _migrate_command(url, "--status")
    assert done.returncode == 0, done.stderr
    last = sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql"))[-1]
    assert f"pending  {last}" in done.stdout
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT filename, sha256, applied_at FROM schema_migrations").fetchall() == ledger_before


def test_migrate_status_names_a_changed_file_and_exits_non_zero(postgres: Any) -> None:
    url = postgres.create_database("race_migrate_status_changed")
    migrate(url, log=False)
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE schema_migrations SET sha256 = 'tampered' WHERE filename LIKE '0001%%'")
    done = _migrate_command(url, "--status")
    assert done.returncode == 1
    assert "CHANGED  0001_accounts_and_access.sql" in done.stdout


def test_migrate_refuses_an_unknown_option_and_applies_nothing(postgres: Any) -> None:
    url = postgres.create_database("race_migrate_unknown")
    done = _migrate_command(url, "--stauts")
    assert done.returncode == 2
    assert "unrecognized arguments: --stauts" in done.stderr
    assert _tables(url) == []
