"""The operator's path: ./setup.sh, tools/smoke-test.sh, ./teardown.sh --wipe, on private ports."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from infra.local.ports import free_port, is_listening

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_setup_smoke_teardown(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("API_PORT", "WS_PORT", "WEB_PORT", "DOCS_PORT", "EMULATOR_PORT")}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "AWS_ENDPOINT_URL", "JWT_SECRET", "WEBHOOK_KEY", "WS_MANAGEMENT_URL", "STAGE")
    }
    env.update({k: str(v) for k, v in ports.items()})
    env["RACE_STATE_DIR"] = str(tmp_path / "state")

    def run(*command: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, cwd=ROOT, env={**env, **(extra or {})}, capture_output=True, text=True, timeout=300
        )

    try:
        up = run("./setup.sh")
        assert up.returncode == 0, up.stdout + up.stderr
        assert is_listening("127.0.0.1", ports["API_PORT"])
        again = run("./setup.sh")
        assert again.returncode == 0 and "already running" in again.stdout

        smoke = run(
            "./tools/smoke-test.sh",
            extra={"API_URL": f"http://127.0.0.1:{ports['API_PORT']}", "WS_URL": f"ws://127.0.0.1:{ports['WS_PORT']}"},
        )
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
        assert smoke.stdout.count("PASS ") == 6
        _a_lap_reaches_a_room_member(ports["API_PORT"], ports["WS_PORT"])
        _no_secrets_in_the_log(ports["API_PORT"], tmp_path / "state" / "logs" / "stack.log")
    finally:
        down = run("./teardown.sh", "--wipe")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not is_listening("127.0.0.1", ports["API_PORT"])
    assert not is_listening("127.0.0.1", ports["EMULATOR_PORT"])
    assert not (tmp_path / "state").exists()


def _a_lap_reaches_a_room_member(api_port: int, ws_port: int) -> None:
    """A lap written over HTTP reaches a joined member: through the room queue and the publisher
    process the stack runs beside itself."""
    import json

    import requests
    from websockets.sync.client import connect

    api = f"http://127.0.0.1:{api_port}"
    token = requests.post(
        f"{api}/auth/login", json={"email": "jamie@apexracing.io", "password": "sebring12h"}, timeout=30
    ).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    sheet = requests.get(f"{api}/run-sheets?limit=1", headers=auth, timeout=30).json()["items"][0]
    with connect(f"ws://127.0.0.1:{ws_port}/?token={token}", open_timeout=30) as ws:
        ws.send(json.dumps({"action": "join", "sessionId": sheet["sessionId"]}))
        while json.loads(ws.recv(timeout=30))["type"] != "joined":
            pass
        lap = requests.post(
            f"{api}/laps",
            json={"runSheetId": sheet["id"], "lapNumber": 901, "lapTimeMs": 101_234},
            headers=auth,
            timeout=30,
        )
        assert lap.status_code == 201, lap.text
        while (frame := json.loads(ws.recv(timeout=30)))["type"] != "lap.create":
            pass
        assert frame["data"]["id"] == lap.json()["id"]


def _no_secrets_in_the_log(api_port: int, log: Path) -> None:
    """Exercise credentials (login, a bad login, an API key), then grep the whole log for them."""
    import re

    import requests

    api = f"http://127.0.0.1:{api_port}"
    token = requests.post(
        f"{api}/auth/login", json={"email": "jamie@apexracing.io", "password": "sebring12h"}, timeout=30
    ).json()["token"]
    requests.post(
        f"{api}/auth/login", json={"email": "jamie@apexracing.io", "password": "wrong-Password-1"}, timeout=30
    )
    key = requests.post(
        f"{api}/api-keys", json={"name": "e2e"}, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).json()["key"]
    assert requests.get(f"{api}/laps?limit=5", headers={"X-API-Key": key}, timeout=30).status_code == 200
    text = log.read_text()
    assert "GET /laps" in text  # the log is really being written
    for secret in ("sebring12h", "wrong-Password-1", token, key, token.split(".")[2]):
        assert secret not in text
    assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ", text), "a JWT leaked into the log"
    assert "whsec_" not in text and "race_" + key[5:] not in text


def test_smoke_fails_loudly_when_nothing_runs() -> None:
    port = free_port()
    done = subprocess.run(
        ["./tools/smoke-test.sh"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "API_URL": f"http://127.0.0.1:{port}", "WS_URL": f"ws://127.0.0.1:{port}"},
    )
    assert done.returncode == 1
    assert "FAIL 1/6" in done.stdout and "nothing listens" in done.stdout
