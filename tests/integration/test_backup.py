"""Backup and restore: a full round trip leaves the database exactly as it was at backup time."""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chalicelib.db.migrate import migrate
from chalicelib.db.seed import seed
from infra.local import backup

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _fingerprint(url: str) -> dict[str, tuple[int, str]]:
    """Row count and a hash of every row, per table (row for row equality)."""
    answer = {}
    with psycopg.connect(url) as conn:
        tables = [
            r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
        ]
        for table in tables:
            rows = conn.execute(f'SELECT t::text FROM "{table}" t ORDER BY 1').fetchall()
            answer[table] = (len(rows), hashlib.sha256("\n".join(r[0] for r in rows).encode()).hexdigest())
    return answer


def test_round_trip(postgres: Any, tmp_path: Path) -> None:
    url = postgres.create_database("race_backup_round_trip")
    migrate(url, log=False)
    seed(url, "local", "pw")
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE events SET name = 'Sebring 12 Hours (wet)' WHERE name LIKE 'Sebring%%'")
    at_backup = _fingerprint(url)

    path = backup.backup(url, tmp_path)
    assert path.stat().st_size > 0

    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM laps WHERE lap_number > 3")
        conn.execute("INSERT INTO accounts (name, slug) VALUES ('After', 'after-backup')")
        conn.execute("CREATE TABLE scratch (id int)")
    assert _fingerprint(url) != at_backup

    assert backup.restore(url, path, confirmed=False) == 1
    assert "scratch" in _fingerprint(url)  # refused: nothing changed

    assert backup.restore(url, path, confirmed=True) == 0
    assert _fingerprint(url) == at_backup
    # The restored database keeps working: migrations see every file as applied.
    assert migrate(url, log=False) == []


def test_restore_command_refuses_without_confirmation(postgres: Any, tmp_path: Path) -> None:
    url = postgres.create_database("race_backup_refuse")
    migrate(url, log=False)
    path = backup.backup(url, tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "infra.local", "restore", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 1
    assert "refusing" in done.stderr and "REPLACE" in done.stdout and "laps" in done.stdout


def _dump_of(archive: Path, folder: Path) -> Path:
    """The pg_dump inside a backup archive, as a plain file (older backups were only that)."""
    with tarfile.open(archive) as tar:
        tar.extract("postgres.dump", folder, filter="data")
    return folder / "postgres.dump"


@pytest.mark.parametrize("damage", ["random", "truncated_archive", "truncated_dump", "wrong_sql"])
def test_a_bad_file_leaves_the_data_exactly_as_it_was(
    postgres: Any, tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres.create_database(f"race_backup_bad_{damage}")
    migrate(url, log=False)
    seed(url, "local", "pw")
    good = backup.backup(url, tmp_path)
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM laps WHERE lap_number > 3")  # the live data differs from the backup
    before = _fingerprint(url)
    bad = tmp_path / "bad.tar"
    if damage == "random":
        bad.write_bytes(random.Random(7).randbytes(50_000))
    elif damage == "truncated_archive":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif damage == "truncated_dump":  # its table of contents still reads: pg_restore breaks off in the data
        dump = _dump_of(good, tmp_path)
        bad.write_bytes(dump.read_bytes()[: dump.stat().st_size * 9 // 10])
    else:  # a readable archive whose SQL fails inside the transaction
        with psycopg.connect(url) as conn:
            conn.execute("CREATE SCHEMA public_prev")  # the rename to public_prev then fails
    path = good if damage == "wrong_sql" else bad
    assert backup.restore(url, path, confirmed=True) == 1
    out = capsys.readouterr()
    assert "the live data is untouched" in out.err
    if damage == "wrong_sql":
        with psycopg.connect(url) as conn:
            conn.execute("DROP SCHEMA public_prev")
    assert _fingerprint(url) == before
    if damage == "truncated_dump":
        assert "processing data for table" in out.out  # pg_restore's progress was streamed before it broke off
    if damage in ("random", "truncated_dump"):  # the swap itself is safe without the checks in front
        assert backup.swap_in(url, bad) is False
        assert _fingerprint(url) == before


def test_an_older_plain_dump_still_restores(postgres: Any, tmp_path: Path) -> None:
    url = postgres.create_database("race_backup_plain")
    migrate(url, log=False)
    seed(url, "local", "pw")
    at_backup = _fingerprint(url)
    dump = _dump_of(backup.backup(url, tmp_path), tmp_path)
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM laps")
    assert backup.restore(url, dump, confirmed=True) == 0
    assert _fingerprint(url) == at_backup


def test_restore_streams_progress_and_keeps_connections_working(
    postgres: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres.create_database("race_backup_progress")
    migrate(url, log=False)
    seed(url, "local", "pw")
    path = backup.backup(url, tmp_path)
    assert 'dumping contents of table "public.laps"' in capsys.readouterr().out
    assert backup.restore(url, path, confirmed=True) == 0
    out = capsys.readouterr().out
    assert 'processing data for table "public.laps"' in out
    with psycopg.connect(url) as conn:
        schemas = [r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'public%%'")]
        assert schemas == ["public"]  # the previous schema was dropped with the commit


def test_objects_travel_with_the_backup(postgres: Any, provisioned: str, tmp_path: Path) -> None:
    import boto3

    from infra.local.backup_objects import BACKED_UP, bucket_name

    s3 = boto3.client("s3", endpoint_url=provisioned, region_name="us-east-1")
    plugins, attachments = (bucket_name(b) for b in BACKED_UP)
    prefix = f"backup-test-{random.Random().getrandbits(32):08x}"
    bundle, telemetry = b"var plugin = {math: function (i) { return i; }};", random.Random(3).randbytes(70_000)
    s3.put_object(Bucket=plugins, Key=f"{prefix}/fuel/1.0.0/abc.js", Body=bundle, ContentType="application/javascript")
    s3.put_object(Bucket=attachments, Key=f"{prefix}/sheet/att/Car7 run.ld", Body=telemetry)
    url = postgres.create_database("race_backup_objects")
    migrate(url, log=False)
    path = backup.backup(url, tmp_path, s3=s3)
    s3.delete_object(Bucket=plugins, Key=f"{prefix}/fuel/1.0.0/abc.js")
    s3.put_object(Bucket=attachments, Key=f"{prefix}/sheet/att/Car7 run.ld", Body=b"overwritten")

    assert backup.restore(url, path, confirmed=True) == 1  # objects and nowhere to put them: refused
    assert backup.restore(url, path, confirmed=True, s3=s3) == 0
    got = s3.get_object(Bucket=plugins, Key=f"{prefix}/fuel/1.0.0/abc.js")
    assert got["Body"].read() == bundle and got["ContentType"] == "application/javascript"
    assert s3.get_object(Bucket=attachments, Key=f"{prefix}/sheet/att/Car7 run.ld")["Body"].read() == telemetry


@pytest.mark.parametrize(
    "entry",
    [
        {"member": "../../etc/hostname", "bucket": "race-plugins", "key": "k", "contentType": "text/plain"},
        {"member": "objects/0", "bucket": "race-backups", "key": "k", "contentType": "text/plain"},
        {"member": "objects/0", "bucket": "race-plugins", "key": None, "contentType": "text/plain"},
    ],
)
def test_a_crafted_manifest_is_refused_before_anything_changes(
    postgres: Any, tmp_path: Path, entry: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Backups are files people pass around: a manifest may not read outside the archive or write elsewhere."""
    import io
    import json

    url = postgres.create_database(f"race_backup_crafted_{abs(hash(json.dumps(entry))) % 10_000}")
    migrate(url, log=False)
    good = backup.backup(url, tmp_path)
    assert good.stat().st_mode & 0o077 == 0  # password hashes inside: the operator's eyes only
    crafted = tmp_path / "crafted.tar"
    with tarfile.open(good) as source, tarfile.open(crafted, "w") as target:
        for member in source.getmembers():
            if member.name != "manifest.json":
                target.addfile(member, source.extractfile(member))
        data = json.dumps({"format": 1, "objects": [entry]}).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        target.addfile(info, io.BytesIO(data))
        blob = tarfile.TarInfo("objects/0")
        blob.size = 1
        target.addfile(blob, io.BytesIO(b"x"))
    before = _fingerprint(url)
    assert backup.restore(url, crafted, confirmed=True, s3=object()) == 1
    assert "manifest entry refused" in capsys.readouterr().err
    assert _fingerprint(url) == before
