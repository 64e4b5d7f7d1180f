"""Port helpers for the local stack and the tests."""

from __future__ import annotations

import socket
import time


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def is_listening(host: str, port: int, timeout_s: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_listening(host: str, port: int, timeout_s: float = 15.0, what: str = "service") -> None:
    """Block until host:port accepts connections; raise TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if is_listening(host, port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on {host}:{port} within {timeout_s:.0f} s")


class PortInUse(RuntimeError):
    """A port the stack must listen on is taken; the message names it and its variable."""


def ensure_free(host: str, ports_by_variable: dict[str, int]) -> None:
    """Raise PortInUse naming the first port someone already listens on ("port 8000 (API_PORT) is in use")."""
    for variable, port in ports_by_variable.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as our servers bind: TIME_WAIT is no conflict
            try:
                sock.bind((host, port))
            except OSError as exc:
                raise PortInUse(
                    f"port {port} ({variable}) is in use: another stack or program listens there; "
                    f"stop it or set {variable} to a free port"
                ) from exc
