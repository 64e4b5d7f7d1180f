"""A local stand-in for API Gateway's WebSocket API, driving a Chalice app's $connect/$default/$disconnect."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import http
import json
import logging
import os
import secrets
import threading
import time
import weakref
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import chalice
from chalice.local import LambdaContext
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from infra.local.ws_management import ENV_VAR, ConnectionGoneError, ManagementServer, ManagementSession

if TYPE_CHECKING:
    from infra.local.maintenance import Gate

LOG = logging.getLogger("race.gateway.ws")
# The websockets library logs request lines at DEBUG, and query strings carry tokens.
_PROTOCOL_LOG = logging.getLogger("race.gateway.ws.protocol")
_PROTOCOL_LOG.setLevel(logging.INFO)

ROUTE_CONNECT = "$connect"
ROUTE_DEFAULT = "$default"
ROUTE_DISCONNECT = "$disconnect"

# API Gateway's quotas for WebSocket APIs.
IDLE_TIMEOUT_S = 600.0
MAX_CONNECTION_S = 7200.0
MAX_MESSAGE_BYTES = 128 * 1024
INTEGRATION_TIMEOUT_S = 29.0
LAMBDA_TIMEOUT_MS = 60_000


def new_aws_id() -> str:
    """An id shaped like API Gateway's connection and request ids, e.g. 'Ab3dEfGhIAMCJ-Q='."""
    return base64.urlsafe_b64encode(secrets.token_bytes(11)).decode()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _iso_ms(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _last_header(headers: Headers, name: str) -> str | None:
    values = headers.get_all(name)
    return values[-1] if values else None


@dataclass
class _Connection:
    connection_id: str
    source_ip: str
    user_agent: str
    domain_name: str
    connected_at_ms: int = field(default_factory=_now_ms)
    last_active_ms: int = field(default_factory=_now_ms)
    connected_mono: float = field(default_factory=time.monotonic)
    last_active_mono: float = field(default_factory=time.monotonic)
    subprotocol: str | None = None
    ws: ServerConnection | None = None

    def touch(self) -> None:
        self.last_active_ms = _now_ms()
        self.last_active_mono = time.monotonic()


class WsGateway:
    """Serves ws://host:port for a Chalice app as API Gateway would, plus its @connections management API."""

    def __init__(
        self,
        app: chalice.Chalice,
        host: str = "127.0.0.1",
        port: int = 8001,
        management_port: int = 0,
        stage: str = "local",
        api_id: str = "local",
        *,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        max_connection_s: float = MAX_CONNECTION_S,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        workers: int = 32,
        export_env: bool = True,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.management_port = management_port
        self.stage = stage
        self.api_id = api_id
        self.idle_timeout_s = idle_timeout_s
        self.max_connection_s = max_connection_s
        self.max_message_bytes = max_message_bytes
        self.workers = workers
        self.export_env = export_env
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Server | None = None
        self._management: ManagementServer | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._session: ManagementSession | None = None
        self._saved_session: Any = None
        self._saved_env: str | None = None
        # Touched only on the loop thread; management threads go through run_coroutine_threadsafe.
        self._connections: dict[str, _Connection] = {}
        self._handshakes: weakref.WeakKeyDictionary[ServerConnection, _Connection] = weakref.WeakKeyDictionary()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.gate: Gate | None = None  # set by the stack: closed while a restore swaps the database

    @property
    def _url_host(self) -> str:
        return "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host

    @property
    def url(self) -> str:
        return f"ws://{self._url_host}:{self.port}"

    @property
    def management_url(self) -> str:
        if not self.management_port:
            raise RuntimeError("the management port is chosen by start_in_thread(); call it first")
        return f"http://{self._url_host}:{self.management_port}/{self.stage}"

    # Lifecycle

    def start_in_thread(self) -> None:
        """Start both servers on a private event loop thread; return once both listen."""
        if self._loop is not None:
            raise RuntimeError("the gateway is already running")
        if "WEBSOCKETS" not in self.app.experimental_feature_flags:
            LOG.warning(
                "app %s lacks experimental_feature_flags 'WEBSOCKETS'; chalice deploy refuses that", self.app.app_name
            )
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="ws-handler")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ws-gateway", daemon=True)
        self._thread.start()
        try:
            self._management = ManagementServer(self.host, self.management_port, self.stage, self)
            asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=15)
            self.management_port = self._management.port
        except BaseException:
            self.stop()
            raise
        self._session = ManagementSession(self.management_url)
        api = self.app.websocket_api
        self._saved_session = api.session
        self._install_session()
        # Lets app.websocket_api.send work outside handlers too (Chalice configures it on the first event).
        api.configure_from_api_id(self.api_id, self.stage)
        if self.export_env:
            self._saved_env = os.environ.get(ENV_VAR)
            os.environ[ENV_VAR] = self.management_url
        LOG.info("ws gateway on %s, management API on %s", self.url, self.management_url)

    def stop(self) -> None:
        """Close every socket (each fires $disconnect), stop both servers and join the loop thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=120)
        if self._management is not None:
            asyncio.run_coroutine_threadsafe(self._management.close(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._session is not None:
            api = self.app.websocket_api
            api.session = self._saved_session
            api._client = None
        if self.export_env and self._session is not None:
            if self._saved_env is None:
                os.environ.pop(ENV_VAR, None)
            else:
                os.environ[ENV_VAR] = self._saved_env
        self._loop = self._thread = self._server = self._management = self._pool = self._session = None
        self._connections.clear()

    async def _listen(self) -> None:
        assert self._management is not None
        await self._management.start()
        self._server = await serve(
            self._serve_connection,
            self.host,
            self.port,
            process_request=self._process_request,
            process_response=self._process_response,
            open_timeout=INTEGRATION_TIMEOUT_S + 1,
            max_size=self.max_message_bytes,
            # API Gateway negotiates no permessage-deflate; compressing every push also cost this
            # process the CPU the room fan-out needs (PerMessageDeflate.encode in bench_load's profile).
            compression=None,
            logger=_PROTOCOL_LOG,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # Opening handshake: $connect decides

    async def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        conn = _Connection(
            connection_id=new_aws_id(),
            source_ip=str(ws.remote_address[0]) if ws.remote_address else "",
            user_agent=_last_header(request.headers, "User-Agent") or "",
            domain_name=_last_header(request.headers, "Host") or f"{self._url_host}:{self.port}",
        )
        result: Any = None
        if ROUTE_CONNECT in self.app.websocket_handlers:
            try:
                result = await self._invoke(ROUTE_CONNECT, self._connect_event(conn, request))
            except Exception:
                LOG.exception("ws connect %s: $connect handler failed", conn.connection_id)
                result = {
                    "statusCode": 502,
                    "body": json.dumps({"message": "Internal server error"}),
                    "headers": {"Content-Type": "application/json"},
                }
        status, body, headers = _integration_response(result)
        if not 200 <= status < 300:
            LOG.info("ws connect %s refused status=%d", conn.connection_id, status)
            return _http_response(status, body, headers)
        conn.subprotocol = headers.get("sec-websocket-protocol")
        self._handshakes[ws] = conn
        return None

    def _process_response(self, ws: ServerConnection, request: Request, response: Response) -> None:
        conn = self._handshakes.get(ws)
        # API Gateway answers with the subprotocol the $connect handler chose; browsers require it.
        if conn is not None and conn.subprotocol and response.status_code == 101:
            response.headers["Sec-WebSocket-Protocol"] = conn.subprotocol

    # One connection's life: messages in order, then $disconnect

    async def _serve_connection(self, ws: ServerConnection) -> None:
        conn = self._handshakes.pop(ws, None)
        if conn is None:
            return
        conn.ws = ws
        self._connections[conn.connection_id] = conn
        LOG.info("ws connect %s accepted status=200", conn.connection_id)
        expiry = asyncio.create_task(self._expire(conn, ws))
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    # API Gateway does not accept binary frames from clients.
                    await ws.close(CloseCode.UNSUPPORTED_DATA, "Binary frames are not supported")
                    break
                conn.touch()
                await self._on_message(conn, ws, message)
        except ConnectionClosed:
            pass
        finally:
            expiry.cancel()
            self._connections.pop(conn.connection_id, None)
            await ws.close()
            await ws.wait_closed()
            await self._on_disconnect(conn, ws.close_code, ws.close_reason)

    async def _on_message(self, conn: _Connection, ws: ServerConnection, body: str) -> None:
        event = self._event(conn, ROUTE_DEFAULT, "MESSAGE", messageId=new_aws_id())
        event["body"] = body
        error = None
        if ROUTE_DEFAULT not in self.app.websocket_handlers:
            error = "Forbidden"
        else:
            try:
                # Without a route response API Gateway drops the integration's result (Chalice creates none).
                await self._invoke(ROUTE_DEFAULT, event)
            except Exception:
                LOG.exception("ws message on %s: $default handler failed", conn.connection_id)
                error = "Internal server error"
        if error is not None:
            reply = {
                "message": error,
                "connectionId": conn.connection_id,
                "requestId": event["requestContext"]["requestId"],
            }
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps(reply))

    async def _on_disconnect(self, conn: _Connection, code: int | None, reason: str | None) -> None:
        event = self._event(
            conn,
            ROUTE_DISCONNECT,
            "DISCONNECT",
            disconnectStatusCode=code if code is not None else CloseCode.ABNORMAL_CLOSURE,
            disconnectReason=reason or "",
        )
        headers = {"Host": conn.domain_name, "X-Forwarded-For": conn.source_ip}
        event.update(headers=headers, multiValueHeaders={k: [v] for k, v in headers.items()})
        if ROUTE_DISCONNECT in self.app.websocket_handlers:
            try:
                await self._invoke(ROUTE_DISCONNECT, event)
            except Exception:
                LOG.exception("ws disconnect %s: $disconnect handler failed", conn.connection_id)
        LOG.info("ws disconnect %s code=%s", conn.connection_id, code)

    async def _expire(self, conn: _Connection, ws: ServerConnection) -> None:
        while True:
            deadline = min(conn.last_active_mono + self.idle_timeout_s, conn.connected_mono + self.max_connection_s)
            delay = deadline - time.monotonic()
            if delay <= 0:
                break
            await asyncio.sleep(delay)
        LOG.info("ws connection %s timed out", conn.connection_id)
        self._connections.pop(conn.connection_id, None)
        # Spawned, not awaited: the connection's task cancels this one once the socket closes.
        self._spawn(ws.close(CloseCode.GOING_AWAY, "Going away"))

    # Lambda invocation, in the thread pool

    async def _invoke(self, route_key: str, event: dict[str, Any]) -> Any:
        assert self._pool is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call_handler, route_key, event)

    def _call_handler(self, route_key: str, event: dict[str, Any]) -> Any:
        config = self.app.websocket_handlers[route_key]
        handler = self.app.handler_map[config.name]
        self._install_session()
        context = LambdaContext(
            f"{self.app.app_name}-{self.stage}-{config.name}", memory_size=128, max_runtime_ms=LAMBDA_TIMEOUT_MS
        )
        if self.gate is None:
            return handler(event, context)
        with self.gate.wait_admitted():  # held, not refused, while a restore swaps the database
            return handler(event, context)

    def _install_session(self) -> None:
        api = self.app.websocket_api
        if self._session is not None and api.session is not self._session:
            api.session = self._session
            # A client cached for another endpoint (AWS, or an earlier gateway) must not be reused.
            api._client = None

    # Events shaped as API Gateway sends them to Lambda

    def _event(self, conn: _Connection, route_key: str, event_type: str, **extra: Any) -> dict[str, Any]:
        now_ms = _now_ms()
        request_id = new_aws_id()
        context = {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now_ms / 1000)),
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": conn.connected_at_ms,
            "requestTimeEpoch": now_ms,
            "identity": {"sourceIp": conn.source_ip, "userAgent": conn.user_agent},
            "requestId": request_id,
            "domainName": conn.domain_name,
            "connectionId": conn.connection_id,
            "apiId": self.api_id,
            **extra,
        }
        return {"requestContext": context, "isBase64Encoded": False}

    def _connect_event(self, conn: _Connection, request: Request) -> dict[str, Any]:
        pairs = [
            *request.headers.raw_items(),
            ("X-Forwarded-For", conn.source_ip),
            ("X-Forwarded-Port", str(self.port)),
            ("X-Forwarded-Proto", "http"),
        ]
        event = self._event(conn, ROUTE_CONNECT, "CONNECT")
        event.update(_single_and_multi("headers", pairs))
        query = parse_qsl(urlsplit(request.path).query, keep_blank_values=True)
        if query:
            event.update(_single_and_multi("queryStringParameters", query))
        return event

    # The management API's view of connections (ConnectionRegistry), awaited on this loop

    def _open(self, connection_id: str) -> tuple[_Connection, ServerConnection]:
        conn = self._connections.get(connection_id)
        if conn is None or conn.ws is None:
            raise ConnectionGoneError(connection_id)
        return conn, conn.ws

    async def post(self, connection_id: str, data: bytes) -> None:
        _, ws = self._open(connection_id)
        message: str | bytes
        try:
            message = data.decode()
        except UnicodeDecodeError:
            message = data
        try:
            await ws.send(message)
        except ConnectionClosed as exc:
            raise ConnectionGoneError(connection_id) from exc

    async def info(self, connection_id: str) -> dict[str, Any]:
        conn, _ = self._open(connection_id)
        return {
            "connectedAt": _iso_ms(conn.connected_at_ms),
            "identity": {"sourceIp": conn.source_ip, "userAgent": conn.user_agent},
            "lastActiveAt": _iso_ms(conn.last_active_ms),
        }

    async def delete(self, connection_id: str) -> None:
        _, ws = self._open(connection_id)
        self._connections.pop(connection_id, None)
        self._spawn(ws.close(CloseCode.NORMAL_CLOSURE, ""))


def _single_and_multi(name: str, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """API Gateway's `name` (last value wins) and `multiValueName` maps."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        single[key] = value
        multi.setdefault(key, []).append(value)
    return {name: single, f"multiValue{name[0].upper()}{name[1:]}": multi}


def _integration_response(result: Any) -> tuple[int, str, dict[str, str]]:
    """Status, body and lower-cased headers of a Lambda proxy result; a malformed one is a 502."""
    if not isinstance(result, dict):
        return 200, "", {}
    try:
        status = int(result.get("statusCode", 200))
    except (TypeError, ValueError):
        status = 0
    if not 200 <= status <= 599:
        return 502, json.dumps({"message": "Internal server error"}), {"content-type": "application/json"}
    body = result.get("body") or ""
    if result.get("isBase64Encoded") and isinstance(body, str):
        body = base64.b64decode(body).decode(errors="replace")
    headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    return status, str(body), headers


def _http_response(status: int, body: str, headers: dict[str, str]) -> Response:
    """The plain HTTP answer that refuses an upgrade."""
    payload = body.encode()
    out = Headers()
    out["Date"] = email.utils.formatdate(usegmt=True)
    out["Connection"] = "close"
    out["Content-Type"] = headers.get("content-type", "text/plain; charset=utf-8")
    for name, value in headers.items():
        if name not in ("content-type", "content-length", "connection", "date"):
            out[name] = value
    out["Content-Length"] = str(len(payload))
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    return Response(status, reason, out, payload)
