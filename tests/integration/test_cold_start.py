"""Configuration fails fast with the runbook's signature."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

_FIRST_REQUEST = """
import json
from app import app
event = {"resource": "/events", "path": "/events", "httpMethod": "GET", "headers": {},
         "multiValueHeaders": {}, "queryStringParameters": None, "multiValueQueryStringParameters": None,
         "pathParameters": None, "stageVariables": None, "body": None, "isBase64Encoded": False,
         "requestContext": {"resourcePath": "/events", "httpMethod": "GET", "path": "/events",
                            "requestId": "r1", "stage": "local", "identity": {"sourceIp": "127.0.0.1"}}}
print(json.dumps(app(event, None)))
"""


def _env_without_secret() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "JWT_SECRET"}
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_cold_start_without_jwt_secret_fails_with_the_signature() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_REQUEST],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=_env_without_secret(),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    response = json.loads(done.stdout.strip().splitlines()[-1])
    assert response["statusCode"] == 500
    assert json.loads(response["body"])["error"] == {"code": "misconfigured", "message": "JWT_SECRET is required"}
    assert "JWT_SECRET is required" in done.stdout + done.stderr  # the log line an operator greps for


def test_local_stack_refuses_to_start_without_jwt_secret(tmp_path: Path) -> None:
    code = "import os; from chalicelib.config import settings; settings()"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=_env_without_secret(), timeout=60
    )
    assert done.returncode != 0
    assert "JWT_SECRET is required" in done.stderr
