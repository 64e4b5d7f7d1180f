"""free_port hands out ports an outgoing connection cannot take before the server binds them."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from infra.local import ports


def test_a_port_comes_from_below_the_ephemeral_range_and_binds() -> None:
    low = ports._ephemeral_low()
    for _ in range(50):
        port = ports.free_port()
        assert ports.PICK_FROM <= port < low
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))


def test_a_port_is_never_handed_out_twice_by_one_process() -> None:
    handed = [ports.free_port() for _ in range(300)]
    assert len(set(handed)) == len(handed)


def test_a_port_someone_listens_on_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        picks = iter([busy, busy, 0])
        monkeypatch.setattr(ports.random, "randrange", lambda a, b: next(picks) or ports.PICK_FROM + 7)
        monkeypatch.setattr(ports, "_ephemeral_low", lambda: busy + 10_000)
        monkeypatch.setattr(ports, "_handed_out", set())
        assert ports.free_port() == ports.PICK_FROM + 7


def test_an_unreadable_range_falls_back_to_the_linux_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE_FILE", tmp_path / "missing")
    assert ports._ephemeral_low() == 32768


def test_a_narrow_gap_below_the_range_lets_the_os_pick(monkeypatch: pytest.MonkeyPatch) -> None:
    real_low = ports._ephemeral_low()
    monkeypatch.setattr(ports, "_ephemeral_low", lambda: ports.PICK_FROM + 10)
    monkeypatch.setattr(ports.random, "randrange", lambda a, b: pytest.fail("picked at random in a narrow gap"))
    port = ports.free_port()
    assert port >= real_low  # the OS's own pick, from its ephemeral range
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
