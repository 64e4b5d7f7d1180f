"""The database records its stage; seeding follows the record, never the environment alone."""

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
from infra.local import backup

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _stage(url: str) -> str | None:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT stage FROM database_stage").fetchone()
    return row[0] if row else None


def _accounts(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM accounts").fetchone()[0])  # type: ignore[index]


def _command(url: str, *args: str, stage: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"DATABASE_URL": url, "PATH": "/usr/bin:/bin", **({"STAGE": stage} if stage else {})}
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, env=env)


def test_make_seed_with_stage_unset_refuses_a_database_recorded_prod(postgres: Any) -> None:
    url = postgres.create_database("race_stage_prod")
    done = _command(url, "chalicelib.db.migrate", stage="prod")  # what make deploy runs
    assert done.returncode == 0, done.stderr
    assert _stage(url) == "prod"
    seeded = _command(url, "infra.local", "seed")  # make seed, STAGE unset
    assert seeded.returncode == 1
    assert "recorded as stage 'prod'" in seeded.stderr
    assert _accounts(url) == 0
    with pytest.raises(SeedRefused, match="recorded as stage 'prod'"):
        seed(url, "local", "pw")  # the environment saying local does not decide
    assert _accounts(url) == 0


def test_an_empty_database_is_recorded_at_first_migration_and_keeps_its_stage(postgres: Any) -> None:
    url = postgres.create_database("race_stage_first")
    migrate(url, log=False)
    assert _stage(url) == "local"
    seed(url, "local", "pw")
    assert _accounts(url) == 2
    with pytest.raises(MigrationError, match="recorded as stage 'local'; STAGE=prod does not match"):
        migrate(url, log=False, stage="prod")
    assert _stage(url) == "local"
    with pytest.raises(MigrationError, match="STAGE must be one of"):
        migrate(url, log=False, stage="production")


def test_a_database_with_data_is_recorded_only_with_an_explicit_stage(postgres: Any, tmp_path: Path) -> None:
    url = postgres.create_database("race_stage_existing")
    before = tmp_path / "before"
    shutil.copytree(MIGRATIONS_DIR, before)
    (before / "0011_database_stage.sql").unlink()
    migrate(url, before, log=False)  # a database migrated before stages were recorded ...
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO accounts (name, slug) VALUES ('Prod Team', 'prod-team')")  # ... holding data
    done = _command(url, "chalicelib.db.migrate")
    assert done.returncode == 0 and "no recorded stage" in done.stderr
    assert _stage(url) is None
    refused = _command(url, "infra.local", "seed")
    assert refused.returncode == 1 and "no recorded stage" in refused.stderr
    assert _accounts(url) == 1
    assert _command(url, "chalicelib.db.migrate", stage="prod").returncode == 0
    assert _stage(url) == "prod"


@pytest.mark.parametrize(("target_stage", "dump_stage"), [("prod", "local"), ("dev", "prod")])
def test_a_restore_keeps_the_targets_recorded_stage(
    postgres: Any, tmp_path: Path, target_stage: str, dump_stage: str
) -> None:
    source = postgres.create_database(f"race_stage_src_{dump_stage}")
    migrate(source, log=False, stage=dump_stage)
    with psycopg.connect(source) as conn:
        conn.execute("INSERT INTO accounts (name, slug) VALUES ('Restored', 'restored')")
    dump = backup.backup(source, tmp_path)
    target = postgres.create_database(f"race_stage_dst_{target_stage}")
    migrate(target, log=False, stage=target_stage)
    assert backup.restore(target, dump, confirmed=True) == 0
    assert _accounts(target) == 1
    assert _stage(target) == target_stage


def test_a_restore_of_a_dump_without_the_stage_table_keeps_the_targets_stage(postgres: Any, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(MIGRATIONS_DIR, old)
    (old / "0011_database_stage.sql").unlink()
    source = postgres.create_database("race_stage_old_dump")
    migrate(source, old, log=False)
    dump = backup.backup(source, tmp_path)
    target = postgres.create_database("race_stage_old_target")
    migrate(target, log=False, stage="prod")
    assert backup.restore(target, dump, confirmed=True) == 0
    assert _stage(target) == "prod"
    assert migrate(target, log=False) == ["0011_database_stage.sql"]  # IF NOT EXISTS: the kept table stays
    assert _stage(target) == "prod"
