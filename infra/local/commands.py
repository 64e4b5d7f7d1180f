"""Operator commands on the local stack (up, down, migrate, seed, backup, ...); infra/local/cli.py parses them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from typing import Any

from infra.local import state


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _running_stack() -> dict[str, Any] | None:
    record = state.read_record(state.state_dir(), "stack")
    if record and _alive(int(record["pid"])):
        return record
    return None


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=1) as answer:  # noqa: S310
            return bool(answer.status == 200)
    except OSError:
        return False


def up() -> int:
    """Start the stack in the background and return once /health answers."""
    timeout_s = 180.0
    running = _running_stack()
    if running and _healthy(running["urls"]["api"]):
        print(f"already running (pid {running['pid']}): {running['urls']['api']}")
        return 0
    directory = state.state_dir()
    log_path = directory / "logs" / "stack.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.local", "dev"],
            cwd=state.ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives the shell that ran ./setup.sh
        )
    api_url = f"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}"
    deadline = time.monotonic() + timeout_s
    print(f"starting the stack (pid {process.pid}, log {log_path}) ...", flush=True)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            print(f"the stack exited with status {process.returncode}; last log lines:", file=sys.stderr)
            print(_tail(log_path), file=sys.stderr)
            return 1
        record = state.read_record(directory, "stack")
        if record and record.get("pid") == process.pid and _healthy(api_url):
            print("up:")
            for name, url in record["urls"].items():
                print(f"  {name:<5} {url}")
            return 0
        time.sleep(0.2)
    print(f"the stack did not become healthy within {timeout_s:.0f} s; see {log_path}", file=sys.stderr)
    os.killpg(process.pid, signal.SIGTERM)
    return 1


def down(*, wipe: bool = False) -> int:
    """Stop the background stack; with wipe also delete its data (database, secrets, logs)."""
    record = _running_stack()
    if record:
        pid = int(record["pid"])
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
        print(f"stopped (pid {pid})")
    else:
        print("no stack running")
    if wipe:
        from infra.local.postgres import EmbeddedPostgres

        directory = state.state_dir()
        EmbeddedPostgres(directory).wipe()
        shutil.rmtree(directory, ignore_errors=True)
        print(f"wiped {directory}")
    return 0


@contextmanager
def _database() -> Iterator[str]:
    """DATABASE_URL, else the running stack's database, else the embedded one for this command."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    record = _running_stack()
    if record:
        yield record["databaseUrl"]
        return
    from infra.local.stack import database_url

    with ExitStack() as stack:
        yield database_url(state.state_dir(), stack)


def migrate(*, status: bool = False) -> int:
    from chalicelib.db import migrate as migrations

    with _database() as url:
        os.environ["DATABASE_URL"] = url
        return migrations.main(["--status"] if status else [])


def seed() -> int:
    from chalicelib.db import seed as seeding

    if os.environ.get("STAGE") == "prod":
        print("seed: refusing to seed: STAGE=prod (the seed creates demo users with a known password)", file=sys.stderr)
        return 1
    with _database() as url:
        os.environ["DATABASE_URL"] = url
        return seeding.main()


def env() -> int:
    """Print the running stack's URLs as shell exports (for smoke tests and scripts)."""
    record = _running_stack()
    if not record:
        print("no stack running", file=sys.stderr)
        return 1
    print(f"export API_URL={record['urls']['api']}")
    print(f"export WS_URL={record['urls']['ws']}")
    return 0


def _tail(path: os.PathLike[str] | str, lines: int = 30) -> str:
    try:
        with open(path, errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return ""


def _s3() -> Any:
    """An S3 client for the stack's objects: AWS_ENDPOINT_URL, else the running stack's emulator, else None."""
    record = _running_stack()
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or (record["awsEndpointUrl"] if record else None)
    if not endpoint:
        return None
    import boto3

    for name, value in (("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local")):
        os.environ.setdefault(name, value)  # the emulator takes any key, as the stack itself does
    return boto3.client("s3", endpoint_url=endpoint, region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))


def backup_command() -> int:
    from infra.local import backup as backups
    from infra.local.backup_objects import bucket_name

    s3 = _s3()
    upload = None
    if s3 is not None:
        from chalicelib.resources import BACKUPS_BUCKET

        upload = backups.upload_to_bucket(s3.meta.endpoint_url, bucket_name(BACKUPS_BUCKET))
    with _database() as url:
        backups.backup(url, backups.default_folder(), s3=s3, upload=upload)
    return 0


def restore_command(file: str, *, confirmed: bool = False) -> int:
    from pathlib import Path

    from infra.local import backup as backups

    confirmed = confirmed or os.environ.get("CONFIRM") == "1"
    with _database() as url:
        return backups.restore(url, Path(file), confirmed=confirmed, pause=_pause_for(url), s3=_s3())


def _pause_for(database_url: str) -> Callable[[], AbstractContextManager[None]]:
    """Pauses the running stack around the swap when it serves this database (else nothing to pause)."""
    from infra.local.maintenance import paused_stack

    record = _running_stack()
    if not record or record["databaseUrl"] != database_url:
        return nullcontext

    @contextmanager
    def pause() -> Iterator[None]:
        pid = int(record["pid"])
        print(
            f"pausing the running stack (pid {pid}) for the swap: the API answers 503, WebSocket frames wait, "
            "the queue workers and the scheduler stop, its database pool is closed ...",
            flush=True,
        )
        with paused_stack(state.state_dir(), pid):
            yield
            print("resuming the stack with fresh database connections ...", flush=True)
        print("the stack serves again: nothing else to run.", flush=True)

    return pause


def rotate_jwt_secret() -> int:
    """Generate a new JWT signing secret for the local stack and restart it if it runs."""
    import secrets

    if os.environ.get("JWT_SECRET"):
        print(
            "JWT_SECRET is set in the environment, which wins over the stack's secret: change it there", file=sys.stderr
        )
        return 1
    directory = state.state_dir()
    path = directory / "jwt_secret"
    path.write_text(secrets.token_hex(64))
    path.chmod(0o600)
    print(f"new JWT signing secret written to {path}")
    if _running_stack():
        print("restarting the stack so it reads the new secret (a cold start) ...")
        down()
        if up() != 0:
            return 1
    print("every JWT issued before now is invalid: users sign in again. API keys keep working (hashed, not signed).")
    return 0


def logs(*, from_start: bool = False) -> int:
    from infra.local.logs import follow

    return follow(state.state_dir() / "logs" / "stack.log", from_start=from_start)
