"""The local stack's command line: --help and typos touch nothing; a busy port is named with its variable."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from infra.local.cli import parser
from infra.local.ports import PortInUse, ensure_free

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], state: Path) -> subprocess.CompletedProcess[str]:
    # A private state dir and a PATH without the venv: the scripts must answer before installing anything.
    env = {"PATH": os.environ["PATH"], "RACE_STATE_DIR": str(state), "HOME": str(state)}
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("script", ["setup.sh", "teardown.sh"])
def test_scripts_help_prints_usage_and_starts_nothing(script: str, tmp_path: Path) -> None:
    done = _run(["bash", str(ROOT / script), "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "usage: python -m infra.local" in done.stdout
    assert "installing" not in done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("script", ["setup.sh", "teardown.sh"])
def test_scripts_refuse_an_unknown_option_by_name(script: str, tmp_path: Path) -> None:
    done = _run(["bash", str(ROOT / script), "--wpie"], tmp_path)
    assert done.returncode == 2
    assert "unrecognized arguments: --wpie" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_module_help_lists_every_command(tmp_path: Path) -> None:
    done = _run([sys.executable, "-m", "infra.local", "--help"], tmp_path)
    assert done.returncode == 0
    for command in ("dev", "up", "down", "migrate", "seed", "backup", "restore", "rotate-jwt-secret", "logs"):
        assert command in done.stdout


def test_options_are_parsed_per_command() -> None:
    assert parser().parse_args(["down", "--wipe"]).wipe is True
    assert parser().parse_args(["migrate", "--status"]).status is True
    restored = parser().parse_args(["restore", "backups/x.dump", "--yes"])
    assert (restored.file, restored.yes) == ("backups/x.dump", True)
    with pytest.raises(SystemExit) as refused:
        parser().parse_args(["seed", "--status"])
    assert refused.value.code == 2


def test_a_busy_port_is_named_with_its_variable() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse, match=rf"port {port} \(WS_PORT\) is in use"):
            ensure_free("127.0.0.1", {"WS_PORT": port})


def test_a_free_port_passes() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ensure_free("127.0.0.1", {"API_PORT": port})


def test_dev_reports_a_busy_api_port_without_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {**os.environ, "RACE_STATE_DIR": str(tmp_path), "API_PORT": str(taken.getsockname()[1])}
        done = subprocess.run(
            [sys.executable, "-m", "infra.local", "dev"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60
        )
    assert done.returncode == 2
    assert f"port {env['API_PORT']} (API_PORT) is in use" in done.stderr
    assert "Traceback" not in done.stderr
