"""Unit tests of tools/smoke_test.py and tools/smoke-test.sh against in-test fakes.

No real stack: a tiny fake API (http.server) and a tiny fake WebSocket gateway (raw sockets,
RFC 6455 server side) run in threads on loopback; the script runs as a subprocess against them.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "smoke_test.py"
ENTRY = REPO / "tools" / "smoke-test.sh"

PASSWORD = "Pa55-w0rd-never-printed"
EMAIL = "jamie@apexracing.io"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqYW1pZSJ9.c2lnbmF0dXJlLXNlY3JldC14eXo"
EVENT_ID = "6f1c2a8e-0000-4000-8000-000000000001"
SESSION_ID = "6f1c2a8e-0000-4000-8000-0000000000aa"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class Behaviour:
    login_status: int = 200
    events: list[dict] = field(
        default_factory=lambda: [
            {"id": "e-0", "name": "Daytona 24"},
            {"id": EVENT_ID, "name": "Sebring 12 Hours"},
        ]
    )
    ws_refuse: int | None = None  # HTTP status to refuse the upgrade with
    ws_send_joined: bool = True


# --------------------------------------------------------------------------- fake API


def make_api(behaviour: Behaviour) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: object) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.send_header("X-Request-Id", "req-123")
            self.end_headers()
            self.wfile.write(raw)

        def _authed(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, {"error": {"code": "unauthorized", "message": "bad token"}})
                return False
            return True

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if url.path == "/health":
                return self._send(200, {"status": "ok"})
            if not self._authed():
                return None
            if url.path == "/events":
                return self._send(200, {"items": behaviour.events, "nextCursor": None})
            if url.path == "/run-sheets":
                return self._send(200, {"items": [{"id": "rs-1"}], "nextCursor": None})
            if url.path == "/laps":
                return self._send(200, {"items": [{"id": "lap-1"}], "nextCursor": None})
            if url.path == "/sessions" and query.get("eventId") == [EVENT_ID]:
                return self._send(200, {"items": [{"id": SESSION_ID}], "nextCursor": None})
            return self._send(404, {"error": {"code": "not_found", "message": url.path}})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            if self.path != "/auth/login":
                return self._send(404, {"error": {"code": "not_found", "message": self.path}})
            if behaviour.login_status != 200 or body != {"email": EMAIL, "password": PASSWORD}:
                # A careless server echoing the password: the script must still not print it.
                message = f"invalid credentials for {body.get('email')} / {body.get('password')}"
                return self._send(behaviour.login_status, {"error": {"code": "invalid", "message": message}})
            return self._send(200, {"token": TOKEN, "user": {"email": EMAIL}})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


# --------------------------------------------------------------------------- fake WebSocket gateway


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _read_client_frame(conn: socket.socket) -> tuple[int, bytes]:
    b1, b2 = _recv_exact(conn, 2)
    assert b2 & 0x80, "client frames must be masked"
    length = b2 & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", _recv_exact(conn, 2))
    elif length == 127:
        (length,) = struct.unpack("!Q", _recv_exact(conn, 8))
    mask = _recv_exact(conn, 4)
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(_recv_exact(conn, length)))
    return b1 & 0x0F, payload


def _frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    if len(payload) < 126:
        return head + bytes([len(payload)]) + payload
    return head + bytes([126]) + struct.pack("!H", len(payload)) + payload


def _serve_ws(conn: socket.socket, behaviour: Behaviour, seen: list[dict]) -> None:
    with conn:
        conn.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                return
            head += chunk
        lines = head.decode("latin-1").split("\r\n")
        target = lines[0].split(" ")[1]
        headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        token = parse_qs(urlsplit(target).query).get("token", [""])[0]
        refuse = behaviour.ws_refuse or (401 if token != TOKEN else None)
        if refuse:
            # Echo the target (which holds the token): the script must redact it.
            body = json.dumps({"message": "Forbidden", "target": target}).encode()
            conn.sendall(
                f"HTTP/1.1 {refuse} Unauthorized\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            return
        accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + WS_GUID).encode()).digest()).decode()
        conn.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        while True:
            opcode, payload = _read_client_frame(conn)
            if opcode == 0x8:
                return
            if opcode == 0xA:  # pong to our ping
                seen.append({"pong": payload.decode()})
                continue
            msg = json.loads(payload)
            seen.append(msg)
            if msg.get("action") != "join":
                continue
            # Unrelated traffic first: presence, a joined for another session, a ping.
            conn.sendall(_frame(0x1, json.dumps({"type": "presence", "members": ["alex"]}).encode()))
            conn.sendall(_frame(0x1, json.dumps({"type": "joined", "sessionId": "other"}).encode()))
            conn.sendall(_frame(0x9, b"hb"))
            if behaviour.ws_send_joined:
                joined = json.dumps(
                    {"type": "joined", "sessionId": msg["sessionId"], "seq": 0, "members": ["jamie"]}
                ).encode()
                # Fragmented on purpose: text frame without FIN + continuation frame.
                conn.sendall(_frame(0x1, joined[:10], fin=False) + _frame(0x0, joined[10:]))


class FakeWs:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.seen: list[dict] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError, ValueError):  # the client hung up
            _serve_ws(conn, self.behaviour, self.seen)

    def close(self) -> None:
        self.sock.close()


# --------------------------------------------------------------------------- harness


@dataclass
class Stack:
    behaviour: Behaviour
    api_url: str
    ws_url: str
    ws: FakeWs

    def run(self, *args: str, entry: Path = SCRIPT, **env: str) -> subprocess.CompletedProcess[str]:
        clean = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SMOKE_") and k not in ("API_URL", "WS_URL", "SEED_PASSWORD")
        }
        clean.update(API_URL=self.api_url, WS_URL=self.ws_url, SMOKE_EMAIL=EMAIL, SMOKE_PASSWORD=PASSWORD)
        clean.update(env)
        cmd = [str(entry), *args] if entry.suffix == ".sh" else [sys.executable, str(entry), *args]
        return subprocess.run(cmd, env=clean, capture_output=True, text=True, timeout=60)


@pytest.fixture
def stack() -> Iterator[Stack]:
    behaviour = Behaviour()
    api = make_api(behaviour)
    ws = FakeWs(behaviour)
    try:
        yield Stack(behaviour, f"http://127.0.0.1:{api.server_address[1]}", f"ws://127.0.0.1:{ws.port}", ws)
    finally:
        api.shutdown()
        api.server_close()
        ws.close()


def lines_starting(out: str, prefix: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(prefix)]


def assert_no_secrets(proc: subprocess.CompletedProcess[str]) -> None:
    everything = proc.stdout + proc.stderr
    assert PASSWORD not in everything
    assert TOKEN not in everything
    assert TOKEN.split(".")[2] not in everything


# --------------------------------------------------------------------------- tests


def test_all_six_pass(stack: Stack) -> None:
    proc = stack.run()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    passes = lines_starting(proc.stdout, "PASS ")
    assert [line.split()[1] for line in passes] == [f"{n}/6" for n in range(1, 7)]
    assert not lines_starting(proc.stdout, "FAIL ")
    # The join went out masked with the Sebring session, and the ping was answered.
    assert {"action": "join", "sessionId": SESSION_ID} in stack.ws.seen
    assert {"pong": "hb"} in stack.ws.seen
    assert_no_secrets(proc)


def test_bash_entry_point_runs_the_script(stack: Stack) -> None:
    assert os.access(ENTRY, os.X_OK)
    proc = stack.run(entry=ENTRY)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(lines_starting(proc.stdout, "PASS ")) == 6


def test_login_failure_prints_redacted_request_and_skips_dependents(stack: Stack) -> None:
    stack.behaviour.login_status = 401
    proc = stack.run()
    assert proc.returncode == 1
    out = proc.stdout
    assert lines_starting(out, "PASS 1/6")
    fail2 = lines_starting(out, "FAIL 2/6")
    assert fail2 and "HTTP 401" in fail2[0]
    assert f"> POST {stack.api_url}/auth/login" in out
    assert '"password": "***"' in out
    assert "$SMOKE_PASSWORD" in out  # the re-runnable curl uses a placeholder
    assert "curl " in out and "< HTTP 401" in out and "X-Request-Id: req-123" in out
    for n in (3, 4, 5, 6):
        line = lines_starting(out, f"FAIL {n}/6")
        assert line and "skipped: needs step 2" in line[0], out
    assert_no_secrets(proc)


def test_refused_websocket_upgrade_names_the_status(stack: Stack) -> None:
    stack.behaviour.ws_refuse = 403
    proc = stack.run()
    assert proc.returncode == 1
    out = proc.stdout
    assert len(lines_starting(out, "PASS ")) == 5
    fail6 = lines_starting(out, "FAIL 6/6")
    assert fail6 and "HTTP 403" in fail6[0], out
    assert "?token=<redacted>" in out
    assert "$TOKEN" in out  # curl re-run with a placeholder
    assert_no_secrets(proc)


def test_no_joined_within_timeout_fails_step_six(stack: Stack) -> None:
    stack.behaviour.ws_send_joined = False
    proc = stack.run(SMOKE_TIMEOUT="1")
    assert proc.returncode == 1
    fail6 = lines_starting(proc.stdout, "FAIL 6/6")
    assert fail6 and "no 'joined'" in fail6[0], proc.stdout
    assert '"type": "presence"' in proc.stdout  # the unrelated messages are shown
    assert_no_secrets(proc)


def test_missing_sebring_event_fails_step_three_and_skips_six(stack: Stack) -> None:
    stack.behaviour.events = [{"id": "e-0", "name": "Daytona 24"}]
    proc = stack.run()
    assert proc.returncode == 1
    assert "Sebring" in lines_starting(proc.stdout, "FAIL 3/6")[0]
    assert lines_starting(proc.stdout, "PASS 4/6") and lines_starting(proc.stdout, "PASS 5/6")
    assert "skipped: needs step 3" in lines_starting(proc.stdout, "FAIL 6/6")[0]
    assert "Bearer <redacted>" in proc.stdout
    assert_no_secrets(proc)


def test_connection_refused_is_reported_clearly(stack: Stack) -> None:
    # A bound socket that does not listen: connecting to it is refused.
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        port = hole.getsockname()[1]
        proc = stack.run(API_URL=f"http://127.0.0.1:{port}")
    assert proc.returncode == 1
    assert f"nothing listens on 127.0.0.1:{port}" in lines_starting(proc.stdout, "FAIL 1/6")[0]
    assert "skipped: needs step 1" in lines_starting(proc.stdout, "FAIL 2/6")[0]
    assert_no_secrets(proc)


def test_silent_server_times_out(stack: Stack) -> None:
    # Listening but never accepting: the connection succeeds, no answer ever comes.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        proc = stack.run(API_URL=f"http://127.0.0.1:{port}", SMOKE_TIMEOUT="0.5")
    assert proc.returncode == 1
    assert "no answer from" in lines_starting(proc.stdout, "FAIL 1/6")[0]
    assert "within 0.5 s" in proc.stdout


def test_help_explains_the_variables(stack: Stack) -> None:
    proc = stack.run("--help")
    assert proc.returncode == 0
    for name in ("API_URL", "WS_URL", "SMOKE_EMAIL", "SMOKE_PASSWORD", "SEED_PASSWORD", "SMOKE_TIMEOUT"):
        assert name in proc.stdout


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--no-such-flag"], {}),
        ([], {"SMOKE_TIMEOUT": "soon"}),
        ([], {"API_URL": "ftp://example.com"}),
        ([], {"WS_URL": "http://127.0.0.1:8001"}),
    ],
)
def test_usage_errors_exit_2(stack: Stack, args: list[str], env: dict[str, str]) -> None:
    proc = stack.run(*args, **env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert not lines_starting(proc.stdout, "PASS ")
