"""boto3 clients are made once per container, even when many threads ask for the first one at once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chalicelib.caches import forget as reset_caches
from chalicelib.realtime import push
from chalicelib.store import aws

pytestmark = pytest.mark.unit

ENV = {
    "STAGE": "local",
    "JWT_SECRET": "s" * 40,
    "DATABASE_URL": "postgresql://x/y",
    "WEBHOOK_KEY": "k" * 43 + "=",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
}


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("OUTBOUND_ALLOW", raising=False)  # an integration test's receivers may have set it
    reset_caches()
    yield
    reset_caches()


def all_at_once(get: Callable[[], Any], threads: int = 24) -> list[Any]:
    """`get()` from `threads` threads released together, as a cold fan-out's workers are."""
    start = threading.Barrier(threads)
    got: list[Any] = []

    def ask() -> None:
        start.wait()
        got.append(get())

    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return got


def test_the_management_client_is_made_once_under_a_cold_fan_out() -> None:
    got = all_at_once(lambda: push._client("http://127.0.0.1:9/local"))
    assert len({id(c) for c in got}) == 1  # 24 creations cost a cold publisher seconds per push


def test_a_service_client_is_made_once_under_concurrent_first_use() -> None:
    got = all_at_once(lambda: aws.client("dynamodb"))
    assert len({id(c) for c in got}) == 1


def test_the_local_stack_makes_every_client_the_app_uses_before_serving() -> None:
    from infra.local.stack import APP_SERVICES, warm_clients

    warm_clients()
    assert aws._new_client.cache_info().currsize == len(APP_SERVICES)
    for service in APP_SERVICES:
        assert aws.client(service) is aws._new_client(service)


def test_the_warmed_services_are_every_one_the_code_asks_for() -> None:
    import re
    from pathlib import Path

    from infra.local.stack import APP_SERVICES

    asked = {
        name
        for path in (Path(__file__).resolve().parents[2] / "chalicelib").rglob("*.py")
        for name in re.findall(r'\bclient\("([a-z0-9-]+)"\)', path.read_text())
    }
    assert asked and asked <= set(APP_SERVICES)
