"""The local WebSocket gateway drives a Chalice app and answers the management API as API Gateway does."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from chalice import Chalice, Response, WebsocketDisconnectedError
from chalice.app import WebsocketEvent
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from infra.local.ports import free_port
from infra.local.ws_gateway import WsGateway
from infra.local.ws_management import ENV_VAR, management_client

pytestmark = pytest.mark.integration

TOKEN = "good-token-s3cr3t"
WAIT_S = 10.0
CONNECTION_ID = re.compile(r"^[A-Za-z0-9_-]{15}=$")


class Recorder:
    """Every event the app's handlers saw, plus per-connection concurrency bookkeeping."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.in_flight: dict[str, int] = {}
        self.max_in_flight = 0
        self.release = threading.Event()
        self._cond = threading.Condition()

    def add(self, event: dict[str, Any]) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def enter(self, connection_id: str) -> None:
        with self._cond:
            self.in_flight[connection_id] = self.in_flight.get(connection_id, 0) + 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight[connection_id])

    def leave(self, connection_id: str) -> None:
        with self._cond:
            self.in_flight[connection_id] -= 1

    def wait_for(self, matches: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first recorded event that matches, waiting for it to arrive."""
        deadline = time.monotonic() + WAIT_S
        with self._cond:
            while True:
                found = [event for event in self.events if matches(event)]
                if found:
                    return found[0]
                remaining = deadline - time.monotonic()
                assert remaining > 0, "the expected event never arrived"
                self._cond.wait(remaining)

    def find(self, connection_id: str, event_type: str) -> list[dict[str, Any]]:
        with self._cond:
            return [
                e
                for e in self.events
                if e["requestContext"]["connectionId"] == connection_id
                and e["requestContext"]["eventType"] == event_type
            ]


def build_app(recorder: Recorder) -> Chalice:
    app = Chalice(app_name="ws-gateway-test")
    app.experimental_feature_flags.update(["WEBSOCKETS"])

    @app.on_ws_connect()
    def connect_handler(event: WebsocketEvent) -> Response | None:
        raw = event.to_dict()
        recorder.add(raw)
        if (raw.get("queryStringParameters") or {}).get("token") != TOKEN:
            return Response(
                body=json.dumps({"message": "Forbidden"}), status_code=403, headers={"Content-Type": "application/json"}
            )
        return None

    @app.on_ws_message()
    def message_handler(event: WebsocketEvent) -> dict[str, Any]:
        recorder.add(event.to_dict())
        recorder.enter(event.connection_id)
        try:
            body = event.json_body
            reply: dict[str, Any] = {}
            if body["action"] == "whoami":
                reply = {"connectionId": event.connection_id}
            elif body["action"] == "echo":
                time.sleep(random.random() / 500)  # gives overlapping handlers a chance to show up
                reply = {"echo": body["n"]}
            elif body["action"] == "block":
                recorder.release.wait(WAIT_S)
                reply = {"unblocked": True}
            elif body["action"] == "boom":
                raise RuntimeError("boom")
            app.websocket_api.send(event.connection_id, json.dumps(reply))
        finally:
            recorder.leave(event.connection_id)
        # API Gateway drops this: Chalice creates no route response.
        return {"statusCode": 200, "body": "not sent to the client"}

    @app.on_ws_disconnect()
    def disconnect_handler(event: WebsocketEvent) -> None:
        recorder.add(event.to_dict())

    return app


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def gateway(recorder: Recorder) -> Iterator[WsGateway]:
    gw = WsGateway(build_app(recorder), port=free_port(), management_port=free_port())
    gw.start_in_thread()
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture
def management(gateway: WsGateway) -> Any:
    return boto3.client("apigatewaymanagementapi", endpoint_url=gateway.management_url, region_name="us-east-1")


def open_client(gateway: WsGateway, token: str = TOKEN) -> ClientConnection:
    return connect(f"{gateway.url}/?token={token}", open_timeout=WAIT_S, close_timeout=WAIT_S)


def server_log(caplog: pytest.LogCaptureFixture) -> str:
    """What the gateway logged (the websockets client logs its own request line, token included)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("race.gateway"))


def whoami(ws: ClientConnection) -> str:
    ws.send(json.dumps({"action": "whoami"}))
    return str(json.loads(ws.recv(timeout=WAIT_S))["connectionId"])


def test_connect_with_token_gets_an_api_gateway_connect_event(
    gateway: WsGateway, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with open_client(gateway) as ws:
        connection_id = whoami(ws)
    assert CONNECTION_ID.match(connection_id)
    event = recorder.find(connection_id, "CONNECT")[0]
    context = event["requestContext"]
    assert context["routeKey"] == "$connect"
    assert context["apiId"] == "local" and context["stage"] == "local"
    assert context["messageDirection"] == "IN"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert "websockets" in context["identity"]["userAgent"]
    assert isinstance(context["connectedAt"], int) and isinstance(context["requestTimeEpoch"], int)
    assert context["requestId"] and context["domainName"]
    assert event["queryStringParameters"] == {"token": TOKEN}
    assert event["multiValueQueryStringParameters"] == {"token": [TOKEN]}
    assert event["headers"]["Sec-WebSocket-Version"] == "13"
    assert event["multiValueHeaders"]["X-Forwarded-For"] == ["127.0.0.1"]
    assert event["isBase64Encoded"] is False
    recorder.wait_for(
        lambda e: (
            e["requestContext"]["connectionId"] == connection_id and e["requestContext"]["eventType"] == "DISCONNECT"
        )
    )
    gateway_log = server_log(caplog)
    assert connection_id in gateway_log
    assert TOKEN not in gateway_log


def test_connect_refused_by_the_handler_fails_the_upgrade_with_its_status(
    gateway: WsGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for token in ("wrong-token-xyz", ""):
        with pytest.raises(InvalidStatus) as refused:
            open_client(gateway, token)
        assert refused.value.response.status_code == 403
        assert json.loads(refused.value.response.body) == {"message": "Forbidden"}
    gateway_log = server_log(caplog)
    assert "refused status=403" in gateway_log
    assert "wrong-token-xyz" not in gateway_log


def test_message_reaches_default_and_replies_go_through_websocket_api_send(
    gateway: WsGateway, recorder: Recorder
) -> None:
    with open_client(gateway) as ws:
        connection_id = whoami(ws)
        ws.send(json.dumps({"action": "echo", "n": 7}))
        assert json.loads(ws.recv(timeout=WAIT_S)) == {"echo": 7}
    message = recorder.find(connection_id, "MESSAGE")[-1]
    assert message["requestContext"]["routeKey"] == "$default"
    assert message["requestContext"]["messageId"]
    assert json.loads(message["body"]) == {"action": "echo", "n": 7}


def test_one_clients_messages_are_handled_in_order_one_at_a_time(gateway: WsGateway, recorder: Recorder) -> None:
    count = 40
    with open_client(gateway) as ws:
        connection_id = whoami(ws)
        for n in range(count):
            ws.send(json.dumps({"action": "echo", "n": n}))
        replies = [json.loads(ws.recv(timeout=WAIT_S))["echo"] for _ in range(count)]
    assert replies == list(range(count))
    handled = [json.loads(e["body"]).get("n") for e in recorder.find(connection_id, "MESSAGE")]
    assert handled[1:] == list(range(count))
    assert recorder.max_in_flight == 1


def test_a_slow_handler_blocks_neither_the_loop_nor_other_connections(gateway: WsGateway, recorder: Recorder) -> None:
    recorder.release.clear()
    with open_client(gateway) as slow, open_client(gateway) as other:
        slow.send(json.dumps({"action": "block"}))
        recorder.wait_for(lambda e: e.get("body") == json.dumps({"action": "block"}))
        other.send(json.dumps({"action": "echo", "n": 1}))
        assert json.loads(other.recv(timeout=WAIT_S)) == {"echo": 1}
        recorder.release.set()
        assert json.loads(slow.recv(timeout=WAIT_S)) == {"unblocked": True}


def test_management_api_posts_describes_and_deletes_connections(
    gateway: WsGateway, recorder: Recorder, management: Any
) -> None:
    with open_client(gateway) as ws:
        connection_id = whoami(ws)
        management.post_to_connection(ConnectionId=connection_id, Data=b'{"type":"presence"}')
        assert ws.recv(timeout=WAIT_S) == '{"type":"presence"}'
        management.post_to_connection(ConnectionId=connection_id, Data=b"\x00\xff")
        assert ws.recv(timeout=WAIT_S) == b"\x00\xff"

        info = management.get_connection(ConnectionId=connection_id)
        assert info["Identity"]["SourceIp"] == "127.0.0.1"
        assert info["ConnectedAt"] <= info["LastActiveAt"]

        management.delete_connection(ConnectionId=connection_id)
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=WAIT_S)
    disconnect = recorder.wait_for(
        lambda e: (
            e["requestContext"]["connectionId"] == connection_id and e["requestContext"]["eventType"] == "DISCONNECT"
        )
    )
    assert disconnect["requestContext"]["routeKey"] == "$disconnect"
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId=connection_id, Data=b"late")
    with pytest.raises(management.exceptions.GoneException):
        management.get_connection(ConnectionId="Ab3dEfGhIAMCJ-Q=")


def _raw(gateway: WsGateway, request: bytes) -> bytes:
    """Send bytes to the management API as they are; everything it answers until it closes (or goes quiet)."""
    import socket

    with socket.create_connection(("127.0.0.1", gateway.management_port), timeout=WAIT_S) as sock:
        sock.sendall(request)
        sock.settimeout(1.0)
        answer = b""
        with contextlib.suppress(TimeoutError):
            while chunk := sock.recv(65536):
                answer += chunk
    return answer


def test_management_api_keeps_connections_alive_and_answers_each_request(gateway: WsGateway) -> None:
    with open_client(gateway) as ws:
        path = f"/local/@connections/{quote(whoami(ws), safe='')}"
        conn = http.client.HTTPConnection("127.0.0.1", gateway.management_port, timeout=WAIT_S)
        for body in (b"one", b"two"):
            conn.request("POST", path, body=body)
            answer = conn.getresponse()
            assert (answer.status, answer.read()) == (200, b"")
            assert answer.getheader("x-amzn-RequestId")
        conn.close()
        assert [ws.recv(timeout=WAIT_S), ws.recv(timeout=WAIT_S)] == ["one", "two"]  # UTF-8: text frames


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"PUT /local/@connections/abc HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"403"),
        (b"POST /prod/@connections/abc HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"403"),
        (b"POST /local/@connections/ HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"403"),
        (b"POST /local/@connections/abc HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"410"),
        (b"POST /local/@connections/abc HTTP/1.1\r\nContent-Length: 999999\r\n\r\n", b"413"),
        (b"POST /local/@connections/abc HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"400"),
        (b"POST /local/@connections/abc HTTP/1.0\r\nContent-Length: 0\r\n\r\n", b"400"),
        (b"POST /local/@connections/abc HTTP/1.1\r\nContent-Length: x\r\n\r\n", b"400"),
        (b"nonsense\r\n\r\n", b"400"),
    ],
)
def test_management_api_answers_what_it_cannot_serve_with_an_error(
    gateway: WsGateway, request_bytes: bytes, status: bytes
) -> None:
    assert _raw(gateway, request_bytes).split(b" ", 2)[1] == status


def test_management_api_closes_a_connection_whose_head_never_ends(gateway: WsGateway) -> None:
    assert _raw(gateway, b"POST /local/@connections/abc HTTP/1.1\r\nX: " + b"a" * 70_000) == b""


def test_disconnect_fires_when_the_client_closes(gateway: WsGateway, recorder: Recorder) -> None:
    with open_client(gateway) as ws:
        connection_id = whoami(ws)
    disconnect = recorder.wait_for(
        lambda e: (
            e["requestContext"]["connectionId"] == connection_id and e["requestContext"]["eventType"] == "DISCONNECT"
        )
    )
    assert disconnect["requestContext"]["disconnectStatusCode"] == 1000


def test_handler_errors_and_binary_frames_are_answered_like_api_gateway(gateway: WsGateway) -> None:
    with open_client(gateway) as ws:
        connection_id = whoami(ws)
        ws.send(json.dumps({"action": "boom"}))
        error = json.loads(ws.recv(timeout=WAIT_S))
        assert error["message"] == "Internal server error" and error["connectionId"] == connection_id
        ws.send(b"\x01\x02")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT_S)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003


def test_idle_connections_are_eventually_closed() -> None:
    recorder = Recorder()
    gw = WsGateway(build_app(recorder), port=free_port(), idle_timeout_s=0.2)
    gw.start_in_thread()
    try:
        with open_client(gw) as ws, pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT_S)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        recorder.wait_for(lambda e: e["requestContext"]["eventType"] == "DISCONNECT")
    finally:
        gw.stop()


def test_lifecycle_env_helper_and_sends_outside_handlers() -> None:
    recorder = Recorder()
    app = build_app(recorder)
    # What a deployed app does at import time; the gateway must win over both.
    app.websocket_api.session = boto3.session.Session()
    app.websocket_api.configure_from_api_id("abc123", "prod")
    previous = os.environ.get(ENV_VAR)
    gw = WsGateway(app, port=free_port())
    gw.start_in_thread()
    try:
        assert os.environ[ENV_VAR] == gw.management_url
        with open_client(gw) as ws:
            connection_id = whoami(ws)
            assert management_client().get_connection(ConnectionId=connection_id)["Identity"]["SourceIp"]
            app.websocket_api.send(connection_id, "from a route handler")
            assert ws.recv(timeout=WAIT_S) == "from a route handler"
            with pytest.raises(WebsocketDisconnectedError):
                app.websocket_api.send("Ab3dEfGhIAMCJ-Q=", "to nobody")
            gw.stop()
            # stop() closed the socket and ran $disconnect before returning.
            assert recorder.find(connection_id, "DISCONNECT")
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=WAIT_S)
    finally:
        gw.stop()
    assert os.environ.get(ENV_VAR) == previous
