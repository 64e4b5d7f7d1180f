"""Where the local stack keeps its state: the data folder, generated secrets, logs and its pid."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def state_dir() -> Path:
    """RACE_STATE_DIR, else `.race/` in the checkout (ignored by git)."""
    path = Path(os.environ.get("RACE_STATE_DIR") or ROOT / ".race").resolve()
    path.mkdir(parents=True, exist_ok=True)
    (path / "logs").mkdir(exist_ok=True)
    return path


def jwt_secret(directory: Path) -> str:
    """JWT_SECRET from the environment, else the one generated for this stack on its first start."""
    if os.environ.get("JWT_SECRET"):
        return os.environ["JWT_SECRET"]
    path = directory / "jwt_secret"
    if not path.exists():
        path.write_text(secrets.token_hex(64))
        path.chmod(0o600)
    return path.read_text().strip()


def webhook_key(directory: Path) -> str:
    """WEBHOOK_KEY from the environment, else this stack's data key (base64 of 32 bytes), made on its first start.

    It seals the webhook secrets in PostgreSQL: a backup is of use only with this file (docs/runbook.md)."""
    if os.environ.get("WEBHOOK_KEY"):
        return os.environ["WEBHOOK_KEY"]
    path = directory / "webhook_key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(base64.b64encode(secrets.token_bytes(32)).decode("ascii"))
    return path.read_text().strip()


def write_record(directory: Path, name: str, record: dict[str, Any]) -> None:
    path = directory / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    tmp.chmod(0o600)
    tmp.replace(path)


def read_record(directory: Path, name: str) -> dict[str, Any] | None:
    path = directory / f"{name}.json"
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, ValueError):
        return None
