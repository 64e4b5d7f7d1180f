"""Port helpers for the local stack and the tests."""

from __future__ import annotations

import random
import socket
import threading
import time
from pathlib import Path

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# Below Linux's ephemeral range and above the ports people run things on (8000, 4566, 5432...).
PICK_FROM = 20000
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def _ephemeral_low() -> int:
    """The first port the kernel hands to outgoing connections (32768 when it cannot be read)."""
    try:
        return int(EPHEMERAL_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _binds(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now, never handed out before by this process.

    Picked below the ephemeral range on purpose: a port the OS picks (bind to 0) comes from that
    range, and between this call and the server's bind any outgoing connection on the machine may
    take it as its local port (seen in CI: a child's bind failed with "address already in use")."""
    low = _ephemeral_low()
    if low - PICK_FROM >= 1000:
        for _ in range(200):
            port = random.randrange(PICK_FROM, low)
            with _handed_out_lock:
                if port in _handed_out or not _binds(host, port):
                    continue
                _handed_out.add(port)
            return port
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
