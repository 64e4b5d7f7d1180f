"""The local stack uses what the environment points at (LocalStack, your PostgreSQL) instead of its own."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest

from infra.local import stack as local_stack

pytestmark = pytest.mark.integration


def test_external_endpoint_and_database_are_used_as_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, emulator_url: str, database_url: str
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator_url)
    monkeypatch.setenv("DATABASE_URL", database_url)
    started: list[str] = []
    monkeypatch.setattr("infra.local.emulator.Emulator.start", lambda self, *a, **k: started.append("moto") or "")
    with ExitStack() as stack:
        env = local_stack.prepare(tmp_path, stack, seed=False)
    assert env["AWS_ENDPOINT_URL"] == emulator_url and env["DATABASE_URL"] == database_url
    assert started == []
    assert not (tmp_path / "postgres.json").exists()  # no embedded cluster was made


def test_without_variables_the_stack_starts_its_own(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from infra.local.ports import free_port

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    port = free_port()
    monkeypatch.setenv("EMULATOR_PORT", str(port))
    with ExitStack() as stack:
        env = local_stack.prepare(tmp_path, stack, seed=False)
        assert env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{port}"
        assert env["DATABASE_URL"].startswith("postgresql://")
        assert (tmp_path / "postgres.json").exists()
    from infra.local.postgres import EmbeddedPostgres

    EmbeddedPostgres(tmp_path).wipe()
