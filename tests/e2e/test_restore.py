"""`make restore` against a running stack: a random, a truncated and a valid file, as an operator runs them."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from infra.local import state
from infra.local.ports import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RunningStack:
    env: dict[str, str]
    state_dir: Path
    api_url: str
    database_url: str

    def run(self, *args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "infra.local", *args],
            cwd=ROOT,
            env={**self.env, **(extra or {})},
            capture_output=True,
            text=True,
            timeout=300,
        )

    def token(self) -> str:
        answer = requests.post(
            f"{self.api_url}/auth/login", json={"email": "jamie@apexracing.io", "password": "sebring12h"}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["token"])


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    tmp = tmp_path_factory.mktemp("restore")
    ports = {name: free_port() for name in ("API_PORT", "WS_PORT", "WEB_PORT", "DOCS_PORT", "EMULATOR_PORT")}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "AWS_ENDPOINT_URL", "JWT_SECRET", "WS_MANAGEMENT_URL", "STAGE", "CONFIRM")
    }
    env.update({k: str(v) for k, v in ports.items()})
    env.update({"RACE_STATE_DIR": str(tmp / "state"), "BACKUP_DIR": str(tmp / "backups")})
    stack = RunningStack(env, tmp / "state", f"http://127.0.0.1:{ports['API_PORT']}", "")
    up = stack.run("up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        record = state.read_record(stack.state_dir, "stack")
        assert record
        stack.database_url = record["databaseUrl"]
        yield stack
    finally:
        down = stack.run("down", "--wipe")
        assert down.returncode == 0, down.stdout + down.stderr


def _fingerprint(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return {t: sorted(r[0] for r in conn.execute(f'SELECT t::text FROM "{t}" t').fetchall()) for t in tables}


def _laps_answer(stack: RunningStack, headers: dict[str, str]) -> int:
    """GET /laps often enough that the pooled connection has prepared its statements."""
    statuses = {
        requests.get(f"{stack.api_url}/laps?limit=500", headers=headers, timeout=30).status_code for _ in range(7)
    }
    assert len(statuses) == 1, statuses
    return statuses.pop()


def test_restore_with_the_stack_running(running: RunningStack, tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {running.token()}"}
    assert _laps_answer(running, headers) == 200
    made = running.run("backup")
    assert made.returncode == 0, made.stdout + made.stderr
    assert 'dumping contents of table "public.laps"' in made.stdout  # progress is shown, not buffered away
    good = Path(made.stdout.split("backup written: ", 1)[1].split(" (", 1)[0])
    at_backup = _fingerprint(running.database_url)
    with psycopg.connect(running.database_url) as conn:
        laps_before = conn.execute("SELECT count(*) FROM laps").fetchone()[0]  # type: ignore[index]
        conn.execute("DELETE FROM laps WHERE lap_number > 5")  # the live data moves on after the backup
    live = _fingerprint(running.database_url)
    assert live != at_backup

    random_file = tmp_path / "random.dump"
    random_file.write_bytes(random.Random(19).randbytes(200_000))
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with tarfile.open(good) as archive:  # a dump that breaks off in its data: fails inside the swap
        dump = archive.extractfile("postgres.dump").read()  # type: ignore[union-attr]
    truncated_dump = tmp_path / "truncated.dump"
    truncated_dump.write_bytes(dump[: len(dump) * 9 // 10])
    for bad in (random_file, truncated, truncated_dump):
        done = running.run("restore", str(bad), "--yes")
        assert done.returncode == 1, done.stdout + done.stderr
        assert "the live data is untouched" in done.stderr
        assert _fingerprint(running.database_url) == live, bad.name
        assert _laps_answer(running, headers) == 200
    assert "pausing the running stack" in done.stdout and "the stack serves again" in done.stdout

    done = running.run("restore", str(good), "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'processing data for table "public.laps"' in done.stdout
    assert "pausing the running stack" in done.stdout and "the stack serves again" in done.stdout
    assert _fingerprint(running.database_url) == at_backup
    # The running API's pool was reset: its next requests use the restored tables, no errors.
    assert _laps_answer(running, headers) == 200
    laps = requests.get(f"{running.api_url}/laps?limit=500", headers=headers, timeout=30).json()["items"]
    with psycopg.connect(running.database_url) as conn:
        mine = conn.execute(
            "SELECT count(*) FROM laps l JOIN accounts a ON a.id = l.account_id WHERE a.slug = 'apex-racing'"
        ).fetchone()[0]  # type: ignore[index]
    assert laps_before > mine > 0 and len(laps) == min(mine, 500)
    # The WebSocket gateway (a process of its own) was paused and resumed too, with fresh pools.
    assert _joins_a_room(running, headers) == "joined"


def _joins_a_room(stack: RunningStack, headers: dict[str, str]) -> str:
    """The answer to a `join` of a seeded session over the running stack's WebSocket gateway."""
    import json

    from websockets.sync.client import connect

    sessions = requests.get(f"{stack.api_url}/sessions", headers=headers, timeout=30).json()["items"]
    token = headers["Authorization"].removeprefix("Bearer ")
    with connect(f"ws://127.0.0.1:{stack.env['WS_PORT']}/?token={token}") as ws:
        ws.send(json.dumps({"action": "join", "sessionId": sessions[0]["id"]}))
        while (message := json.loads(ws.recv(timeout=30)))["type"] not in ("joined", "error"):
            pass
    return str(message["type"])


def test_a_backup_restored_into_a_wiped_stack_brings_back_plugin_bundles_and_attachments(
    running: RunningStack,
) -> None:
    headers = {"Authorization": f"Bearer {running.token()}"}
    api = running.api_url
    body = {
        "manifest": {"id": "restore-check", "version": "1.0.0", "name": "Restore check", "interfaces": ["math"]},
        "bundle": "var plugin = { math: function (input) { return input.a * 10 + input.b; } };",
    }
    assert requests.post(f"{api}/plugins", json=body, headers=headers, timeout=30).status_code == 201
    sheet = requests.get(f"{api}/run-sheets?limit=1", headers=headers, timeout=30).json()["items"][0]
    telemetry = random.Random(5).randbytes(30_000)
    created = requests.post(
        f"{api}/run-sheets/{sheet['id']}/attachments",
        json={"fileName": "car7.ld", "contentType": "application/octet-stream", "sizeBytes": len(telemetry)},
        headers=headers,
        timeout=30,
    ).json()
    put = requests.put(created["uploadUrl"], data=telemetry, headers=created["uploadHeaders"], timeout=30)
    assert put.status_code == 200
    assert requests.post(f"{api}/attachments/{created['id']}/complete", headers=headers, timeout=30).ok

    made = running.run("backup")
    assert made.returncode == 0, made.stdout + made.stderr
    assert "objects: race-plugins: 1" in made.stdout and "objects: race-attachments: 1" in made.stdout
    path = made.stdout.split("backup written: ", 1)[1].split(" (", 1)[0]

    assert running.run("down", "--wipe").returncode == 0
    up = running.run("up")
    assert up.returncode == 0, up.stdout + up.stderr
    running.database_url = state.read_record(running.state_dir, "stack")["databaseUrl"]  # type: ignore[index]
    headers = {"Authorization": f"Bearer {running.token()}"}
    gone = requests.post(f"{api}/plugins/restore-check/invoke/math", json={"input": {}}, headers=headers, timeout=30)
    assert gone.status_code == 404  # a fresh stack: no such plugin

    done = running.run("restore", path, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "objects restored: 2/2" in done.stdout
    headers = {"Authorization": f"Bearer {running.token()}"}
    invoked = requests.post(
        f"{api}/plugins/restore-check/invoke/math", json={"input": {"a": 4, "b": 2}}, headers=headers, timeout=60
    )
    assert invoked.status_code == 200, invoked.text
    assert invoked.json()["output"] == 42
    items = requests.get(f"{api}/run-sheets/{sheet['id']}/attachments", headers=headers, timeout=30).json()["items"]
    (item,) = [i for i in items if i["id"] == created["id"]]
    assert requests.get(item["downloadUrl"], timeout=30).content == telemetry
