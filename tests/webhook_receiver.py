"""A real webhook receiver for tests: a threaded HTTP/1.1 server on 127.0.0.1 that records every request and
answers as told (status, headers, body, delay), can hold a request until released, and can go down and
come back on the same port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay_s: float = 0.0
    drip_s: float = 0.0  # > 0: send the answer's headers one byte per drip_s, for at most a minute


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, receiver: Receiver, port: int) -> None:
        self.receiver = receiver
        self.open_connections: set[socket.socket] = set()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real receiver behind a load balancer
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stalls
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        with self.server.lock:
            self.server.open_connections.discard(self.connection)
        with suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        answer = self.server.receiver.record(received)
        if answer.delay_s:
            time.sleep(answer.delay_s)
        if answer.drip_s:
            self._drip(answer.drip_s)
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def _drip(self, every_s: float) -> None:
        """A hostile receiver: never finishes its headers, but never lets a per-read timeout trip."""
        self.close_connection = True
        try:
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Drip: ")
            self.wfile.flush()
            ends = time.monotonic() + 60
            while time.monotonic() < ends:
                time.sleep(every_s)
                self.wfile.write(b"a")
                self.wfile.flush()
        except OSError:
            pass  # the sender gave up: what it should do


def allow_outbound(port: int, address: str = "127.0.0.1") -> None:
    """Add address:port to this process's OUTBOUND_ALLOW (as the stack's settings would carry it)."""
    import os

    from chalicelib.config import settings

    entries = [e for e in os.environ.get("OUTBOUND_ALLOW", "").split(",") if e]
    entry = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    if entry not in entries:
        os.environ["OUTBOUND_ALLOW"] = ",".join([*entries, entry])
        settings.cache_clear()


class Receiver:
    """`url` receives webhooks; `answer` says how to answer the next ones; `requests` are those received."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answer = Answer()
        self.respond: Callable[[Received], Answer] | None = None
        self._changed = threading.Condition()
        self._hold: tuple[threading.Event, threading.Event] | None = None
        self._server: _Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/race?team=apex"

    @property
    def allow(self) -> frozenset[tuple[str, int]]:
        return frozenset({("127.0.0.1", self.port)})

    def start(self) -> Receiver:
        self._server = _Server(self, self.port)
        self.port = self._server.server_address[1]
        allow_outbound(self.port)  # loopback is refused in every stage unless allow-listed
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def down(self) -> None:
        """Stop listening and cut open connections: the next attempt gets 'connection refused'."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with server.lock:
            for connection in list(server.open_connections):
                with suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def up(self) -> None:
        """Listen again on the same port."""
        self.start()

    stop = down

    def record(self, received: Received) -> Answer:
        hold = self._hold
        with self._changed:
            self.requests.append(received)
            self._changed.notify_all()
        if hold is not None:
            arrived, release = hold
            arrived.set()
            release.wait(30)
        return self.respond(received) if self.respond else self.answer

    @contextmanager
    def holding(self) -> Iterator[tuple[threading.Event, threading.Event]]:
        """Requests wait (after being recorded) until `release` is set: (arrived, release)."""
        self._hold = (threading.Event(), threading.Event())
        try:
            yield self._hold
        finally:
            self._hold[1].set()
            self._hold = None

    def wait_for(self, count: int, timeout_s: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"the receiver got {len(self.requests)} requests, not {count}"
                self._changed.wait(remaining)
            return list(self.requests)
