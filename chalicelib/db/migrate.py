"""Append-only migration runner: applies `migrations/NNNN_name.sql` in order, one transaction each.

Each applied file's SHA-256 is recorded in `schema_migrations`; if an applied file has changed
since, the runner refuses to run and names the file (migrations are append-only).
It also records the database's stage (`database_stage`): an empty database gets STAGE (default
local); one that already holds data only an explicit STAGE; a recorded stage never changes here.
Usage: STAGE=... python -m chalicelib.db.migrate [--status]   (--status lists, applies none)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# One lock id for every migrator, so two deploys never migrate at once.
_LOCK_ID = 7_011_946_211

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    filename    text PRIMARY KEY,
    sha256      text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    filename: str
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        if not _FILE.match(path.name):
            raise MigrationError(f"{path.name}: migration files are named NNNN_lower_snake.sql")
        found.append(Migration(path.name, path.read_text()))
    numbers = [m.filename[:4] for m in found]
    if len(set(numbers)) != len(numbers):
        raise MigrationError("two migration files share a number")
    return found


STAGES = ("local", "dev", "prod")


def migrate(
    database_url: str, directory: Path = MIGRATIONS_DIR, log: bool = True, *, stage: str | None = None
) -> list[str]:
    """Apply pending migrations and record the stage; return the names applied.

    Refuses if an applied file changed, or if `stage` (explicit) contradicts the recorded one.
    """
    if stage is not None and stage not in STAGES:
        raise MigrationError(f"STAGE must be one of {', '.join(STAGES)}, not {stage!r}")
    migrations = discover(directory)
    applied_now: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            conn.execute(_CREATE_LEDGER)
            ledger: dict[str, str] = dict(conn.execute("SELECT filename, sha256 FROM schema_migrations").fetchall())
            on_disk = {m.filename for m in migrations}
            for filename in sorted(set(ledger) - on_disk):
                raise MigrationError(f"{filename} was applied but its file is gone; migrations are append-only")
            for migration in migrations:
                recorded = ledger.get(migration.filename)
                if recorded is not None and recorded != migration.sha256:
                    raise MigrationError(
                        f"{migration.filename} changed after it was applied (checksum mismatch); "
                        "migrations are append-only: restore the file and add a new migration instead"
                    )
            for migration in migrations:
                if migration.filename in ledger:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (filename, sha256) VALUES (%s, %s)",
                        (migration.filename, migration.sha256),
                    )
                applied_now.append(migration.filename)
                if log:
                    print(f"applied {migration.filename}")  # noqa: T201
            _record_stage(conn, stage, log)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return applied_now


def recorded_stage(conn: psycopg.Connection[Any]) -> str | None:
    """The stage recorded in this database (None: none recorded, or not migrated that far)."""
    if conn.execute("SELECT to_regclass('public.database_stage')").fetchone() == (None,):
        return None
    row = conn.execute("SELECT stage FROM public.database_stage").fetchone()
    return str(row[0]) if row else None


def _record_stage(conn: psycopg.Connection[Any], stage: str | None, log: bool) -> None:
    if conn.execute("SELECT to_regclass('public.database_stage')").fetchone() == (None,):
        return  # a migrations folder without that table (tests of the runner itself)
    recorded = recorded_stage(conn)
    if recorded is not None:
        if stage is not None and stage != recorded:
            raise MigrationError(
                f"this database is recorded as stage {recorded!r}; STAGE={stage} does not match "
                "(a database keeps its stage: point DATABASE_URL at the right one)"
            )
        return
    holds_data = conn.execute(
        "SELECT to_regclass('public.accounts') IS NOT NULL AND EXISTS (SELECT FROM public.accounts)"
    ).fetchone()
    if holds_data and holds_data[0] and stage is None:
        print(  # noqa: T201
            "migrate: this database holds data but has no recorded stage; record it with an explicit "
            "STAGE (STAGE=prod make migrate, or local/dev). Seeding refuses until then.",
            file=sys.stderr,
        )
        return
    conn.execute("INSERT INTO public.database_stage (stage) VALUES (%s)", (stage or "local",))
    if log:
        print(f"recorded this database's stage: {stage or 'local'}")  # noqa: T201


@dataclass(frozen=True)
class Status:
    applied: list[tuple[str, str]]  # (filename, applied at, ISO-8601)
    pending: list[str]
    changed: list[str]  # applied files whose content differs from the recorded checksum
    missing: list[str]  # applied files no longer on disk


def status(database_url: str, directory: Path = MIGRATIONS_DIR) -> Status:
    """What migrate() would do, read-only: no ledger is created, no lock taken, nothing applied."""
    migrations = discover(directory)
    with psycopg.connect(database_url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        rows = []
        if exists and exists[0]:
            rows = conn.execute(
                "SELECT filename, sha256, applied_at FROM schema_migrations ORDER BY filename"
            ).fetchall()
    ledger = {filename: sha for filename, sha, _ in rows}
    on_disk = {m.filename: m for m in migrations}
    return Status(
        applied=[(filename, applied_at.isoformat()) for filename, _, applied_at in rows],
        pending=[m.filename for m in migrations if m.filename not in ledger],
        changed=[f for f, sha in ledger.items() if f in on_disk and on_disk[f].sha256 != sha],
        missing=[f for f in ledger if f not in on_disk],
    )


def _print_status(found: Status) -> int:
    for filename, applied_at in found.applied:
        mark = "CHANGED" if filename in found.changed else "GONE" if filename in found.missing else "applied"
        print(f"{mark:<8} {filename}  ({applied_at})")  # noqa: T201
    for filename in found.pending:
        print(f"pending  {filename}")  # noqa: T201
    print(f"{len(found.applied)} applied, {len(found.pending)} pending")  # noqa: T201
    if found.changed or found.missing:
        print("migrate would refuse to run: applied files changed or are gone (append-only)", file=sys.stderr)  # noqa: T201
        return 1
    return 0


def main(argv: list[str]) -> int:
    options = argparse.ArgumentParser(prog="python -m chalicelib.db.migrate", description="Apply pending migrations.")
    options.add_argument("--status", action="store_true", help="list applied and pending migrations; apply nothing")
    args = options.parse_args(argv)
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        print("DATABASE_URL is required (make migrate sets it for the local stack)", file=sys.stderr)  # noqa: T201
        return 2
    try:
        if args.status:
            return _print_status(status(url))
        applied = migrate(url, stage=os.environ.get("STAGE", "").strip() or None)
    except MigrationError as exc:
        print(f"migrate: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    except psycopg.OperationalError as exc:
        print(f"migrate: cannot reach PostgreSQL: {exc}".strip(), file=sys.stderr)  # noqa: T201
        return 1
    print(f"migrations up to date ({len(applied)} applied now)")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
