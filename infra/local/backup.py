"""`make backup` and `make restore`: compressed pg_dump of the database, and an exact restore.

A backup is a tar archive: pg_dump's custom format (compressed) as `postgres.dump`, the plugin
bundles and attachments of the stack's S3 (infra/local/backup_objects.py) and `manifest.json`. A restore replaces
the public schema in one transaction (the old one is renamed, the backup loaded into a new one, the
old one dropped just before COMMIT), so a file that is not a backup, or breaks off half way, leaves
the live data exactly as it was; a good one leaves the database as it was at backup time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO, Any

import psycopg

from chalicelib.db.migrate import recorded_stage
from infra.local import backup_objects as objects
from infra.local.postgres import find_pg_bin

DUMP_MEMBER = "postgres.dump"


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


def _shown(tool: str, line: str) -> bool:
    """Progress and every warning or error; pg_dump's other --verbose chatter is left out."""
    if "dumping contents of table" in line or "processing data for table" in line:
        return True
    if not line.startswith(f"{tool}: "):
        return True  # psql's NOTICE/WARNING/ERROR lines, anything unexpected
    return line[len(tool) + 2 :].startswith(("warning", "error", "detail", "hint"))


def _stream(tool: str, pipe: IO[bytes], lines: list[str]) -> threading.Thread:
    """Print `pipe`'s lines as they come (progress and warnings), keeping them all for an error message."""

    def pump() -> None:
        for raw in pipe:
            line = raw.decode(errors="replace").rstrip()
            lines.append(line)
            if _shown(tool, line):
                print(f"  {line}", flush=True)

    thread = threading.Thread(target=pump, name=f"{tool}-stderr", daemon=True)
    thread.start()
    return thread


def _last(lines: list[str]) -> str:
    return next((line for line in reversed(lines) if line.strip()), "")


def backup(database_url: str, folder: Path, *, s3: Any = None, upload: Any = None) -> Path:
    """Write backup-<UTC time>.tar into `folder`: the pg_dump and, given an S3 client, the objects
    rows point at (plugin bundles, attachments). Progress is printed as it goes."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"backup-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}.tar"
    partial = path.with_suffix(".partial")
    print(f"backing up to {path} ...", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        dump = Path(scratch) / DUMP_MEMBER
        dump_database(database_url, dump)  # first: every object a dumped row points at exists now
        try:
            partial.touch(mode=0o600)  # password hashes and encrypted secrets: readable by the operator only
            with tarfile.open(partial, "w") as archive:
                archive.add(dump, DUMP_MEMBER)
                entries = objects.add_objects(archive, s3) if s3 is not None else []
                objects.add_manifest(archive, {"format": 1, "objects": entries})
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    partial.replace(path)
    if s3 is None:
        print("note: no S3 endpoint (the stack is not running): this backup holds the database only", flush=True)
    print(f"backup written: {path} ({_human(path.stat().st_size)}, {len(entries)} objects)", flush=True)
    if upload is not None:
        upload(path)
    return path


class BadArchive(Exception):
    pass


def unpack(path: Path, scratch: Path) -> tuple[Path, list[dict[str, Any]]]:
    """The dump and the object entries of a backup (a plain .dump from older backups: no objects)."""
    if not tarfile.is_tarfile(path):
        return path, []
    try:
        with tarfile.open(path) as archive:
            archive.extractall(scratch, filter="data")  # refuses absolute paths, links out, devices
        manifest = json.loads((scratch / objects.MANIFEST).read_text())
        entries: list[dict[str, Any]] = list(manifest["objects"])
        objects.validate(entries)  # a crafted manifest must not point outside the archive or its buckets
        missing = [e["member"] for e in entries if not (scratch / e["member"]).is_file()]
    except (tarfile.TarError, EOFError, OSError, ValueError, KeyError, TypeError) as exc:
        raise BadArchive(f"cannot read the archive: {exc or type(exc).__name__}") from exc
    if missing or not (scratch / DUMP_MEMBER).is_file():
        raise BadArchive("the archive is incomplete")
    return scratch / DUMP_MEMBER, entries


def dump_database(database_url: str, path: Path) -> None:
    """pg_dump in custom format to `path`; its progress and warnings are printed as they come."""
    command = [
        _tool("pg_dump"),
        "--format=custom",
        "--compress=6",
        "--no-owner",
        "--no-privileges",
        "--verbose",
        f"--file={path}",
        f"--dbname={database_url}",
    ]
    lines: list[str] = []
    with subprocess.Popen(command, stderr=subprocess.PIPE) as dumping:
        assert dumping.stderr is not None
        _stream("pg_dump", dumping.stderr, lines).join()
    if dumping.returncode != 0:
        path.unlink(missing_ok=True)
        raise SystemExit(f"pg_dump failed: {_last(lines)}")


def describe(database_url: str) -> list[tuple[str, int]]:
    """The tables a restore would replace, with their row counts."""
    with psycopg.connect(database_url) as conn:
        tables = [
            r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
        ]
        return [(t, conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in tables]  # type: ignore[index]


def unreadable(path: Path) -> str | None:
    """Why pg_restore cannot read `path` as an archive (None: its table of contents reads)."""
    done = subprocess.run([_tool("pg_restore"), "--list", str(path)], capture_output=True, text=True)
    for line in done.stderr.splitlines():
        print(f"  {line}", flush=True)  # warnings of a readable archive are shown, not swallowed
    return None if done.returncode == 0 else (_last(done.stderr.splitlines()) or "unreadable")


# The swap, in one transaction with the restore itself: the live schema is only renamed until the
# very end, and any failure (or a dropped connection) rolls everything back to it.
_BEGIN = b"""BEGIN;
ALTER SCHEMA public RENAME TO public_prev;
CREATE SCHEMA public;
"""
_COMMIT = b"""
SET lock_timeout = '60s';
DROP SCHEMA public_prev CASCADE;
COMMIT;
"""


# The target keeps its own recorded stage, never the dump's (a prod dump must not make a dev
# database unseedable, and a dev dump must never make prod seedable).
KEEP_TARGET_STAGE = b"""
DO $keep$
BEGIN
    IF to_regclass('public_prev.database_stage') IS NOT NULL AND to_regclass('public.database_stage') IS NULL THEN
        CREATE TABLE public.database_stage (LIKE public_prev.database_stage INCLUDING ALL);
    END IF;
    IF to_regclass('public.database_stage') IS NOT NULL THEN
        DELETE FROM public.database_stage;
        IF to_regclass('public_prev.database_stage') IS NOT NULL THEN
            INSERT INTO public.database_stage SELECT * FROM public_prev.database_stage;
        END IF;
    END IF;
END
$keep$;
"""


def swap_in(database_url: str, dump: Path, *, before_commit: bytes = b"") -> bool:
    """Restore `dump` into a new public schema in one transaction; True once committed.

    pg_restore writes SQL that psql runs inside the transaction opened here; COMMIT is sent only
    after pg_restore has read the whole archive. On failure psql is killed (or has stopped on the
    error), so PostgreSQL rolls back: the live data is untouched.
    """
    psql_lines: list[str] = []
    restore_lines: list[str] = []
    applying = subprocess.Popen(
        [_tool("psql"), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", f"--dbname={database_url}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,  # result rows of the dump's set_config(); notices and errors are on stderr
        stderr=subprocess.PIPE,
    )
    reading = subprocess.Popen(
        [_tool("pg_restore"), "--no-owner", "--no-privileges", "--verbose", "--file=-", str(dump)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert applying.stdin and applying.stderr and reading.stdout and reading.stderr
    pumps = [_stream("psql", applying.stderr, psql_lines), _stream("pg_restore", reading.stderr, restore_lines)]
    committed = False
    try:
        applying.stdin.write(_BEGIN)
        shutil.copyfileobj(reading.stdout, applying.stdin, 1 << 16)
        if reading.wait() == 0:
            applying.stdin.write(before_commit + _COMMIT)
            applying.stdin.close()
            committed = applying.wait() == 0
    except BrokenPipeError:
        pass  # psql stopped on an error: its transaction is gone with it
    finally:
        for process in (reading, applying):
            if process.poll() is None and not committed:
                process.kill()
            process.wait()
        for pump in pumps:
            pump.join()
    if not committed:
        reason = _last(restore_lines) if reading.returncode else _last(psql_lines)
        print(f"restore failed: {reason}", file=sys.stderr, flush=True)
    return committed


def restore(
    database_url: str,
    path: Path,
    *,
    confirmed: bool,
    pause: Callable[[], AbstractContextManager[None]] = nullcontext,
    s3: Any = None,
) -> int:
    """Replace the database's contents (in one transaction) and put back the backup's objects;
    refuses unless confirmed. `pause` wraps both (the command pauses a running stack with it)."""
    if not path.is_file():
        print(f"restore: {path} does not exist", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        try:
            dump, entries = unpack(path, Path(scratch))
            problem = unreadable(dump)
        except BadArchive as exc:
            problem = str(exc)
        if problem:
            print(f"restore: {path} is not a backup ({problem}); {UNTOUCHED}", file=sys.stderr)
            return 1
        if entries and s3 is None:
            print(
                f"restore: {path} holds {len(entries)} objects (plugin bundles, attachments) and no S3 endpoint "
                f"runs to put them in: start the stack first (./setup.sh) or set AWS_ENDPOINT_URL; {UNTOUCHED}",
                file=sys.stderr,
            )
            return 1
        if not _confirmed(database_url, path, len(entries), confirmed):
            return 1
        with pause():
            if not swap_in(database_url, dump, before_commit=KEEP_TARGET_STAGE):
                print(f"restore: {UNTOUCHED} (the transaction was rolled back)", file=sys.stderr)
                return 1
            print(f"database restored from {path}", flush=True)
            try:
                objects.put_objects(Path(scratch), entries, s3)
            except Exception as exc:
                print(
                    f"restore: the database is restored but putting the objects back failed ({exc}); "
                    "run the same restore again (it overwrites, never deletes)",
                    file=sys.stderr,
                )
                return 1
    print(f"restored {path} ({len(entries)} objects)")
    return 0


UNTOUCHED = "nothing was changed: the live data is untouched"


def _confirmed(database_url: str, path: Path, object_count: int, confirmed: bool) -> bool:
    """Say what would be replaced; True only when the operator confirmed."""
    print(f"restore will REPLACE everything in the public schema of {_redact(database_url)}:")
    for table, rows in describe(database_url):
        print(f"  {table}: {rows} rows")
    print(f"with {path} ({_human(path.stat().st_size)}), in one transaction,")
    print(f"and put back its {object_count} objects (same keys are overwritten; other objects stay).")
    with psycopg.connect(database_url) as conn:
        stage = recorded_stage(conn)
    print(f"this database's recorded stage ({stage or 'none'}) is kept; the backup's is not taken over.")
    if not confirmed:
        print(
            "refusing: this is destructive. Run again with CONFIRM=1 (make restore FILE=... CONFIRM=1) or --yes.",
            file=sys.stderr,
        )
    return confirmed


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
            boto3.client("s3", endpoint_url=endpoint_url).upload_file(str(path), bucket, f"backups/{path.name}")
        except Exception as exc:  # the local file is the backup; the copy is a convenience
            print(f"note: could not copy the backup to s3://{bucket}: {exc}", file=sys.stderr)
            return
        print(f"copied to s3://{bucket}/backups/{path.name}")

    return upload


def default_folder() -> Path:
    return Path(os.environ.get("BACKUP_DIR") or Path(__file__).resolve().parents[2] / "backups")
