"""The WebSocket gateway in a child process, as `make dev` runs it: it serves the app's handlers with
the environment it inherits, holds frames while paused (`make restore`) and answers them after."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from infra.local.child_process import ChildProcess
from infra.local.gateway_process import GatewayProcess
from infra.local.ports import free_port
from tests.integration.conftest import Api, Stack, new_account, token_for

pytestmark = pytest.mark.integration


@pytest.fixture
def gateway(stack: Stack) -> Iterator[GatewayProcess]:
    child = GatewayProcess("127.0.0.1", free_port(), free_port())  # inherits the stack's environment
    child.start_in_thread()
    try:
        yield child
    finally:
        child.stop()


def _next(ws: ClientConnection, wanted: str, timeout_s: float = 20) -> dict[str, Any]:
    while True:
        message = json.loads(ws.recv(timeout=timeout_s))
        if message["type"] in (wanted, "error"):
            return message  # type: ignore[no-any-return]


def test_the_gateway_process_runs_the_apps_handlers(stack: Stack, gateway: GatewayProcess) -> None:
    email, _ = new_account("owner")
    token = token_for(email)
    owner = Api(stack.api_url, token)
    event = owner.post("/events", {"name": "Bathurst 12 Hour"}).json()
    session = owner.post("/sessions", {"eventId": event["id"], "name": "Race", "type": "race"}).json()
    with connect(f"{gateway.url}/?token={token}") as ws:
        ws.send(json.dumps({"action": "join", "sessionId": session["id"]}))
        joined = _next(ws, "joined")
    assert joined["type"] == "joined" and joined["sessionId"] == session["id"]


def test_frames_wait_while_the_gateway_process_is_paused_and_are_answered_after(
    stack: Stack, gateway: GatewayProcess
) -> None:
    email, _ = new_account("owner")
    with connect(f"{gateway.url}/?token={token_for(email)}") as ws:
        assert gateway.pause() is True  # nothing was running: drained at once
        ws.send(json.dumps({"action": "ping", "t": 7}))
        with pytest.raises(TimeoutError):
            ws.recv(timeout=1)  # held, not refused, while the database is swapped
        gateway.resume()
        pong = _next(ws, "pong")
    assert pong["t"] == 7


def test_a_command_the_gateway_process_does_not_know_is_answered_as_unknown(gateway: GatewayProcess) -> None:
    assert gateway.request("reboot", 10) == "unknown command 'reboot'"


def kill_and_read_report(child: ChildProcess, capsys: pytest.CaptureFixture[str]) -> str:
    """Kill a running child as the OOM killer would; what the stack printed about it."""
    assert child._child is not None
    child._child.kill()
    assert child._forward is not None
    child._forward.join(timeout=30)
    return capsys.readouterr().err


def test_a_gateway_process_that_dies_is_reported_loudly(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    child = GatewayProcess("127.0.0.1", free_port(), free_port())
    child.start_in_thread()
    try:
        assert "the ws gateway process ended on its own (exit -9)" in kill_and_read_report(child, capsys)
    finally:
        child.stop()
