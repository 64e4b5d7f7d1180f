"""`make backup` and `make restore`: compressed pg_dump of the database, and an exact restore.

Backups use pg_dump's custom format (compressed, restorable table by table). A restore is
destructive: it drops the public schema and everything in it, then loads the backup, so the
database ends exactly as it was when the backup was taken.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from infra.local.postgres import find_pg_bin


def _tool(name: str) -> str:
    """pg_dump / pg_restore: the newest installed (a client may be newer than the server, not older)."""
    bin_dir = find_pg_bin()
    if bin_dir and (bin_dir / name).is_file():
        return str(bin_dir / name)
    found = shutil.which(name)
    if not found:
        raise SystemExit(
            f"{name} was not found: install the PostgreSQL client tools (apt-get install postgresql-client)"
        )
    return found


def _human(size_bytes: int) -> str:
    size = float(size_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size:.1f} GB"


def backup(database_url: str, folder: Path, *, upload: Any = None) -> Path:
    """Write backup-<UTC time>.dump into `folder` (showing pg_dump's progress); optionally upload it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"backup-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}.dump"
    print(f"backing up to {path} ...", flush=True)
    done = subprocess.run(
        [
            _tool("pg_dump"),
            "--format=custom",
            "--compress=6",
            "--no-owner",
            "--no-privileges",
            "--verbose",
            f"--file={path}",
            f"--dbname={database_url}",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in done.stderr.splitlines():
        if "dumping contents of table" in line:
            print("  " + line.split("pg_dump: ", 1)[-1], flush=True)
    if done.returncode != 0:
        path.unlink(missing_ok=True)
        raise SystemExit(f"pg_dump failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ''}")
    print(f"backup written: {path} ({_human(path.stat().st_size)})", flush=True)
    if upload is not None:
        upload(path)
    return path


def describe(database_url: str) -> list[tuple[str, int]]:
    """The tables a restore would drop, with their row counts."""
    with psycopg.connect(database_url) as conn:
        tables = [
            r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
        ]
        return [(t, conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in tables]  # type: ignore[index]


def restore(database_url: str, path: Path, *, confirmed: bool) -> int:
    """Replace the database's contents with the backup at `path`; refuses unless confirmed."""
    if not path.is_file():
        print(f"restore: {path} does not exist", file=sys.stderr)
        return 2
    tables = describe(database_url)
    print(f"restore will DROP everything in the public schema of {_redact(database_url)}:")
    for table, rows in tables:
        print(f"  {table}: {rows} rows")
    print(f"and load {path} ({_human(path.stat().st_size)}) in its place.")
    if not confirmed:
        print(
            "refusing: this is destructive. Run again with CONFIRM=1 (make restore FILE=... CONFIRM=1) or --yes.",
            file=sys.stderr,
        )
        return 1
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    done = subprocess.run(
        [
            _tool("pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={database_url}",
            str(path),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        print(f"pg_restore failed: {done.stderr.strip()}", file=sys.stderr)
        return 1
    print(f"restored {path}")
    return 0


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def upload_to_bucket(endpoint_url: str | None, bucket: str) -> Any:
    """An uploader that copies a backup to the backups bucket (the stack's S3)."""

    def upload(path: Path) -> None:
        import boto3

        try:
            boto3.client("s3", endpoint_url=endpoint_url).upload_file(str(path), bucket, f"postgres/{path.name}")
        except Exception as exc:  # the local file is the backup; the copy is a convenience
            print(f"note: could not copy the backup to s3://{bucket}: {exc}", file=sys.stderr)
            return
        print(f"copied to s3://{bucket}/postgres/{path.name}")

    return upload


def default_folder() -> Path:
    return Path(os.environ.get("BACKUP_DIR") or Path(__file__).resolve().parents[2] / "backups")
