"""Shared fixtures: the AWS emulator (moto server over HTTP) and credentials for it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chalicelib import wiring
from infra.local.emulator import Emulator
from infra.local.ports import free_port

# Tests never reach real AWS: dummy credentials, a fixed region.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# Writes made by tests outside the app reach rooms and webhooks as the app's do.
wiring.install()


@pytest.fixture(scope="session")
def emulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private moto server on a free port for this test session."""
    log = tmp_path_factory.mktemp("emulator") / "moto.log"
    emulator = Emulator(port=free_port(), log_path=log)
    url = emulator.start()
    try:
        yield url
    finally:
        emulator.stop()


@pytest.fixture
def closed_after() -> Iterator[Callable[[Any], Any]]:
    """`closed_after(thing)` returns `thing` and closes it when the test ends (clients that keep a
    connection open: no socket is left to the garbage collector)."""
    things: list[Any] = []

    def later(thing: Any) -> Any:
        things.append(thing)
        return thing

    yield later
    for thing in reversed(things):
        thing.close()
