#!/usr/bin/env python3
"""Race Platform smoke test: is the stack alive?

Checks six paths against a running stack and prints one line per step,
``PASS <n>/6 <description>`` or ``FAIL <n>/6 <description> -- <reason>``. A failing step
also prints its request and response (secrets redacted) and a curl command to re-run it.

Standard library only (the WebSocket client is a minimal RFC 6455 implementation), so it runs
with any python3 >= 3.8, in or out of the project's virtualenv. Entry point: tools/smoke-test.sh.

Exit status: 0 all six steps passed, 1 a step failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import http.client
import json
import os
import shlex
import socket
import ssl
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TOTAL = 6
BODY_LIMIT = 2048  # bytes of a response body shown on failure
MAX_BODY = 8 * 1024 * 1024  # bytes read from any response at most
MAX_WS_MESSAGE = 8 * 1024 * 1024
MAX_EVENT_PAGES = 20
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
USER_AGENT = "race-platform-smoke-test/1"
HEADERS_OF_INTEREST = (
    "content-type",
    "content-length",
    "location",
    "www-authenticate",
    "retry-after",
    "upgrade",
    "connection",
    "sec-websocket-accept",
    "x-request-id",
    "x-amzn-requestid",
    "x-amzn-errortype",
    "x-amz-apigw-id",
    "server",
)

DEFAULTS = {
    "API_URL": "http://127.0.0.1:8000",
    "WS_URL": "ws://127.0.0.1:8001",
    "SMOKE_EMAIL": "jamie@apexracing.io",
    "SMOKE_PASSWORD": "sebring12h",
    "SMOKE_TIMEOUT": "5",
}

HELP_EPILOG = f"""\
environment variables:
  API_URL         base URL of the HTTP API (default {DEFAULTS["API_URL"]}); may carry a
                  path prefix, e.g. an API Gateway stage: https://abc.execute-api.../api
  WS_URL          WebSocket gateway URL, ws:// or wss:// (default {DEFAULTS["WS_URL"]});
                  the script connects to WS_URL/?token=<JWT>
  SMOKE_EMAIL     login used by the smoke test (default {DEFAULTS["SMOKE_EMAIL"]})
  SMOKE_PASSWORD  its password (default: $SEED_PASSWORD, else {DEFAULTS["SMOKE_PASSWORD"]})
  SEED_PASSWORD   the seeded demo password, used when SMOKE_PASSWORD is unset
  SMOKE_TIMEOUT   seconds each HTTP call, the WebSocket connect and the wait for
                  "joined" may take (default {DEFAULTS["SMOKE_TIMEOUT"]})

steps:
  1/6  GET  /health                 -> 200, {{"status": "ok"}}
  2/6  POST /auth/login             -> 200, {{"token": "<JWT>"}}
  3/6  GET  /events                 -> an event whose name contains "Sebring"
  4/6  GET  /run-sheets             -> at least one run sheet
  5/6  GET  /laps                   -> at least one lap
  6/6  WebSocket WS_URL/?token=<JWT>, {{"action": "join", "sessionId": <Sebring's first
       session from GET /sessions?eventId=...>}} -> {{"type": "joined"}} for that session

A failing step prints its request and response (password shown as ***, the token as
<redacted>) and a curl command to re-run it with $TOKEN / $SMOKE_PASSWORD placeholders.

exit status: 0 all six passed, 1 at least one failed, 2 usage error.
"""


class UsageError(Exception):
    """Bad configuration: exit status 2."""


# --------------------------------------------------------------------------- configuration


@dataclass
class Config:
    api_url: str
    ws_url: str
    email: str
    password: str
    timeout: float


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        allowed = " or ".join(f"{s}://" for s in schemes)
        raise UsageError(f"{name} must be an {allowed} URL with a host, got {value!r}")
    try:
        _ = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise UsageError(f"{name} has a bad port: {value!r} ({exc})") from None
    return value


def load_config(env: dict[str, str]) -> Config:
    def get(name: str) -> str:
        return env.get(name) or DEFAULTS[name]

    password = env.get("SMOKE_PASSWORD") or env.get("SEED_PASSWORD") or DEFAULTS["SMOKE_PASSWORD"]
    raw_timeout = get("SMOKE_TIMEOUT")
    try:
        timeout = float(raw_timeout)
    except ValueError:
        raise UsageError(f"SMOKE_TIMEOUT must be a number of seconds, got {raw_timeout!r}") from None
    if not 0 < timeout <= 600:
        raise UsageError(f"SMOKE_TIMEOUT must be > 0 and <= 600 seconds, got {raw_timeout!r}")
    return Config(
        api_url=_check_url("API_URL", get("API_URL"), ("http", "https")).rstrip("/"),
        ws_url=_check_url("WS_URL", get("WS_URL"), ("ws", "wss")),
        email=get("SMOKE_EMAIL"),
        password=password,
        timeout=timeout,
    )


# --------------------------------------------------------------------------- output


class Redactor:
    """Replaces every known secret (and its JSON-escaped form) in text before it is printed."""

    def __init__(self) -> None:
        self._pairs: list[tuple[str, str]] = []

    def add(self, secret: str | None, label: str) -> None:
        if not secret:
            return
        forms = {secret, json.dumps(secret)[1:-1], urllib.parse.quote(secret, safe="")}
        for form in forms:
            if form and (form, label) not in self._pairs:
                self._pairs.append((form, label))
        self._pairs.sort(key=lambda pair: len(pair[0]), reverse=True)

    def __call__(self, text: str) -> str:
        for secret, label in self._pairs:
            text = text.replace(secret, label)
        return text


class Output:
    def __init__(self, redact: Redactor, stream: Any = None) -> None:
        self.redact = redact
        self.stream = stream or sys.stdout

    def line(self, text: str = "") -> None:
        self.stream.write(self.redact(text) + "\n")
        self.stream.flush()


def shell_word(*segments: str) -> str:
    """One shell word from literal segments and ``$VAR`` segments (those starting with "$").

    Variables stay expandable, literals are quoted: ``-H "Authorization: Bearer $TOKEN"``.
    """

    def var(i: int) -> str:
        name = segments[i][1:]
        following = segments[i + 1] if i + 1 < len(segments) else ""
        return "${" + name + "}" if following[:1].isalnum() or following[:1] == "_" else "$" + name

    literals = [s for s in segments if not s.startswith("$")]
    if all(not set(s) & set('$`"\\!') for s in literals):
        return '"' + "".join(var(i) if s.startswith("$") else s for i, s in enumerate(segments)) + '"'
    return "".join('"' + var(i) + '"' if s.startswith("$") else shlex.quote(s) for i, s in enumerate(segments) if s)


# --------------------------------------------------------------------------- HTTP


@dataclass
class Request:
    method: str
    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    shown_body: str | None = None  # body as displayed (secrets replaced)
    curl: str = ""  # re-runnable command with placeholders
    needs_token: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    extra: list[str] = field(default_factory=list)  # e.g. WebSocket messages received


class StepFailed(Exception):
    def __init__(
        self,
        reason: str,
        request: Request | None = None,
        response: Response | None = None,
        unreachable: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.request = request
        self.response = response
        self.unreachable = unreachable


def describe_net_error(exc: BaseException, url: str, timeout: float) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    default_port = 443 if parts.scheme in ("https", "wss") else 80
    where = f"{host}:{parts.port or default_port}"
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing listens on {where} (connection refused)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host {host!r} ({exc.strerror or exc})"
    if isinstance(exc, TimeoutError):
        return f"no answer from {where} within {timeout:g} s (SMOKE_TIMEOUT)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate of {where} not trusted: {exc.verify_message or exc}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error talking to {where}: {exc}"
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return f"{where} closed the connection before answering ({type(exc).__name__})"
    if isinstance(exc, http.client.HTTPException):
        return f"{where} sent no valid HTTP response ({type(exc).__name__}: {exc})"
    if isinstance(exc, OSError):
        return f"network error talking to {where}: {exc.strerror or exc}"
    return f"error talking to {where}: {exc!r}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Report a redirect as the response it is instead of silently following it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Http:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.token: str | None = None
        self._opener = urllib.request.build_opener(_NoRedirect())

    def url(self, path: str, query: dict[str, str] | None = None) -> str:
        url = self.cfg.api_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        return url

    def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        shown_body: str | None = None,
        curl_body: tuple[str, ...] = (),
        auth: bool = False,
    ) -> tuple[Request, Response]:
        url = self.url(path, query)
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        shown_headers: list[tuple[str, str]] = []
        curl = ["curl", "-sS", "-i", "--max-time", f"{self.cfg.timeout:g}"]
        if method != "GET":
            curl += ["-X", method]
        curl.append(shlex.quote(url))
        data = None
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
            shown_headers.append(("Authorization", "Bearer <redacted>"))
            curl += ["-H", shell_word("Authorization: Bearer ", "$TOKEN")]
        if json_body is not None:
            data = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
            shown_headers.append(("Content-Type", "application/json"))
            curl += ["-H", shlex.quote("Content-Type: application/json")]
            curl += ["--data", shell_word(*curl_body) if curl_body else shlex.quote(shown_body or "")]
        req = Request(
            method=method,
            url=url,
            headers=shown_headers,
            shown_body=shown_body,
            curl=" ".join(curl),
            needs_token=auth,
        )
        raw = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._opener.open(raw, timeout=self.cfg.timeout) as resp:
                body = resp.read(MAX_BODY)
                return req, Response(resp.status, resp.reason or "", list(resp.headers.items()), body)
        except urllib.error.HTTPError as err:
            try:
                body = err.read(MAX_BODY)
            except Exception:  # the status is what matters; the body is a bonus
                body = b""
            headers_list = list(err.headers.items()) if err.headers else []
            return req, Response(err.code, str(err.reason or ""), headers_list, body)
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            reason = describe_net_error(exc, url, self.cfg.timeout)
            raise StepFailed(reason, req, None, unreachable=True) from None


def expect_json(req: Request, resp: Response, status: int = 200) -> Any:
    if resp.status != status:
        raise StepFailed(f"HTTP {resp.status} {resp.reason}".rstrip() + f", expected {status}", req, resp)
    try:
        return json.loads(resp.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        ctype = dict((k.lower(), v) for k, v in resp.headers).get("content-type", "no Content-Type")
        raise StepFailed(f"response body is not JSON ({ctype})", req, resp) from None


def expect_items(req: Request, resp: Response) -> tuple[list[Any], Any]:
    data = expect_json(req, resp)
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise StepFailed('expected a list answer {"items": [...], "nextCursor": ...}', req, resp)
    return data["items"], data.get("nextCursor")


# --------------------------------------------------------------------------- WebSocket (RFC 6455)


class WsClient:
    """A minimal WebSocket client: handshake, masked text frames out, frames in."""

    def __init__(self, sock: socket.socket, buffered: bytes, timeout: float) -> None:
        self.sock = sock
        self.buf = buffered
        self.timeout = timeout

    @staticmethod
    def connect(url: str, timeout: float) -> WsClient:
        """Open and upgrade; raises StepFailed (with the HTTP response) if the upgrade is refused."""
        parts = urllib.parse.urlsplit(url)
        secure = parts.scheme == "wss"
        host = parts.hostname or ""
        port = parts.port or (443 if secure else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = f"[{host}]" if ":" in host else host
        if parts.port and parts.port != (443 if secure else 80):
            host_header += f":{port}"
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        deadline = time.monotonic() + timeout
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            if secure:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            request = (
                f"GET {target} HTTP/1.1\r\n"
                f"Host: {host_header}\r\n"
                "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n"
                f"User-Agent: {USER_AGENT}\r\n"
                "\r\n"
            )
            sock.sendall(request.encode("latin-1"))
            client = WsClient(sock, b"", timeout)
            head = client._read_until(b"\r\n\r\n", deadline, limit=65536)
            status, reason, headers = _parse_head(head)
            if status != 101:
                body = client._drain_body(headers, deadline)
                raise StepFailed(
                    f"WebSocket upgrade refused: HTTP {status} {reason}".rstrip(),
                    response=Response(status, reason, headers, body),
                )
            lower = {k.lower(): v for k, v in headers}
            accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            if lower.get("upgrade", "").lower() != "websocket":
                raise StepFailed("HTTP 101 without 'Upgrade: websocket'", response=Response(status, reason, headers))
            if lower.get("sec-websocket-accept", "").strip() != accept:
                raise StepFailed(
                    "HTTP 101 with a wrong Sec-WebSocket-Accept", response=Response(status, reason, headers)
                )
            return client
        except BaseException:
            sock.close()
            raise

    # -- reading
    def _recv_some(self, deadline: float) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("connection closed")
        return chunk

    def _read_until(self, marker: bytes, deadline: float, limit: int) -> bytes:
        while marker not in self.buf:
            if len(self.buf) > limit:
                raise StepFailed(f"no end of HTTP headers within {limit} bytes")
            self.buf += self._recv_some(deadline)
        head, self.buf = self.buf.split(marker, 1)
        return head

    def _read_exact(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            self.buf += self._recv_some(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _drain_body(self, headers: list[tuple[str, str]], deadline: float) -> bytes:
        """Best effort: the refusal's body, up to BODY_LIMIT bytes, without waiting long."""
        lower = {k.lower(): v for k, v in headers}
        try:
            want = int(lower.get("content-length", "-1"))
        except ValueError:
            want = -1
        limit = BODY_LIMIT + 1 if want < 0 else min(want, BODY_LIMIT + 1)
        short = min(deadline, time.monotonic() + 1.0)
        try:
            while len(self.buf) < limit:
                self.buf += self._recv_some(short)
        except (OSError, TimeoutError):
            pass
        return self.buf[: max(limit, 0)]

    def recv_frame(self, deadline: float) -> tuple[bool, int, bytes]:
        b1, b2 = self._read_exact(2, deadline)
        fin, opcode = bool(b1 & 0x80), b1 & 0x0F
        masked, length = bool(b2 & 0x80), b2 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read_exact(2, deadline))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read_exact(8, deadline))
        if length > MAX_WS_MESSAGE:
            raise StepFailed(f"server sent a {length}-byte WebSocket frame (limit {MAX_WS_MESSAGE})")
        mask = self._read_exact(4, deadline) if masked else b""
        payload = self._read_exact(length, deadline)
        if masked:  # servers must not mask; tolerate it anyway
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return fin, opcode, payload

    def recv_message(self, deadline: float) -> tuple[int, bytes]:
        """The next text/binary message; answers pings; a close frame raises StepFailed."""
        message_opcode, parts = None, []
        while True:
            fin, opcode, payload = self.recv_frame(deadline)
            if opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                why = payload[2:].decode("utf-8", "replace")
                raise StepFailed(f"server closed the WebSocket (code {code}{', ' + why if why else ''})")
            if opcode == 0x9:
                self.send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            if opcode in (0x1, 0x2):
                message_opcode, parts = opcode, [payload]
            elif opcode == 0x0 and message_opcode is not None:
                parts.append(payload)
            else:
                raise StepFailed(f"unexpected WebSocket frame opcode {opcode:#x}")
            if sum(len(p) for p in parts) > MAX_WS_MESSAGE:
                raise StepFailed(f"WebSocket message larger than {MAX_WS_MESSAGE} bytes")
            if fin:
                return message_opcode, b"".join(parts)

    # -- writing
    def send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.settimeout(self.timeout)
        self.sock.sendall(header + mask + masked)

    def send_text(self, text: str) -> None:
        self.send_frame(0x1, text.encode("utf-8"))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.send_frame(0x8, struct.pack("!H", 1000))
        with contextlib.suppress(OSError):
            self.sock.close()


def _parse_head(head: bytes) -> tuple[int, str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/") or not status_line[1].isdigit():
        raise StepFailed(f"not an HTTP response to the WebSocket upgrade: {lines[0][:100]!r}")
    headers = []
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers.append((name.strip(), value.strip()))
    return int(status_line[1]), status_line[2] if len(status_line) > 2 else "", headers


def with_query(url: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urllib.parse.urlencode(params)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))


# --------------------------------------------------------------------------- the steps


@dataclass
class Context:
    cfg: Config
    http: Http
    redact: Redactor
    event_id: str | None = None


def step_health(ctx: Context) -> None:
    req, resp = ctx.http.call("GET", "/health")
    data = expect_json(req, resp)
    if not isinstance(data, dict) or data.get("status") != "ok":
        raise StepFailed('expected {"status": "ok"}', req, resp)


def step_login(ctx: Context) -> None:
    cfg = ctx.cfg
    marker = "\x00PASSWORD\x00"
    template = json.dumps({"email": cfg.email, "password": marker}, separators=(",", ":"))
    before, after = template.split(json.dumps(marker)[1:-1])
    req, resp = ctx.http.call(
        "POST",
        "/auth/login",
        json_body={"email": cfg.email, "password": cfg.password},
        shown_body=json.dumps({"email": cfg.email, "password": "***"}),
        curl_body=(before, "$SMOKE_PASSWORD", after),
    )
    req.notes.append("the re-run below reads the password from $SMOKE_PASSWORD")
    data = expect_json(req, resp)
    token = data.get("token") if isinstance(data, dict) else None
    if isinstance(token, str):
        ctx.redact.add(token, "<redacted>")
    if not isinstance(token, str) or not token:
        raise StepFailed('expected {"token": "<JWT>", ...}', req, resp)
    segments = token.split(".")
    if len(segments) != 3 or not all(segments[:2]):
        raise StepFailed(f"token is not a JWT (expected 3 dot-separated parts, got {len(segments)})", req, resp)
    ctx.http.token = token


def _name_of(item: Any) -> str:
    if isinstance(item, dict):
        name = item.get("name") or item.get("title") or ""
        return name if isinstance(name, str) else ""
    return ""


def step_events(ctx: Context) -> None:
    query: dict[str, str] = {}
    seen: list[str] = []
    for _page in range(MAX_EVENT_PAGES):
        req, resp = ctx.http.call("GET", "/events", query=query or None, auth=True)
        items, cursor = expect_items(req, resp)
        for item in items:
            name = _name_of(item)
            if "sebring" in name.lower():
                event_id = item.get("id")
                if not isinstance(event_id, str) or not event_id:
                    raise StepFailed(f"event {name!r} has no id", req, resp)
                ctx.event_id = event_id
                return
            seen.append(name or "<unnamed>")
        if not cursor:
            break
        query = {"cursor": str(cursor)}
    names = ", ".join(repr(n) for n in seen[:10]) + (" ..." if len(seen) > 10 else "")
    raise StepFailed(
        f"no event whose name contains 'Sebring' among {len(seen)} event(s)" + (f": {names}" if seen else ""),
        req,
        resp,
    )


def _step_non_empty(ctx: Context, path: str, what: str) -> None:
    req, resp = ctx.http.call("GET", path, auth=True)
    items, _cursor = expect_items(req, resp)
    if not items:
        raise StepFailed(f"no {what}: items is empty (was the stack seeded? make seed)", req, resp)


def step_run_sheets(ctx: Context) -> None:
    _step_non_empty(ctx, "/run-sheets", "run sheets")


def step_laps(ctx: Context) -> None:
    _step_non_empty(ctx, "/laps", "laps")


def step_websocket(ctx: Context) -> None:
    cfg = ctx.cfg
    req, resp = ctx.http.call("GET", "/sessions", query={"eventId": ctx.event_id or ""}, auth=True)
    items, _cursor = expect_items(req, resp)
    if not items:
        raise StepFailed("the Sebring event has no sessions to join", req, resp)
    session_id = items[0].get("id") if isinstance(items[0], dict) else None
    if not isinstance(session_id, str) or not session_id:
        raise StepFailed("the first session has no id", req, resp)

    token = ctx.http.token or ""
    url = with_query(cfg.ws_url, token=token)
    join = json.dumps({"action": "join", "sessionId": session_id})
    shown = with_query(cfg.ws_url, token="") + "<redacted>"
    http_url = with_query(cfg.ws_url.replace("ws", "http", 1), token="")
    demo_key = base64.b64encode(b"race-smoke-test!").decode()
    curl = " ".join(
        [
            "curl -sS -i -N --http1.1",
            f"--max-time {cfg.timeout:g}",
            "-H 'Connection: Upgrade' -H 'Upgrade: websocket'",
            f"-H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: {demo_key}'",
            shell_word(http_url, "$TOKEN"),
        ]
    )
    ws_req = Request(
        "GET",
        f"{shown}  (WebSocket upgrade)",
        [("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")],
        None,
        curl,
        needs_token=True,
        notes=[f"after the upgrade the script sends: {join}"],
    )
    try:
        client = WsClient.connect(url, cfg.timeout)
    except StepFailed as exc:
        exc.request = ws_req
        raise
    except (OSError, ssl.SSLError, TimeoutError) as exc:
        raise StepFailed(describe_net_error(exc, cfg.ws_url, cfg.timeout), ws_req) from None
    received: list[str] = []
    ws_resp = Response(101, "Switching Protocols", [], b"", received)
    try:
        client.send_text(join)
        deadline = time.monotonic() + cfg.timeout
        while True:
            try:
                _opcode, payload = client.recv_message(deadline)
            except TimeoutError:
                raise StepFailed(
                    f"no 'joined' for session {session_id} within {cfg.timeout:g} s "
                    f"({len(received)} other message(s) received)",
                    ws_req,
                    ws_resp,
                ) from None
            text = payload.decode("utf-8", "replace")
            received.append(text if len(text) <= 300 else text[:300] + "...")
            try:
                msg = json.loads(text)
            except ValueError:
                continue
            if not isinstance(msg, dict):
                continue
            if msg.get("type") == "joined" and msg.get("sessionId") == session_id:
                return
            if msg.get("type") == "error":
                raise StepFailed(f"server answered the join with an error: {text[:300]}", ws_req, ws_resp)
    except StepFailed as exc:
        exc.request = exc.request or ws_req
        exc.response = exc.response or ws_resp
        raise
    except (OSError, ssl.SSLError) as exc:
        raise StepFailed(describe_net_error(exc, cfg.ws_url, cfg.timeout), ws_req, ws_resp) from None
    finally:
        client.close()


# --------------------------------------------------------------------------- runner


@dataclass
class Step:
    number: int
    description: str
    run: Callable[[Context], None]
    needs: tuple[int, ...] = ()


def build_steps(cfg: Config) -> list[Step]:
    return [
        Step(1, "GET /health returns ok", step_health),
        Step(2, f"POST /auth/login as {cfg.email} returns a JWT", step_login, needs=(1,)),
        Step(3, "GET /events returns the seeded Sebring event", step_events, needs=(2,)),
        Step(4, "GET /run-sheets returns the seeded run sheets", step_run_sheets, needs=(2,)),
        Step(5, "GET /laps returns the seeded laps", step_laps, needs=(2,)),
        Step(6, "WebSocket session-room handshake completes", step_websocket, needs=(2, 3)),
    ]


def format_body(body: bytes) -> list[str]:
    if not body:
        return ["(empty body)"]
    text = body[:BODY_LIMIT].decode("utf-8", "replace")
    lines = text.splitlines() or [""]
    if len(body) > BODY_LIMIT:
        lines.append(f"... ({len(body)} bytes, first {BODY_LIMIT} shown)")
    return lines


class Reporter:
    def __init__(self, out: Output, cfg: Config) -> None:
        self.out = out
        self.cfg = cfg
        self.token_hint_shown = False

    def passed(self, step: Step) -> None:
        self.out.line(f"PASS {step.number}/{TOTAL} {step.description}")

    def failed(self, step: Step, exc: StepFailed) -> None:
        self.out.line(f"FAIL {step.number}/{TOTAL} {step.description} -- {exc.reason}")
        pad = "    "
        req, resp = exc.request, exc.response
        if req is not None:
            self.out.line(f"{pad}> {req.method} {req.url}")
            for name, value in req.headers:
                self.out.line(f"{pad}> {name}: {value}")
            if req.shown_body is not None:
                self.out.line(f"{pad}> {req.shown_body}")
            for note in req.notes:
                self.out.line(f"{pad}  ({note})")
        if resp is None:
            self.out.line(f"{pad}< (no response)")
        else:
            if resp.status:
                self.out.line(f"{pad}< HTTP {resp.status} {resp.reason}".rstrip())
            for name, value in resp.headers:
                if name.lower() in HEADERS_OF_INTEREST:
                    self.out.line(f"{pad}< {name}: {value}")
            if resp.status == 101:
                if not resp.extra:
                    self.out.line(f"{pad}< (no WebSocket messages received)")
                for message in resp.extra:
                    self.out.line(f"{pad}< message: {message}")
            else:
                for line in format_body(resp.body):
                    self.out.line(f"{pad}< {line}")
        if req is not None and req.curl:
            self.out.line(f"{pad}re-run:")
            if req.needs_token and not self.token_hint_shown:
                self.token_hint_shown = True
                self.out.line(f"{pad}  {self.token_command()}")
            self.out.line(f"{pad}  {req.curl}")

    def token_command(self) -> str:
        marker = "\x00PASSWORD\x00"
        template = json.dumps({"email": self.cfg.email, "password": marker}, separators=(",", ":"))
        before, after = template.split(json.dumps(marker)[1:-1])
        url = shlex.quote(self.cfg.api_url + "/auth/login")
        return (
            f"TOKEN=$(curl -sS --max-time {self.cfg.timeout:g} -X POST {url} "
            f"-H 'Content-Type: application/json' --data {shell_word(before, '$SMOKE_PASSWORD', after)}"
            " | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"token\"])')"
        )

    def skipped(self, step: Step, needed: int) -> None:
        self.out.line(f"FAIL {step.number}/{TOTAL} {step.description} -- skipped: needs step {needed}")


def run(cfg: Config, stream: Any = None) -> int:
    redact = Redactor()
    redact.add(cfg.password, "***")
    out = Output(redact, stream)
    reporter = Reporter(out, cfg)
    ctx = Context(cfg=cfg, http=Http(cfg), redact=redact)
    out.line(f"smoke test: API_URL={cfg.api_url} WS_URL={cfg.ws_url} as {cfg.email} (timeout {cfg.timeout:g} s)")
    status: dict[int, str] = {}  # number -> "pass" | "fail" | "unreachable" | "skipped"
    for step in build_steps(cfg):
        blocker = None
        for need in step.needs:
            # /health failing on content does not stop the login; an unreachable API does.
            if need == 1 and status.get(1) != "unreachable":
                continue
            if status.get(need) != "pass":
                blocker = need
                break
        if blocker is not None:
            status[step.number] = "skipped"
            reporter.skipped(step, blocker)
            continue
        try:
            step.run(ctx)
        except StepFailed as exc:
            status[step.number] = "unreachable" if exc.unreachable else "fail"
            reporter.failed(step, exc)
        except Exception as exc:  # a smoke test reports, it does not crash
            status[step.number] = "fail"
            reporter.failed(step, StepFailed(f"unexpected error in the smoke test: {exc!r}"))
        else:
            status[step.number] = "pass"
            reporter.passed(step)
    failed = [n for n, s in sorted(status.items()) if s != "pass"]
    if failed:
        out.line(f"smoke test FAILED: {TOTAL - len(failed)}/{TOTAL} passed; failed: {', '.join(map(str, failed))}")
        return 1
    out.line(f"smoke test passed: {TOTAL}/{TOTAL}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="smoke-test.sh",
        description="Race Platform smoke test: checks 6 paths of a running stack "
        "(health, login, events, run sheets, laps, WebSocket session room).",
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)  # only --help; anything else is a usage error (exit 2)
    try:
        cfg = load_config(dict(os.environ))
    except UsageError as exc:
        print(f"smoke-test: {exc}", file=sys.stderr)
        print("smoke-test: see --help", file=sys.stderr)
        return 2
    try:
        return run(cfg)
    except KeyboardInterrupt:
        print("smoke-test: interrupted", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
