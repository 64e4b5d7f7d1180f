"""The local HTTP gateway over real sockets, with a tiny Chalice app defined here (no database)."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from chalice import Chalice, Response

from infra.local.http_gateway import MAX_BODY_BYTES, HttpGateway, lambda_limits, make_server, start_in_thread
from infra.local.ports import free_port

pytestmark = pytest.mark.integration

app = Chalice("gw-test", configure_logs=False, env={})
_arrived = threading.Event()
_release = threading.Event()


@app.route("/inspect/{a}/{b}", methods=["GET", "POST"], content_types=["application/json", "image/png"])
def inspect(a: str, b: str) -> dict[str, Any]:
    ctx = app.lambda_context
    assert app.current_request is not None
    return {
        "args": [a, b],
        "event": app.current_request.to_original_event(),
        "context": {
            "awsRequestId": ctx.aws_request_id,
            "functionName": ctx.function_name,
            "memory": ctx.memory_limit_in_mb,
            "remainingMs": ctx.get_remaining_time_in_millis(),
        },
    }


@app.route("/events/{id}")
def event_by_id(id: str) -> dict[str, str]:
    return {"route": "param", "id": id}


@app.route("/events/latest")
def latest_event() -> dict[str, str]:
    return {"route": "literal"}


@app.route("/json", methods=["POST"])
def echo_json() -> Any:
    assert app.current_request is not None
    return {"got": app.current_request.json_body}


@app.route("/bytes", methods=["POST"], content_types=["application/octet-stream"])
def echo_bytes() -> Response:
    assert app.current_request is not None
    raw = app.current_request.raw_body
    return Response(body=raw, headers={"Content-Type": "application/octet-stream"})


@app.route("/cors", methods=["GET", "POST"], cors=True)
def with_cors() -> dict[str, bool]:
    return {"ok": True}


@app.route("/cookies")
def cookies() -> Response:
    return Response(body="", status_code=204, headers={"Set-Cookie": ["a=1", "b=2"]})


@app.route("/boom")
def boom() -> None:
    raise RuntimeError("handler crashed")


@app.route("/wait/{name}")
def wait(name: str) -> dict[str, str]:
    # The first caller parks until a second request has run, then reports what it sees as its request.
    if name == "first":
        _arrived.set()
        _release.wait(10)
    else:
        _release.set()
    assert app.current_request is not None
    return {"name": (app.current_request.uri_params or {})["name"]}


@pytest.fixture(scope="module")
def gateway() -> Iterator[HttpGateway]:
    server = start_in_thread(app, "127.0.0.1", free_port())
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def conn(gateway: HttpGateway) -> Iterator[http.client.HTTPConnection]:
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        yield connection
    finally:
        connection.close()


def call(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[http.client.HTTPResponse, bytes]:
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response, response.read()


def assert_error(response: http.client.HTTPResponse, body: bytes, status: int, code: str) -> None:
    assert response.status == status
    assert response.getheader("Content-Type") == "application/json"
    payload = json.loads(body)
    assert set(payload) == {"error"}
    assert payload["error"]["code"] == code
    assert payload["error"]["message"]


def test_path_and_query_parameters(conn: http.client.HTTPConnection) -> None:
    response, body = call(conn, "GET", "/inspect/x%20y/a+b/?tag=one&tag=two&q=hello%20world&flag")
    assert response.status == 200
    result = json.loads(body)
    event = result["event"]
    assert result["args"] == ["x y", "a+b"]
    assert event["resource"] == "/inspect/{a}/{b}"
    assert event["path"] == "/inspect/x%20y/a+b/"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"a": "x y", "b": "a+b"}
    assert event["multiValueQueryStringParameters"] == {
        "tag": ["one", "two"],
        "q": ["hello world"],
        "flag": [""],
    }
    assert event["queryStringParameters"] == {"tag": "two", "q": "hello world", "flag": ""}
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    assert event["stageVariables"] is None
    ctx = event["requestContext"]
    assert ctx["resourcePath"] == "/inspect/{a}/{b}"
    assert ctx["httpMethod"] == "GET"
    assert ctx["stage"] == "local"
    assert ctx["path"] == "/inspect/x%20y/a+b/"

    _, body = call(conn, "GET", "/inspect/1/2")
    event = json.loads(body)["event"]
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None


def test_headers_and_lambda_context(conn: http.client.HTTPConnection) -> None:
    conn.putrequest("GET", "/inspect/1/2")
    conn.putheader("X-Thing", "first")
    conn.putheader("X-Thing", "second")
    conn.putheader("User-Agent", "gateway-test/1")
    conn.endheaders()
    response = conn.getresponse()
    result = json.loads(response.read())
    event = result["event"]
    assert event["headers"]["X-Thing"] == "second"
    assert event["multiValueHeaders"]["X-Thing"] == ["first", "second"]
    assert event["requestContext"]["identity"]["userAgent"] == "gateway-test/1"
    context = result["context"]
    assert context["functionName"] == "gw-test-local"
    memory_mb, timeout_ms = lambda_limits("local")  # what .chalice/config.json deploys
    assert context["memory"] == memory_mb
    assert 0 < context["remainingMs"] <= timeout_ms
    assert context["awsRequestId"]


def test_literal_segment_wins_over_parameter(conn: http.client.HTTPConnection) -> None:
    assert json.loads(call(conn, "GET", "/events/latest")[1]) == {"route": "literal"}
    assert json.loads(call(conn, "GET", "/events/42")[1]) == {"route": "param", "id": "42"}


def test_source_ip_and_unique_request_ids(conn: http.client.HTTPConnection) -> None:
    seen = set()
    for _ in range(3):
        response, body = call(conn, "GET", "/inspect/1/2")
        ctx = json.loads(body)["event"]["requestContext"]
        assert ctx["identity"]["sourceIp"] == "127.0.0.1"
        assert ctx["requestId"]
        assert response.getheader("x-amzn-RequestId") == ctx["requestId"]
        seen.add(ctx["requestId"])
    assert len(seen) == 3


def test_json_round_trip(conn: http.client.HTTPConnection) -> None:
    payload = {"name": "Sebring 12h", "laps": [1, 2, 3], "ünïcode": "✓"}
    response, body = call(conn, "POST", "/json", json.dumps(payload).encode(), {"Content-Type": "application/json"})
    assert response.status == 200
    assert json.loads(body) == {"got": payload}


def test_chunked_request_body(conn: http.client.HTTPConnection) -> None:
    chunks = iter([b'{"a": ', b"[1, 2]", b"}"])
    conn.request("POST", "/json", body=chunks, headers={"Content-Type": "application/json"}, encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 200
    assert json.loads(response.read()) == {"got": {"a": [1, 2]}}


def test_binary_round_trip(conn: http.client.HTTPConnection) -> None:
    data = bytes(range(256)) * 64
    headers = {"Content-Type": "application/octet-stream", "Accept": "application/octet-stream"}
    response, body = call(conn, "POST", "/bytes", data, headers)
    assert response.status == 200
    assert response.getheader("Content-Type") == "application/octet-stream"
    assert body == data

    response, body = call(conn, "POST", "/inspect/1/2", b"\x00\x01\xff", {"Content-Type": "image/png"})
    event = json.loads(body)["event"]
    assert event["isBase64Encoded"] is True
    assert event["body"] == "AAH/"


def test_not_found_shape(conn: http.client.HTTPConnection) -> None:
    assert_error(*call(conn, "GET", "/nowhere?token=x"), 404, "not_found")
    assert_error(*call(conn, "GET", "/events/1/extra"), 404, "not_found")


def test_method_not_allowed_shape(conn: http.client.HTTPConnection) -> None:
    response, body = call(conn, "DELETE", "/json")
    assert_error(response, body, 405, "method_not_allowed")
    assert response.getheader("Allow") == "POST"


def test_payload_too_large_shape(gateway: HttpGateway) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        connection.putrequest("POST", "/json")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
        connection.endheaders()
        response = connection.getresponse()
        assert_error(response, response.read(), 413, "payload_too_large")
        assert response.getheader("Connection") == "close"
    finally:
        connection.close()


def test_cors_preflight(conn: http.client.HTTPConnection) -> None:
    headers = {"Origin": "http://127.0.0.1:6166", "Access-Control-Request-Method": "POST"}
    response, body = call(conn, "OPTIONS", "/cors", headers=headers)
    assert response.status == 200
    assert body == b""
    assert response.getheader("Access-Control-Allow-Origin") == "*"
    assert set(response.getheader("Access-Control-Allow-Methods", "").split(",")) == {
        "GET",
        "POST",
        "OPTIONS",
    }
    assert "Authorization" in response.getheader("Access-Control-Allow-Headers", "").split(",")
    response, _ = call(conn, "GET", "/cors")
    assert response.getheader("Access-Control-Allow-Origin") == "*"
    assert_error(*call(conn, "OPTIONS", "/json"), 405, "method_not_allowed")


def test_multi_value_response_headers(conn: http.client.HTTPConnection) -> None:
    response, body = call(conn, "GET", "/cookies")
    assert response.status == 204
    assert body == b""
    assert response.msg.get_all("Set-Cookie") == ["a=1", "b=2"]


def test_handler_exception_is_500_and_server_survives(conn: http.client.HTTPConnection) -> None:
    assert_error(*call(conn, "GET", "/boom"), 500, "internal")
    response, _ = call(conn, "GET", "/events/1")
    assert response.status == 200


def test_malformed_request_line_is_400_shape(gateway: HttpGateway) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(body)["error"]["code"] == "bad_request"


def test_many_keep_alive_requests_on_one_connection(conn: http.client.HTTPConnection) -> None:
    call(conn, "GET", "/events/0")
    local_end = conn.sock.getsockname()
    for i in range(300):
        response, body = call(conn, "GET", f"/events/{i}")
        assert response.status == 200
        assert json.loads(body)["id"] == str(i)
    assert conn.sock.getsockname() == local_end


def test_keep_alive_with_requests_session(gateway: HttpGateway) -> None:
    with requests.Session() as session:
        for i in range(50):
            response = session.post(f"{gateway.url}/json", json={"i": i}, timeout=10)
            assert response.status_code == 200
            assert response.json() == {"got": {"i": i}}


def test_concurrent_requests_see_their_own_current_request(gateway: HttpGateway) -> None:
    _arrived.clear()
    _release.clear()
    results: dict[str, str] = {}

    def fetch(name: str) -> None:
        results[name] = requests.get(f"{gateway.url}/wait/{name}", timeout=10).json()["name"]

    first = threading.Thread(target=fetch, args=("first",))
    first.start()
    assert _arrived.wait(10)
    fetch("second")
    first.join(10)
    assert results == {"first": "first", "second": "second"}


def test_access_log_has_no_query_string(conn: http.client.HTTPConnection, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="race.gateway.http"):
        call(conn, "GET", "/events/7?token=secret-value", headers={"Authorization": "Bearer hidden"})
        # The line is written after the response; the next answer on this connection comes after it.
        call(conn, "GET", "/events/8")
    lines = [r.getMessage() for r in caplog.records if r.name == "race.gateway.http"]
    mine = [line for line in lines if " /events/7 " in line]
    assert len(mine) == 1
    method, path, status, duration = mine[0].split(" ")
    assert (method, path, status) == ("GET", "/events/7", "200")
    assert duration.endswith("ms")
    assert not [line for line in lines if "secret" in line or "hidden" in line]


def test_shutdown_closes_idle_keep_alive_connections() -> None:
    server = start_in_thread(app, "127.0.0.1", free_port())
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        response, _ = call(connection, "GET", "/events/1")
        assert response.status == 200
        server.shutdown()
        server.server_close()
        assert server.thread is not None
        server.thread.join(10)
        assert not server.thread.is_alive()
        assert connection.sock.recv(1) == b""
    finally:
        connection.close()


def test_shutdown_before_serving_returns() -> None:
    server = make_server(app, "127.0.0.1", free_port())
    server.shutdown()
    server.server_close()


def test_a_paused_gate_drains_in_flight_requests_then_answers_503_maintenance(gateway: HttpGateway) -> None:
    from infra.local.maintenance import Gate

    _arrived.clear()
    _release.clear()
    gateway.gate = gate = Gate()
    results: dict[str, int] = {}
    try:
        first = threading.Thread(
            target=lambda: results.update(first=requests.get(f"{gateway.url}/wait/first", timeout=10).status_code)
        )
        first.start()
        assert _arrived.wait(10)
        assert gate.pause(timeout_s=0.05) is False  # the request inside holds the swap back
        _release.set()
        first.join(10)
        assert results == {"first": 200} and gate.pause() is True
        answer = requests.get(f"{gateway.url}/events/latest", timeout=10)
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
        assert answer.json()["error"]["code"] == "maintenance"
        gate.resume()
        assert requests.get(f"{gateway.url}/events/latest", timeout=10).json() == {"route": "literal"}
    finally:
        gateway.gate = None
        _release.set()
