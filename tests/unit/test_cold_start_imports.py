"""A cold start imports the app and nothing heavy: drivers, AWS clients, token and password
libraries and the plugin sandbox are imported by the first request that needs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFERRED = (
    "psycopg",
    "psycopg_pool",
    "boto3",
    "botocore",
    "jwt",
    "argon2",
    "aws_lambda_powertools",
    "standardwebhooks",
    "cryptography",
    "py_mini_racer",
    "chalicelib.plugins.sandbox",
    "chalicelib.plugins.capabilities",
)


def test_importing_the_app_defers_every_heavy_module() -> None:
    code = f"import json, sys\nimport app\nprint(json.dumps([m for m in {DEFERRED!r} if m in sys.modules]))\n"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
