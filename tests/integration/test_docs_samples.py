"""docs/samples.md runs as written: its curl, Python and JavaScript blocks against the test stack.

Blocks are taken from the page in order (per language: sign-in, lap batch, room subscription) and run
with the environment the page names. The JavaScript room sample needs a global WebSocket (Node.js 22+):
it runs only where node has one.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import PASSWORD, Api, Stack, new_account, token_for

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", SAMPLES.read_text(), re.DOTALL)


@pytest.fixture
def sheet(stack: Stack) -> dict[str, str]:
    """A fresh account with a session and a run sheet; the environment the samples read."""
    email, _ = new_account("owner")
    api = Api(stack.api_url, token_for(email))

    def made(path: str, body: dict[str, Any]) -> str:
        answer = api.post(path, body)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    event = made("/events", {"name": "Samples 4 Hours"})
    session = made("/sessions", {"eventId": event, "name": "Race", "type": "race"})
    car = made("/cars", {"eventId": event, "number": "4"})
    run_sheet = made("/run-sheets", {"sessionId": session, "carId": car})
    return {
        "API_URL": stack.api_url,
        "WS_URL": stack.ws_url,
        "EMAIL": email,
        "PASSWORD": PASSWORD,
        "SESSION_ID": session,
        "RUN_SHEET_ID": run_sheet,
        "TOKEN_FOR_TEST": api.token or "",
    }


def _run(command: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    done = subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False, cwd=cwd
    )
    assert done.returncode == 0 and done.stderr == "", done.stdout + done.stderr
    return done.stdout


def _laps(stack: Stack, sheet: dict[str, str]) -> list[int]:
    api = Api(stack.api_url, sheet["TOKEN_FOR_TEST"])
    answer = api.get(f"/laps?runSheetId={sheet['RUN_SHEET_ID']}")
    return sorted(lap["lapNumber"] for lap in answer.json()["items"])


def test_the_curl_samples_sign_in_and_send_a_keyed_batch(stack: Stack, sheet: dict[str, str]) -> None:
    sign_in, batch, _ = _blocks("sh")
    out = _run(["bash", "-euo", "pipefail", "-c", sign_in + "echo\n" + batch + "echo\n"], sheet)  # curl: no newline
    me, created = (json.loads(line) for line in out.strip().splitlines())
    assert me["account"]["name"] == "Test Team"
    assert created["created"] == 2
    assert _laps(stack, sheet) == [1, 2]


def test_the_python_samples_sign_in_send_laps_and_follow_a_room(stack: Stack, sheet: dict[str, str]) -> None:
    sign_in, batch, room = _blocks("python")
    out = _run([sys.executable, "-c", sign_in + batch], sheet)
    assert out.startswith("Test Team\n")
    assert _laps(stack, sheet) == [1]
    follower = subprocess.Popen(
        [sys.executable, "-u", "-c", sign_in + room],
        env={**os.environ, **sheet},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in follower.stdout or []], daemon=True).start()
    try:
        assert lines.get(timeout=30).strip() == "Test Team"
        assert lines.get(timeout=30).startswith("joined at seq ")
        api = Api(stack.api_url, sheet["TOKEN_FOR_TEST"])
        pushed = api.post("/laps", {"runSheetId": sheet["RUN_SHEET_ID"], "lapNumber": 2, "lapTimeMs": 118000})
        assert pushed.status_code == 201, pushed.text
        heard = [lines.get(timeout=30) for _ in range(1)]
        assert heard[0].startswith("lap.create " + pushed.json()["id"]), heard
    finally:
        follower.terminate()
        follower.wait(timeout=10)


def test_the_javascript_samples_sign_in_and_send_a_keyed_batch(
    stack: Stack, sheet: dict[str, str], tmp_path: Path
) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed to run the JavaScript samples of docs/samples.md")
    sign_in, batch, _ = _blocks("js")
    script = tmp_path / "sample.mjs"
    script.write_text(
        sign_in + batch + "\nconsole.log(JSON.stringify(await sendLaps(process.env.RUN_SHEET_ID, "
        "[{ lapNumber: 1, lapTimeMs: 121000 }])));\n"
    )
    out = _run([node, str(script)], sheet)
    name, created = out.strip().splitlines()
    assert name == "Test Team" and json.loads(created)["created"] == 1
    assert _laps(stack, sheet) == [1]
