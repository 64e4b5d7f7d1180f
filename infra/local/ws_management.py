"""The local API Gateway management API (`/{stage}/@connections/{id}`) and boto3 clients that reach it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import boto3
from botocore.config import Config

ENV_VAR = "WS_MANAGEMENT_URL"
SERVICE = "apigatewaymanagementapi"
MAX_PAYLOAD_BYTES = 128 * 1024


class ConnectionGoneError(Exception):
    """The connection id is unknown or already closed (API Gateway's 410 GoneException)."""


class ConnectionRegistry(Protocol):
    """What the management API needs from the gateway; called from HTTP worker threads."""

    def post(self, connection_id: str, data: bytes) -> None:
        """Send data to the connection; raise ConnectionGoneError, or TimeoutError if it cannot keep up."""

    def info(self, connection_id: str) -> dict[str, Any]:
        """The GetConnection document; raise ConnectionGoneError."""

    def delete(self, connection_id: str) -> None:
        """Start closing the connection; raise ConnectionGoneError."""


class ManagementServer(ThreadingHTTPServer):
    """A threaded keep-alive HTTP server answering the @connections API for one stage."""

    daemon_threads = True
    # socketserver's default backlog is 5: a fan-out opening ~48 keep-alive connections at once had
    # SYNs dropped, and the kernel's retransmits (1 s, 3 s) stalled the room's first push for 5.5 s.
    request_queue_size = 128

    def __init__(
        self, host: str, port: int, stage: str, registry: ConnectionRegistry, max_payload_bytes: int = MAX_PAYLOAD_BYTES
    ) -> None:
        super().__init__((host, port), _ManagementHandler)
        self.stage = stage
        self.registry = registry
        self.max_payload_bytes = max_payload_bytes
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start_in_thread(self) -> None:
        # A short poll keeps stop() quick; shutdown() waits for the next poll.
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), name="ws-management", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, then cut idle keep-alive connections so their threads end."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()
        with self._open_lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def track(self, sock: socket.socket, is_open: bool) -> None:
        with self._open_lock:
            if is_open:
                self._open.add(sock)
            else:
                self._open.discard(sock)


class _ManagementHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: ManagementServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        super().finish()

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the gateway logs connections itself."""

    def _dispatch(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        connection_id = self._connection_id()
        if connection_id is None or method == "PUT":
            self._error(403, "ForbiddenException", "Forbidden")
            return
        registry = self.server.registry
        try:
            if method == "POST":
                if len(body) > self.server.max_payload_bytes:
                    self._error(413, "PayloadTooLargeException", "Message too long")
                    return
                registry.post(connection_id, body)
                self._reply(200)
            elif method == "GET":
                self._reply(200, json.dumps(registry.info(connection_id)).encode())
            else:
                registry.delete(connection_id)
                self._reply(204)
        except ConnectionGoneError:
            self._error(410, "GoneException", f"Connection {connection_id} is gone")
        except TimeoutError:
            self._error(429, "LimitExceededException", "The WebSocket client side buffer is full")

    def _connection_id(self) -> str | None:
        parts = urlsplit(self.path).path.split("/")
        if len(parts) != 4 or parts[0] or parts[1] != self.server.stage or parts[2] != "@connections":
            return None
        return unquote(parts[3]) or None

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if body:
            self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _error(self, status: int, error_type: str, message: str) -> None:
        # botocore's rest-json parser picks the modelled exception from this header.
        self._reply(status, json.dumps({"message": message}).encode(), {"x-amzn-ErrorType": error_type})


class ManagementSession:
    """Stands in for `app.websocket_api.session`: management clients always go to the local gateway."""

    def __init__(self, endpoint_url: str, base: boto3.session.Session | None = None) -> None:
        self.endpoint_url = endpoint_url
        self._base = base or boto3.session.Session()

    @property
    def region_name(self) -> str:
        return self._base.region_name or "us-east-1"

    def client(self, service_name: str, **kwargs: Any) -> Any:
        if service_name != SERVICE:
            return self._base.client(service_name, **kwargs)
        kwargs.pop("endpoint_url", None)
        return management_client(self.endpoint_url, session=self._base, **kwargs)


def management_client(
    endpoint_url: str | None = None, session: boto3.session.Session | None = None, **kwargs: Any
) -> Any:
    """A boto3 apigatewaymanagementapi client for endpoint_url, or for $WS_MANAGEMENT_URL.

    Create it once and reuse it: boto3 clients are thread-safe and slow to build.
    """
    url = endpoint_url or os.environ.get(ENV_VAR)
    if not url:
        raise RuntimeError(
            f"{ENV_VAR} is not set: start the local WebSocket gateway or set it to the API's "
            "https://{api-id}.execute-api.{region}.amazonaws.com/{stage} URL"
        )
    session = session or boto3.session.Session()
    kwargs.setdefault("region_name", session.region_name or "us-east-1")
    kwargs.setdefault("config", Config(connect_timeout=2, read_timeout=10, max_pool_connections=50))
    local = urlsplit(url).hostname in {"127.0.0.1", "localhost", "::1"}
    if local and session.get_credentials() is None and "aws_access_key_id" not in kwargs:
        # The local gateway ignores signatures, but botocore refuses to send unsigned requests.
        kwargs.update(aws_access_key_id="local", aws_secret_access_key="local")  # noqa: S106
    return session.client(SERVICE, endpoint_url=url, **kwargs)
