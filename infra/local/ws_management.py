"""The local API Gateway management API (`/{stage}/@connections/{id}`) and boto3 clients that reach it.

The API is served on the WebSocket gateway's own event loop: a POST is parsed and handed to its
socket in one task, without a thread per connection or a hop between threads (with one, a room
fan-out's POSTs cost the gateway process ~0.3 ms of CPU each, and waited for thread wake-ups on a
busy machine). HTTP/1.1 with keep-alive and Content-Length bodies, which is what botocore and the
fan-out send; anything else is answered 400 and the connection closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import boto3
from botocore.config import Config

ENV_VAR = "WS_MANAGEMENT_URL"
SERVICE = "apigatewaymanagementapi"
MAX_PAYLOAD_BYTES = 128 * 1024
SEND_TIMEOUT_S = 10.0  # a client that reads too slowly: 429, as API Gateway answers
MAX_HEAD_BYTES = 16 * 1024
BACKLOG = 128  # a fan-out opens ~50 keep-alive connections at once (socketserver's 5 dropped SYNs)
_REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 403: "Forbidden", 410: "Gone"}
_REASONS |= {413: "Payload Too Large", 429: "Too Many Requests"}


class ConnectionGoneError(Exception):
    """The connection id is unknown or already closed (API Gateway's 410 GoneException)."""


class ConnectionRegistry(Protocol):
    """What the management API needs from the gateway; awaited on the gateway's event loop."""

    async def post(self, connection_id: str, data: bytes) -> None:
        """Send data to the connection; raise ConnectionGoneError."""

    async def info(self, connection_id: str) -> dict[str, Any]:
        """The GetConnection document; raise ConnectionGoneError."""

    async def delete(self, connection_id: str) -> None:
        """Start closing the connection; raise ConnectionGoneError."""


class _BadRequest(Exception):
    pass


class ManagementServer:
    """Answers the @connections API for one stage on the running event loop (start/close are coroutines)."""

    def __init__(
        self, host: str, port: int, stage: str, registry: ConnectionRegistry, max_payload_bytes: int = MAX_PAYLOAD_BYTES
    ) -> None:
        self.host = host
        self.port = port
        self.stage = stage
        self.registry = registry
        self.max_payload_bytes = max_payload_bytes
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, backlog=BACKLOG, limit=MAX_HEAD_BYTES
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop accepting, then cut the idle keep-alive connections."""
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._open):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        try:
            keep_alive = True
            while keep_alive:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return  # the client closed its keep-alive connection
                try:
                    method, target, headers = _parse_head(head)
                    length = _content_length(headers)
                except _BadRequest as exc:
                    writer.write(_response(400, json.dumps({"message": str(exc)}).encode(), close=True))
                    await writer.drain()
                    return
                if length > self.max_payload_bytes:  # answered unread: the connection cannot be reused
                    writer.write(_response(*_error(413, "PayloadTooLargeException", "Message too long"), close=True))
                    await writer.drain()
                    return
                body = await reader.readexactly(length)
                keep_alive = headers.get("connection", "").lower() != "close"
                status, payload, extra = await self._answer(method, target, body)
                writer.write(_response(status, payload, extra, close=not keep_alive))
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, asyncio.IncompleteReadError, ValueError):
            pass  # a client gone mid-request, or a head over MAX_HEAD_BYTES
        finally:
            self._open.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, method: str, target: str, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        connection_id = self._connection_id(target)
        if connection_id is None or method not in ("POST", "GET", "DELETE"):
            return _error(403, "ForbiddenException", "Forbidden")
        try:
            if method == "POST":
                await asyncio.wait_for(self.registry.post(connection_id, body), SEND_TIMEOUT_S)
                return 200, b"", {}
            if method == "GET":
                return 200, json.dumps(await self.registry.info(connection_id)).encode(), {}
            await self.registry.delete(connection_id)
            return 204, b"", {}
        except ConnectionGoneError:
            return _error(410, "GoneException", f"Connection {connection_id} is gone")
        except TimeoutError:
            return _error(429, "LimitExceededException", "The WebSocket client side buffer is full")

    def _connection_id(self, target: str) -> str | None:
        parts = urlsplit(target).path.split("/")
        if len(parts) != 4 or parts[0] or parts[1] != self.stage or parts[2] != "@connections":
            return None
        return unquote(parts[3]) or None


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """Method, target and lower-cased headers of a request head (ending in a blank line)."""
    request_line, *lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = request_line.split(" ")
    except ValueError:
        raise _BadRequest("malformed request line") from None
    if version != "HTTP/1.1":
        raise _BadRequest("only HTTP/1.1 is served")
    headers: dict[str, str] = {}
    for line in lines:
        if line:
            name, separator, value = line.partition(":")
            if not separator or not name.strip():
                raise _BadRequest("malformed header")
            headers[name.strip().lower()] = value.strip()
    return method, target, headers


def _content_length(headers: dict[str, str]) -> int:
    if "transfer-encoding" in headers:
        raise _BadRequest("send a Content-Length body, not Transfer-Encoding")
    text = headers.get("content-length", "0")
    if not text.isdigit():
        raise _BadRequest("Content-Length is not a number")
    return int(text)


def _response(status: int, body: bytes = b"", headers: dict[str, str] | None = None, *, close: bool = False) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}", f"x-amzn-RequestId: {uuid.uuid4()}"]
    if body:
        lines.append("Content-Type: application/json")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _error(status: int, error_type: str, message: str) -> tuple[int, bytes, dict[str, str]]:
    # botocore's rest-json parser picks the modelled exception from this header.
    return status, json.dumps({"message": message}).encode(), {"x-amzn-ErrorType": error_type}


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
