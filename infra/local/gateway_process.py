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
from collections.abc import Callable
from typing import TYPE_CHECKING

from infra.local.child_process import GatedChildProcess, serve_gated
from infra.local.ws_management import ENV_VAR

if TYPE_CHECKING:
    from infra.local.maintenance import Gate


class GatewayProcess(GatedChildProcess):
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


def main(host: str, port: int, management_port: int) -> int:
    def start(gate: Gate) -> Callable[[], None]:
        from app import app
        from infra.local.ws_gateway import WsGateway

        gateway = WsGateway(app, host, port, management_port=management_port)
        gateway.gate = gate
        gateway.start_in_thread()
        return gateway.stop

    return serve_gated(start)


if __name__ == "__main__":
    host, port, management_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sys.exit(main(host, port, management_port))
