"""The fan-out's PostToConnection is the request boto3 would send: same URL, body and SigV4 signature."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from chalicelib.realtime.poster import Poster
from tests.http_servers import serving
from tests.signing import boto3_request, sign_at_a_fixed_time, text

pytestmark = pytest.mark.unit

ENDPOINT = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
CONNECTION_ID = "Ab3dEfGhIAMCJ-Q="  # API Gateway's ids end in '=': percent-encoded in the path
FRAME = b'{"type":"lap.create","seq":7,"data":{"id":"1"}}'


@pytest.fixture(autouse=True)
def signing_at_a_fixed_time(monkeypatch: pytest.MonkeyPatch) -> None:
    sign_at_a_fixed_time(monkeypatch)


def _boto3_request() -> Any:
    import boto3

    client = boto3.session.Session().client("apigatewaymanagementapi", endpoint_url=ENDPOINT, region_name="eu-west-1")
    return boto3_request(client, lambda c: c.post_to_connection(ConnectionId=CONNECTION_ID, Data=FRAME))


def test_the_signed_post_is_the_one_boto3_sends() -> None:
    ours = Poster(ENDPOINT, "eu-west-1").request(CONNECTION_ID, FRAME)
    theirs = _boto3_request()
    assert (ours.method, ours.url, ours.body) == (theirs.method, theirs.url, theirs.body)
    assert ours.url.endswith("/prod/@connections/Ab3dEfGhIAMCJ-Q%3D")
    for header in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
        assert text(ours.headers[header]) == text(theirs.headers[header]), header


def test_a_poster_without_credentials_refuses_to_send_unsigned(monkeypatch: pytest.MonkeyPatch) -> None:
    poster = Poster(ENDPOINT, "eu-west-1")
    monkeypatch.setattr(poster, "_credentials", None)
    with pytest.raises(RuntimeError, match="no AWS credentials"):
        poster.request(CONNECTION_ID, FRAME)


class _Management(BaseHTTPRequestHandler):
    """A stand-in for the @connections API: records each POST's path and body; answers 200 and, when
    `closes` is set, closes the connection after answering without saying so (an idle keep-alive
    connection timed out by the other side)."""

    protocol_version = "HTTP/1.1"
    closes = False
    seen: list[tuple[str, bytes]] = []
    connections = 0

    def setup(self) -> None:
        type(self).connections += 1
        super().setup()

    def do_POST(self) -> None:
        self.seen.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.close_connection = self.closes

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def management() -> Iterator[tuple[str, type[_Management]]]:
    handler = type("Handler", (_Management,), {"seen": [], "connections": 0})
    with serving(handler) as port:
        yield f"http://127.0.0.1:{port}/local", handler


def test_frames_go_over_one_kept_alive_connection(management: tuple[str, type[_Management]]) -> None:
    url, handler = management
    poster = Poster(url, "us-east-1")
    assert [poster.post(CONNECTION_ID, FRAME), poster.post(CONNECTION_ID, b"2")] == [200, 200]
    assert handler.seen == [
        ("/local/@connections/Ab3dEfGhIAMCJ-Q%3D", FRAME),
        ("/local/@connections/Ab3dEfGhIAMCJ-Q%3D", b"2"),
    ]
    assert handler.connections == 1
    poster.close()


def test_a_connection_the_other_side_closed_is_replaced_and_the_frame_sent_once(
    management: tuple[str, type[_Management]],
) -> None:
    url, handler = management
    handler.closes = True
    poster = Poster(url, "us-east-1")
    assert [poster.post(CONNECTION_ID, b"1"), poster.post(CONNECTION_ID, b"2")] == [200, 200]
    assert [body for _, body in handler.seen] == [b"1", b"2"]
    assert handler.connections == 2
    poster.close()


def test_an_endpoint_that_does_not_answer_raises(unused_port: int) -> None:
    poster = Poster(f"http://127.0.0.1:{unused_port}/local", "us-east-1")
    with pytest.raises(OSError):
        poster.post(CONNECTION_ID, FRAME)


@pytest.fixture
def unused_port() -> int:
    from infra.local.ports import free_port

    return free_port()
