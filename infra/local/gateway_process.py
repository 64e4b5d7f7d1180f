"""The WebSocket gateway (and its @connections management API) in a child process, as API Gateway
runs apart from the functions behind it.

In one process with the HTTP API, every management-API POST of a room fan-out (parse, hand-off to
the socket's event loop, answer) waited for the API's request threads at one interpreter lock; 50
members and 8 laps/s are 400 of them a second (docs/decisions.md has the figures). The child runs
the app's $connect/$default/$disconnect handlers itself, with the environment it inherits.

`python -m infra.local.gateway_process HOST PORT MANAGEMENT_PORT` serves until its stdin closes.
Commands: `pause` (WebSocket invocations wait, the work inside finishes, the database pool closes:
`make restore`), `resume` (fresh pools, invocations go on).
"""

from __future__ import annotations

import sys

from infra.local.child_process import ChildProcess, child_setup, serve_commands
from infra.local.maintenance import DRAIN_TIMEOUT_S
from infra.local.ws_management import ENV_VAR

PAUSED, BUSY, RESUMED = "paused", "paused-busy", "resumed"


class GatewayProcess(ChildProcess):
    """ws://host:port and the management API on management_port, served by a child process."""

    def __init__(self, host: str, port: int, management_port: int) -> None:
        self.host, self.port, self.management_port = host, port, management_port
        super().__init__(
            "ws gateway",
            "infra.local.gateway_process",
            [host, str(port), str(management_port)],
            # The handlers' own pushes (pong, joined) go to this gateway, whatever the parent points at.
            env={ENV_VAR: f"http://{host}:{management_port}/local"},
        )

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def pause(self, timeout_s: float = DRAIN_TIMEOUT_S) -> bool:
        """Hold new WebSocket invocations; True once those already running have finished."""
        return self.request("pause", timeout_s + 15) == PAUSED

    def resume(self) -> None:
        reply = self.request("resume", 30)
        if reply != RESUMED:
            raise RuntimeError(f"the ws gateway process answered {reply!r} to resume")


def main(host: str, port: int, management_port: int) -> int:
    from app import app
    from chalicelib import caches
    from chalicelib.config import settings
    from infra.local.maintenance import Gate
    from infra.local.stack import warm_clients
    from infra.local.ws_gateway import WsGateway

    child_setup()
    settings()  # fail fast on a bad environment, before anything listens
    warm_clients()  # before the first join or message, not during it (infra/local/stack.py)
    gate = Gate()
    gateway = WsGateway(app, host, port, management_port=management_port)
    gateway.gate = gate
    gateway.start_in_thread()

    def pause() -> str:
        drained = gate.pause()
        caches.forget()  # closes the pool: no connection or prepared statement survives the swap
        return PAUSED if drained else BUSY

    def resume() -> str:
        caches.forget()
        gate.resume()
        return RESUMED

    try:
        serve_commands({"pause": pause, "resume": resume})
    finally:
        gateway.stop()
    return 0


if __name__ == "__main__":
    host, port, management_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sys.exit(main(host, port, management_port))
