"""The HTTP API in child processes sharing one listening socket, as `make dev` and the benchmarks
run it: each serves the app with the environment it inherits, answers 503 maintenance while
paused (`make restore`) and serves again after; a port in use fails at once."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from infra.local.api_process import ApiProcesses, api_processes
from tests.integration.conftest import Stack, new_account, token_for
from tests.integration.test_gateway_process import kill_and_read_report

pytestmark = pytest.mark.integration


@pytest.fixture
def api(stack: Stack) -> Iterator[ApiProcesses]:
    processes = ApiProcesses("127.0.0.1", 0, 2)  # inherits the stack's environment
    processes.start_in_thread()
    try:
        yield processes
    finally:
        processes.stop()


def test_every_api_process_serves_the_app_on_the_shared_port(api: ApiProcesses) -> None:
    email, _ = new_account("owner")
    headers = {"Authorization": f"Bearer {token_for(email)}"}
    created = requests.post(f"{api.url}/events", json={"name": "Spa 24 Hours"}, headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    # Many connections at once: each is accepted by one process or the other, and all are answered.
    answers: list[int] = []

    def read() -> None:
        with requests.Session() as http:  # a connection of its own
            answers.append(
                http.get(f"{api.url}/events/{created.json()['id']}", headers=headers, timeout=30).status_code
            )

    threads = [threading.Thread(target=read) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 12
    assert len({child.pid for child in api.children}) == 2 and all(child.pid for child in api.children)


def test_paused_api_processes_answer_maintenance_and_serve_again_after(api: ApiProcesses) -> None:
    email, _ = new_account("owner")
    headers = {"Authorization": f"Bearer {token_for(email)}"}
    assert api.pause() is True  # nothing was running: drained at once
    for _ in range(4):  # whichever process takes the connection
        with requests.Session() as http:
            paused = http.get(f"{api.url}/events", headers=headers, timeout=30)
        assert paused.status_code == 503
        assert paused.json()["error"]["code"] == "maintenance" and paused.headers["Retry-After"] == "5"
    api.resume()
    assert requests.get(f"{api.url}/events", headers=headers, timeout=30).status_code == 200


def test_a_port_in_use_fails_before_any_process_starts() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken, pytest.raises(OSError):
        ApiProcesses("127.0.0.1", taken.getsockname()[1], 1)


def test_an_api_process_that_dies_is_reported_loudly(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    processes = ApiProcesses("127.0.0.1", 0, 1)
    processes.start_in_thread()
    try:
        (child,) = processes.children
        assert "the api 1 process ended on its own (exit -9)" in kill_and_read_report(child, capsys)
    finally:
        processes.stop()


def test_the_number_of_api_processes_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("API_PROCESSES", raising=False)
    assert api_processes() == 1
    monkeypatch.setenv("API_PROCESSES", "3")
    assert api_processes() == 3
    for bad in ("0", "-1", "two", "33"):
        monkeypatch.setenv("API_PROCESSES", bad)
        with pytest.raises(SystemExit, match="API_PROCESSES must be a whole number from 1 to 32"):
            api_processes()


def test_a_dead_api_process_does_not_keep_the_others_serving_during_a_restore(stack: Stack) -> None:
    processes = ApiProcesses("127.0.0.1", 0, 2)
    processes.start_in_thread()
    try:
        first, _ = processes.children
        assert first._child is not None
        first._child.kill()
        first._child.wait()
        with pytest.raises(RuntimeError, match="api 1"):
            processes.pause()
        paused = requests.get(f"{processes.url}/health", timeout=30)
        assert paused.status_code == 503  # the live one was paused all the same
        with pytest.raises(RuntimeError, match="api 1"):
            processes.resume()
        assert requests.get(f"{processes.url}/health", timeout=30).status_code == 200
    finally:
        processes.stop()


@pytest.mark.parametrize(("level", "logged"), [(logging.INFO, True), (logging.WARNING, False)])
def test_api_processes_log_as_their_parent_does(
    stack: Stack, capsys: pytest.CaptureFixture[str], level: int, logged: bool
) -> None:
    """make dev logs every request at INFO; a benchmark's stack (WARNING) does not pay for the lines."""
    root = logging.getLogger()
    before = root.level
    root.setLevel(level)
    processes = ApiProcesses("127.0.0.1", 0, 1)
    try:
        processes.start_in_thread()
        assert requests.get(f"{processes.url}/health", timeout=30).status_code == 200
    finally:
        processes.stop()  # the output is forwarded until the child has exited
        root.setLevel(before)
    assert ("GET /health 200" in capsys.readouterr().err) is logged
