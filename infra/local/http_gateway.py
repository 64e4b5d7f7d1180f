"""Local stand-in for API Gateway REST (v1 proxy) + Lambda: serves a Chalice app in-process over HTTP/1.1."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import socket
import threading
import time
import uuid
import zlib
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import TCPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

import chalice
from chalice.local import LambdaContext

if TYPE_CHECKING:
    from infra.local.maintenance import Gate

LOG = logging.getLogger("race.gateway.http")

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
CHALICE_CONFIG = Path(__file__).resolve().parents[2] / ".chalice" / "config.json"
LAMBDA_MEMORY_MB = 128  # Chalice's default lambda_memory_size
LAMBDA_TIMEOUT_S = 60  # Chalice's default lambda_timeout
LAMBDA_TIMEOUT_MS: int | None = None  # overrides the configured timeout (the fault tests shorten it)
ACCOUNT_ID = "123456789012"
IDLE_TIMEOUT_S = 120.0
_SINGLE_SEND_MAX = 256 * 1024
_SKIPPED_RESPONSE_HEADERS = frozenset({"content-length", "connection", "transfer-encoding", "keep-alive"})
_CHALICE_500_BODY = b'{"Code":"InternalServerError","Message":"An internal server error occurred."}'
_IDENTITY_NONE_KEYS = (
    "cognitoIdentityPoolId", "accountId", "cognitoIdentityId", "caller", "principalOrgId", "accessKey",
    "cognitoAuthenticationType", "cognitoAuthenticationProvider", "userArn", "user",
)  # fmt: skip

Headers = list[tuple[str, str]]


def error_body(code: str, message: str) -> bytes:
    """The platform's error shape as JSON bytes."""
    return json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":")).encode()


class _Reject(Exception):
    """The gateway itself answers the request with a platform-shaped error."""

    def __init__(self, status: int, code: str, message: str, headers: Headers | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or []


class _ClientGone(Exception):
    """The client closed the connection before sending the whole request."""


class _Node:
    __slots__ = ("children", "param", "template")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.param: _Node | None = None
        self.template: str | None = None


def _segments(path: str) -> list[str]:
    # API Gateway drops a trailing slash on any path but the root.
    if path.endswith("/"):
        path = path[:-1]
    return path[1:].split("/") if path else []


class Router:
    """Matches a request path to a Chalice route template; literal segments win over `{param}` ones."""

    def __init__(self, templates: list[str]) -> None:
        self._root = _Node()
        self._names: dict[str, list[str]] = {}
        for template in templates:
            node = self._root
            names = []
            for seg in _segments(template):
                if seg.startswith("{") and seg.endswith("}"):
                    names.append(seg[1:-1])
                    node.param = node.param or _Node()
                    node = node.param
                else:
                    node = node.children.setdefault(seg, _Node())
            node.template = template
            self._names[template] = names

    def match(self, raw_path: str) -> tuple[str, dict[str, str] | None] | None:
        """(template, decoded path parameters or None when the template has none), or None."""
        if not raw_path.startswith("/"):
            return None
        segs = _segments(raw_path)
        if "%" in raw_path:
            segs = [unquote(seg) for seg in segs]
        values: list[str] = []
        node = self._walk(self._root, segs, 0, values)
        if node is None or node.template is None:
            return None
        names = self._names[node.template]
        return node.template, (dict(zip(names, values, strict=True)) if names else None)

    def _walk(self, node: _Node, segs: list[str], i: int, values: list[str]) -> _Node | None:
        if i == len(segs):
            return node if node.template is not None else None
        child = node.children.get(segs[i])
        if child is not None:
            found = self._walk(child, segs, i + 1, values)
            if found is not None:
                return found
        if node.param is not None and segs[i]:
            values.append(segs[i])
            found = self._walk(node.param, segs, i + 1, values)
            if found is not None:
                return found
            values.pop()
        return None


class _PerThreadRequestState:
    """Mixed into the app's class: Chalice keeps current_request/lambda_context on the app object,
    which concurrent requests on a threaded server would otherwise overwrite for each other."""

    @property
    def current_request(self) -> Any:
        return getattr(self.__dict__["_gateway_tls"], "current_request", None)

    @current_request.setter
    def current_request(self, value: Any) -> None:
        self.__dict__["_gateway_tls"].current_request = value

    @property
    def lambda_context(self) -> Any:
        return getattr(self.__dict__["_gateway_tls"], "lambda_context", None)

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self.__dict__["_gateway_tls"].lambda_context = value


_patched_classes: dict[type, type] = {}
_patch_lock = threading.Lock()


def _isolate_request_state(app: chalice.Chalice) -> None:
    """Give the app per-thread request state, as `chalice local` does (it swaps the class too)."""
    with _patch_lock:
        if isinstance(app, _PerThreadRequestState):
            return
        base = type(app)
        patched = _patched_classes.get(base)
        if patched is None:
            patched = type(f"Gateway{base.__name__}", (_PerThreadRequestState, base), {})
            _patched_classes[base] = patched
        app.__dict__["_gateway_tls"] = threading.local()
        app.__class__ = patched


def _is_binary(content_type: str, binary_types: list[str]) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    if not media:
        return False
    for kind in binary_types:
        kind = kind.lower()
        if kind in (media, "*/*") or (kind.endswith("/*") and media.startswith(kind[:-1])):
            return True
    return False


def lambda_limits(stage: str, config_path: Path = CHALICE_CONFIG) -> tuple[int, int]:
    """(memory MB, timeout ms) of the API function in `stage`, as `chalice deploy` would configure it."""
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        config = {}
    stage_config = config.get("stages", {}).get(stage, {})

    def setting(name: str, default: int) -> int:
        return int(stage_config.get(name, config.get(name, default)))

    return setting("lambda_memory_size", LAMBDA_MEMORY_MB), setting("lambda_timeout", LAMBDA_TIMEOUT_S) * 1000


class HttpGateway(ThreadingHTTPServer):
    """A threaded HTTP/1.1 server that turns requests into API Gateway proxy events for a Chalice app."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        app: chalice.Chalice,
        host: str = "127.0.0.1",
        port: int = 8000,
        stage: str = "local",
        listener: socket.socket | None = None,
    ):
        self.app = app
        self.stage = stage
        self.function_name = f"{app.app_name}-{stage}"
        self.function_arn = f"arn:aws:lambda:local:{ACCOUNT_ID}:function:{self.function_name}"
        # The context's remaining time is what the deployed function would have (.chalice/config.json).
        self.memory_mb, self.timeout_ms = lambda_limits(stage)
        self.timeout_ms = LAMBDA_TIMEOUT_MS or self.timeout_ms
        self.thread: threading.Thread | None = None
        self.closing = False
        _isolate_request_state(app)
        self._route_count = len(app.routes)
        self._router = Router(list(app.routes))
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._serving = threading.Event()
        self._stopped = False
        self.gate: Gate | None = None  # set by the stack: closed while a restore swaps the database
        super().__init__((host, port), _Handler, bind_and_activate=listener is None)
        if listener is not None:
            # A listening socket shared with other API processes (infra/local/api_process.py): whichever
            # is free accepts; the others' accept finds nothing (non-blocking) and goes back to waiting.
            self.socket.close()
            listener.setblocking(False)
            self.socket = listener
            self.server_address = listener.getsockname()
            self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) we do not need.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]!s}:{self.port}"

    def router(self) -> Router:
        """The route table, rebuilt if routes were registered after the server was made."""
        if len(self.app.routes) != self._route_count:
            with self._lock:
                self._route_count = len(self.app.routes)
                self._router = Router(list(self.app.routes))
        return self._router

    def serve_forever(self, poll_interval: float = 0.05) -> None:
        with self._lock:
            if self._stopped:
                return
            self._serving.set()
        super().serve_forever(poll_interval)

    def start_serving_thread(self) -> None:
        """serve_forever in a daemon thread; returns once serving."""
        self.thread = threading.Thread(target=self.serve_forever, name=f"http-gateway:{self.port}", daemon=True)
        self.thread.start()
        self.wait_serving()

    def wait_serving(self, timeout_s: float = 10.0) -> bool:
        return self._serving.wait(timeout_s)

    def shutdown(self) -> None:
        """Stop serve_forever (call from another thread); returns at once if it never started."""
        with self._lock:
            self._stopped = True
            serving = self._serving.is_set()
        if serving:
            super().shutdown()

    def server_close(self) -> None:
        """Close the listening socket and end idle keep-alive connections (in-flight ones finish)."""
        self.closing = True
        super().server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RD)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT_S
    server: HttpGateway
    _started = 0.0

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, alive=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, alive=False)

    def parse_request(self) -> bool:
        self._started = time.perf_counter()
        if not super().parse_request():
            return False
        if not hasattr(self, "do_" + self.command):  # TRACE, QUERY...: 404/405 by the route table, not the stdlib's 501
            setattr(self, "do_" + self.command, self._dispatch)
        return True

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the stdlib line holds the query string; `_respond` logs instead."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed requests (bad request line, header limits, unknown methods) in the platform shape."""
        self.close_connection = True
        status = HTTPStatus(code)
        code_name = status.phrase.lower().replace(" ", "_").replace("-", "_")
        self._respond(code, [("Content-Type", "application/json")], error_body(code_name, status.phrase))

    def handle_expect_100(self) -> bool:
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            self._reject(_Reject(413, "payload_too_large", f"request body exceeds {MAX_BODY_BYTES} bytes"))
            return False
        return super().handle_expect_100()

    def _dispatch(self) -> None:
        target = self.path
        if not target.startswith("/") and "://" in target:
            parts = urlsplit(target)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        raw_path, _, query = target.partition("?")
        try:
            body = self._read_body()
            self._invoke(raw_path, query, body)
        except _ClientGone:
            self.close_connection = True
        except _Reject as reject:
            self._reject(reject)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def _read_body(self) -> bytes:
        encoding = self.headers.get("Transfer-Encoding")
        if encoding is not None:
            if encoding.strip().lower() != "chunked":
                self.close_connection = True
                raise _Reject(501, "not_implemented", f"Transfer-Encoding {encoding!r} is not supported")
            return self._read_chunked()
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        if not length_text.strip().isdigit():
            self.close_connection = True
            raise _Reject(400, "bad_request", "Content-Length is not a number")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body makes the connection unusable
            raise _Reject(413, "payload_too_large", f"request body exceeds {MAX_BODY_BYTES} bytes")
        data = self.rfile.read(length) if length else b""
        if len(data) < length:
            raise _ClientGone
        return data

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1026)
            if not line:
                raise _ClientGone
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                size = -1
            if size < 0:
                self.close_connection = True
                raise _Reject(400, "bad_request", "malformed chunked body")
            if size == 0:
                break
            total += size
            if total > MAX_BODY_BYTES:
                self.close_connection = True
                raise _Reject(413, "payload_too_large", f"request body exceeds {MAX_BODY_BYTES} bytes")
            chunk = self.rfile.read(size + 2)
            if len(chunk) < size + 2:
                raise _ClientGone
            parts.append(chunk[:size])
        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
            pass  # trailers are dropped, as API Gateway does
        return b"".join(parts)

    def _invoke(self, raw_path: str, query: str, body: bytes) -> None:
        method = self.command
        app = self.server.app
        matched = self.server.router().match(raw_path)
        if matched is None:
            raise _Reject(404, "not_found", f"no route for {method} {raw_path}")
        template, path_params = matched
        views = app.routes[template]
        if method not in views:
            cors_methods = [name for name, view in views.items() if view.cors is not None]
            if method == "OPTIONS" and cors_methods:
                self._preflight(views[cors_methods[0]].cors, cors_methods)
                return
            allowed = list(views) + (["OPTIONS"] if cors_methods else [])
            raise _Reject(
                405,
                "method_not_allowed",
                f"{method} is not allowed on {template}",
                [("Allow", ", ".join(allowed))],
            )
        request_id = str(uuid.uuid4())
        event = self._event(method, raw_path, query, template, path_params, body, request_id)
        context = LambdaContext(self.server.function_name, self.server.memory_mb, self.server.timeout_ms)
        context.invoked_function_arn = self.server.function_arn
        try:
            status, headers, out = self._call_app(event, context)
        except _Reject:
            raise
        except Exception:
            LOG.exception("handler for %s %s crashed", method, template)
            status, headers, out = 500, [], _CHALICE_500_BODY
        if status == 500 and out == _CHALICE_500_BODY:
            # Chalice's own answer to an unhandled exception, in the platform's shape instead.
            headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
            out = error_body("internal", "internal error")
        self._respond(status, headers, out, request_id)

    def _call_app(self, event: dict[str, Any], context: LambdaContext) -> tuple[int, Headers, bytes]:
        gate = self.server.gate
        if gate is None:
            return _decode_response(self.server.app(event, context))
        with gate.admit() as admitted:
            if not admitted:
                raise _Reject(
                    503,
                    "maintenance",
                    "the database is being restored; try again in a moment",
                    [("Retry-After", "5")],
                )
            return _decode_response(self.server.app(event, context))

    def _event(
        self,
        method: str,
        raw_path: str,
        query: str,
        template: str,
        path_params: dict[str, str] | None,
        body: bytes,
        request_id: str,
    ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            headers[name] = value
            multi_headers.setdefault(name, []).append(value)
        query_single: dict[str, str] | None = None
        query_multi: dict[str, list[str]] | None = None
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if pairs:
                query_single, query_multi = {}, {}
                for key, value in pairs:
                    query_single[key] = value
                    query_multi.setdefault(key, []).append(value)
        event_body: str | None = None
        is_base64 = False
        if body:
            if _is_binary(self.headers.get("Content-Type", ""), self.server.app.api.binary_types):
                event_body, is_base64 = base64.b64encode(body).decode("ascii"), True
            else:
                try:
                    event_body = body.decode("utf-8")
                except UnicodeDecodeError:
                    event_body, is_base64 = base64.b64encode(body).decode("ascii"), True
        now = time.time()
        host = self.headers.get("Host", self.server.url.split("//", 1)[1])
        identity: dict[str, Any] = dict.fromkeys(_IDENTITY_NONE_KEYS)
        identity["sourceIp"] = self.client_address[0]
        identity["userAgent"] = self.headers.get("User-Agent")
        return {
            "resource": template,
            "path": raw_path,
            "httpMethod": method,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": query_single,
            "multiValueQueryStringParameters": query_multi,
            "pathParameters": path_params,
            "stageVariables": None,
            "requestContext": {
                "resourceId": format(zlib.crc32(template.encode()) & 0xFFFFFF, "06x"),
                "resourcePath": template,
                "httpMethod": method,
                "extendedRequestId": request_id,
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "path": raw_path,
                "accountId": ACCOUNT_ID,
                "protocol": self.request_version,
                "stage": self.server.stage,
                "domainPrefix": host.split(".", 1)[0],
                "requestTimeEpoch": int(now * 1000),
                "requestId": request_id,
                "identity": identity,
                "domainName": host,
                "apiId": "local",
            },
            "body": event_body,
            "isBase64Encoded": is_base64,
        }

    def _preflight(self, cors: chalice.CORSConfig, cors_methods: list[str]) -> None:
        headers = list(cors.get_access_control_headers().items())
        headers.append(("Access-Control-Allow-Methods", ",".join([*cors_methods, "OPTIONS"])))
        headers.append(("Content-Type", "application/json"))
        self._respond(200, headers, b"")

    def _reject(self, reject: _Reject) -> None:
        # As the deployed API's DEFAULT_4XX/5XX gateway responses do: browsers can read these errors.
        headers = [*reject.headers, ("Content-Type", "application/json"), ("Access-Control-Allow-Origin", "*")]
        self._respond(reject.status, headers, error_body(reject.code, reject.message))

    def _respond(self, status: int, headers: Headers, body: bytes, request_id: str | None = None) -> None:
        """Write status line, headers and body in one send (two for large bodies) and log one line."""
        if self.server.closing:
            self.close_connection = True
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        lines = [f"HTTP/1.1 {status} {phrase}"]
        has_type = False
        for name, value in headers:
            lower = name.lower()
            if lower in _SKIPPED_RESPONSE_HEADERS or "\n" in value or "\r" in value or "\n" in name:
                continue
            has_type = has_type or lower == "content-type"
            lines.append(f"{name}: {value}")
        if status in (204, 304):
            body = b""
        else:
            if not has_type:
                lines.append("Content-Type: application/json")
            lines.append(f"Content-Length: {len(body)}")
        lines.append(f"Date: {formatdate(usegmt=True)}")
        lines.append(f"x-amzn-RequestId: {request_id or uuid.uuid4()}")
        if self.close_connection:
            lines.append("Connection: close")
        elif self.request_version == "HTTP/1.0":
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        if getattr(self, "command", None) == "HEAD":
            body = b""
        if len(body) <= _SINGLE_SEND_MAX:
            self.wfile.write(head + body)
        else:
            self.wfile.write(head)
            self.wfile.write(body)
        path = (getattr(self, "path", None) or "-").split("?", 1)[0]
        elapsed_ms = (time.perf_counter() - self._started) * 1000 if self._started else 0.0
        LOG.info("%s %s %d %.1fms", getattr(self, "command", None) or "-", path, status, elapsed_ms)
        self._started = 0.0


def _decode_response(response: dict[str, Any]) -> tuple[int, Headers, bytes]:
    """Status, headers and body bytes from a Lambda proxy response, the way API Gateway reads it."""
    status = int(response["statusCode"])
    if not 200 <= status <= 599:
        raise ValueError(f"statusCode {status} out of range")
    multi = {str(k).lower(): (str(k), v) for k, v in (response.get("multiValueHeaders") or {}).items()}
    headers: Headers = [
        (str(k), str(v)) for k, v in (response.get("headers") or {}).items() if str(k).lower() not in multi
    ]
    for name, values in multi.values():
        headers.extend((name, str(v)) for v in values)
    body = response.get("body")
    if body is None:
        out = b""
    elif response.get("isBase64Encoded"):
        out = base64.b64decode(body)
    elif isinstance(body, bytes):
        out = body
    else:
        out = str(body).encode("utf-8")
    return status, headers, out


def make_server(app: chalice.Chalice, host: str = "127.0.0.1", port: int = 8000, stage: str = "local") -> HttpGateway:
    """A bound, listening gateway for `app` (not yet serving). The app's class is swapped for a
    subclass with per-thread `current_request`, as `chalice local` does."""
    return HttpGateway(app, host, port, stage)


def start_in_thread(
    app: chalice.Chalice, host: str = "127.0.0.1", port: int = 8000, stage: str = "local"
) -> HttpGateway:
    """make_server + serve_forever in a daemon thread; returns once serving.

    Stop it with shutdown() then server_close()."""
    server = make_server(app, host, port, stage)
    server.start_serving_thread()
    return server
