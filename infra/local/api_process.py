"""The HTTP API served by several child processes sharing one listening socket, as Lambda runs the
API function in as many containers as there are requests at once.

In one process every request thread takes turns at one interpreter lock: under bench_load's mix, a
lap write (about ten PostgreSQL round trips, each a wait for the lock again behind the viewers'
CPU-bound reads) waited ~7x as long as a read. Here each process has an interpreter of its own and
the kernel shares the cores; whichever process is free accepts the next connection.

The parent binds the socket (so a port in use fails at once, and nothing else can join the port
as SO_REUSEPORT would let it) and passes it to each child. `python -m infra.local.api_process FD`
serves the app on that descriptor until its stdin closes. Commands, as the ws gateway's: `pause`
(new requests answer 503 maintenance, those inside finish, the database pool closes: `make
restore`) and `resume`.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from infra.local.child_process import GatedChildProcess, serve_gated

if TYPE_CHECKING:
    from infra.local.maintenance import Gate

LISTEN_BACKLOG = 128
DEFAULT_PROCESSES = 1  # bench_load on 2 cores: 2 served the back-to-back readers faster and pushed slower


def api_processes() -> int:
    """How many API processes `make dev` and the benchmarks run (API_PROCESSES, default 1)."""
    raw = os.environ.get("API_PROCESSES", "").strip() or str(DEFAULT_PROCESSES)
    if not raw.isdigit() or not 1 <= int(raw) <= 32:
        raise SystemExit(f"API_PROCESSES must be a whole number from 1 to 32, not {raw!r}")
    return int(raw)


class ApiProcess(GatedChildProcess):
    """One API process serving the shared listener."""

    def __init__(self, listener: socket.socket, number: int) -> None:
        fd = listener.fileno()
        super().__init__(f"api {number}", "infra.local.api_process", [str(fd)], pass_fds=(fd,))


class ApiProcesses:
    """http://host:port served by `count` ApiProcess children; paused and resumed as one gate."""

    def __init__(self, host: str, port: int, count: int) -> None:
        if count < 1:
            raise ValueError("the API needs at least one process")
        self.listener = socket.create_server((host, port), backlog=LISTEN_BACKLOG)
        self.host, self.port = host, int(self.listener.getsockname()[1])
        self.children = [ApiProcess(self.listener, n + 1) for n in range(count)]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start_in_thread(self) -> None:
        try:
            for child in self.children:
                child.start_in_thread()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for child in self.children:
            child.stop()
        self.listener.close()

    def pause(self, timeout_s: float | None = None) -> bool:
        """Every process holds new requests; True once each one's requests inside have finished. Each
        is asked even if another fails (a dead one serves nothing); the first failure is raised after."""
        return all(self._each(lambda child: child.pause(timeout_s)))

    def resume(self) -> None:
        """Every process lets requests in again; the first failure is raised once all were tried."""
        self._each(lambda child: child.resume())

    def _each(self, step: Callable[[ApiProcess], Any]) -> list[Any]:
        results: list[Any] = []
        failures: list[Exception] = []
        for child in self.children:
            try:
                results.append(step(child))
            except Exception as exc:
                failures.append(exc)
        if failures:
            raise failures[0]
        return results


def main(fd: int) -> int:
    def start(gate: Gate) -> Callable[[], None]:
        from app import app
        from infra.local import http_gateway

        server = http_gateway.HttpGateway(app, listener=socket.socket(fileno=fd))
        server.gate = gate
        server.start_serving_thread()

        def stop() -> None:
            server.shutdown()
            server.server_close()

        return stop

    return serve_gated(start)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
