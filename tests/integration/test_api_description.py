"""/openapi.json as integrators' tools meet it: Spectral and Redocly lint it, openapi-python-client builds a
client from it that drops nothing and groups operations by tag, and a workflow runs through that client.

The tools are installed by the test itself into .cache/ (npm: infra/local/npm_tools.py; the generator:
its own virtualenv, since it pins an older ruff than ours). A warm cache costs about 25 s in all (Spectral
about 15 s of it); a cold one adds about 20 s of npm and 40 s of pip. Only an unreachable npm registry
skips (with the reason); any other failure, or any warning a tool prints, fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local import npm_tools
from tests.integration.conftest import PASSWORD, Stack, new_account

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
GENERATOR = "openapi-python-client==0.29.1"
GENERATOR_VENV = REPO / ".cache" / "openapi-python-client"
WORKFLOW = Path(__file__).with_name("generated_client_workflow.py")


def _run(command: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, **kwargs)
    print(done.stdout, done.stderr, sep="\n")  # shown by pytest with the test's result: never swallowed
    return done


@pytest.fixture(scope="module")
def described(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The document the running API serves, as a file."""
    answer = stack.session().get(stack.api_url + "/openapi.json", timeout=30)
    assert answer.status_code == 200
    path = tmp_path_factory.mktemp("openapi") / "openapi.json"
    path.write_text(answer.text)
    return path


@pytest.fixture(scope="module")
def npm() -> Path:
    try:
        return npm_tools.install()
    except npm_tools.RegistryUnreachable as exc:
        pytest.skip(f"Spectral and Redocly come from the npm registry, which is unreachable: {exc}")


def test_spectral_standard_ruleset_finds_nothing(npm: Path, described: Path) -> None:
    ruleset = npm_tools.PACKAGE / "spectral.yaml"  # extends spectral:oas, nothing turned off
    done = _run([npm / ".bin" / "spectral", "lint", "-r", ruleset, "--fail-severity", "hint", described])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No results with a severity of 'hint' or higher found!" in done.stdout


def test_redocly_recommended_rules_find_nothing(npm: Path, described: Path) -> None:
    config = npm_tools.PACKAGE / "redocly.yaml"  # extends recommended
    done = _run([npm / ".bin" / "redocly", "lint", "--config", config, described])
    assert done.returncode == 0, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert "Your API description is valid" in output
    assert "warning" not in output.lower(), output


def _generator() -> Path:
    """openapi-python-client in its own virtualenv under .cache/, created once per pinned version."""
    python = GENERATOR_VENV / "venv" / "bin" / "python"
    stamp = GENERATOR_VENV / ".installed"
    if stamp.exists() and stamp.read_text() == GENERATOR and python.exists():
        return python.parent
    done = _run([sys.executable, "-m", "venv", "--clear", GENERATOR_VENV / "venv"])
    assert done.returncode == 0
    done = _run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", GENERATOR])
    assert done.returncode == 0, "pip could not install " + GENERATOR
    stamp.write_text(GENERATOR)
    return python.parent


@pytest.fixture(scope="module")
def client_package(described: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """(folder holding the generated package, the generator's output)."""
    bin_dir = _generator()
    out = tmp_path_factory.mktemp("client")
    config = out / "config.yaml"
    # The generator has no text/csv support; octet-stream is its raw-bytes body, sent as text/csv.
    config.write_text("content_type_overrides:\n  text/csv: application/octet-stream\n")
    package = out / "race_platform_api_client"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}  # its own (older) ruff
    generate = ["generate", "--path", described, "--output-path", package, "--meta", "none", "--config", config]
    done = _run([bin_dir / "openapi-python-client", *generate], env=env)
    assert done.returncode == 0
    yield out, done.stdout + done.stderr


def test_the_generated_client_drops_nothing_and_groups_by_tag(
    client_package: tuple[Path, str], described: Path
) -> None:
    out, output = client_package
    assert "warning" not in output.lower() and "skipping" not in output.lower(), output
    spec = json.loads(described.read_text())
    package = out / "race_platform_api_client"
    modules = {p.name for p in (package / "api").iterdir() if p.is_dir()}
    tags = {o["tags"][0].replace("-", "_") for ops in spec["paths"].values() for o in ops.values()}
    assert modules == tags
    models = {p.stem for p in (package / "models").glob("*.py")}
    snake = {_snake(name) for name in spec["components"]["schemas"]}
    assert snake - models == set(), "component schemas the generator dropped"
    functions = {p.stem for p in (package / "api" / "webhooks").glob("*.py")}
    assert "replay_webhook_delivery" in functions and "list_webhook_deliveries" in functions


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def test_a_workflow_runs_through_the_generated_client(client_package: tuple[Path, str], stack: Stack) -> None:
    out, _ = client_package
    email, _ = new_account("owner")
    python = GENERATOR_VENV / "venv" / "bin" / "python"
    done = _run([python, WORKFLOW, stack.api_url, email, PASSWORD], env={**os.environ, "PYTHONPATH": str(out)})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["created"] == 3 and seen["createdLapTypes"] == ["Lap"]
    assert seen["retryStatus"] == 201 and seen["retrySameBody"]  # Idempotency-Key: the answer replayed
    assert seen["listed"] == [1, 2, 3]
    assert seen["statsRunSheet"] == seen["sheet"] and seen["statsExtra"]
    assert (seen["badStatus"], seen["badCode"], seen["badField"]) == (400, "invalid", "lapTimeMs")
    assert seen["badDetails"] in ([], ["ErrorErrorDetailsItem"])
