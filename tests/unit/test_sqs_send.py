"""The after-commit SQS sends are the request boto3 would send: same URL, body, target and SigV4
signature; SQS's errors are told apart as boto3's standard retry mode does."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from chalicelib.store.sqs_send import SqsError, SqsSender
from tests.http_servers import serving
from tests.signing import boto3_request, sign_at_a_fixed_time, text

pytestmark = pytest.mark.unit


ENDPOINT = "https://sqs.eu-west-1.amazonaws.com"
QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/race-rooms.fifo"
ENTRIES: list[dict[str, Any]] = [
    {"Id": "0", "MessageBody": '{"eventIds":[1]}', "MessageGroupId": "s", "MessageDeduplicationId": "d"},
    {"Id": "1", "MessageBody": "caf\u00e9", "DelaySeconds": 3},
]


@pytest.fixture(autouse=True)
def signing_at_a_fixed_time(monkeypatch: pytest.MonkeyPatch) -> None:
    sign_at_a_fixed_time(monkeypatch)


def _boto3_request() -> Any:
    import boto3

    client = boto3.session.Session().client("sqs", region_name="eu-west-1")
    assert client.meta.endpoint_url == ENDPOINT
    return boto3_request(client, lambda c: c.send_message_batch(QueueUrl=QUEUE_URL, Entries=ENTRIES))


def test_the_signed_send_is_the_one_boto3_sends() -> None:
    ours = SqsSender(ENDPOINT, "eu-west-1").request(QUEUE_URL, ENTRIES)
    theirs = _boto3_request()
    assert (ours.method, ours.url, ours.body) == (theirs.method, theirs.url, theirs.body)
    for header in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Target", "Content-Type"):
        assert text(ours.headers[header]) == text(theirs.headers[header]), header
    assert text(ours.headers["x-amzn-query-mode"]) == text(theirs.headers["x-amzn-query-mode"])


class _Sqs(BaseHTTPRequestHandler):
    """Answers each POST with the next of `answers` (status, JSON body); counts the POSTs."""

    protocol_version = "HTTP/1.1"
    answers: list[tuple[int, bytes]] = []
    posts = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).posts += 1
        status, body = self.answers.pop(0)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _sqs(*answers: tuple[int, bytes]) -> tuple[type[_Sqs], Any]:
    handler = type("Handler", (_Sqs,), {"answers": list(answers), "posts": 0})
    return handler, serving(handler)


OK = (200, b'{"Successful":[{"Id":"0","MessageId":"m0"}],"Failed":[]}')


def test_a_throttled_or_failing_sqs_is_tried_once_more(closed_after: Any) -> None:
    handler, server = _sqs((503, b'{"__type":"ServiceUnavailable","message":"try later"}'), OK)
    with server as port:
        answer = closed_after(SqsSender(f"http://127.0.0.1:{port}", "us-east-1")).send_message_batch(
            QUEUE_URL, ENTRIES[:1]
        )
    assert answer["Successful"] == [{"Id": "0", "MessageId": "m0"}]
    assert handler.posts == 2


def test_a_refused_request_raises_its_code_without_a_second_try(closed_after: Any) -> None:
    missing = (400, b'{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}')
    handler, server = _sqs(missing, OK)
    with server as port, pytest.raises(SqsError) as refused:
        closed_after(SqsSender(f"http://127.0.0.1:{port}", "us-east-1")).send_message_batch(QUEUE_URL, ENTRIES[:1])
    assert (refused.value.status, refused.value.code) == (400, "QueueDoesNotExist")
    assert handler.posts == 1


def test_twice_unavailable_raises(closed_after: Any) -> None:
    handler, server = _sqs((500, b"oops"), (500, b"oops"))
    with server as port, pytest.raises(SqsError, match="SQS 500 HTTP500"):
        closed_after(SqsSender(f"http://127.0.0.1:{port}", "us-east-1")).send_message_batch(QUEUE_URL, ENTRIES[:1])
    assert handler.posts == 2


def test_an_unreachable_endpoint_raises_a_connection_error(closed_after: Any) -> None:
    from infra.local.ports import free_port

    with pytest.raises(OSError):
        closed_after(SqsSender(f"http://127.0.0.1:{free_port()}", "us-east-1")).send_message_batch(
            QUEUE_URL, ENTRIES[:1]
        )


def test_two_sends_started_from_one_thread_are_in_flight_together_on_kept_alive_connections(
    closed_after: Any,
) -> None:
    import threading

    both_in = threading.Barrier(2, timeout=5)  # one send after the other, the first would wait here in vain
    ports: set[int] = set()

    class Together(_Sqs):
        def do_POST(self) -> None:
            ports.add(self.client_address[1])
            if type(self).posts < 2:
                both_in.wait()
            super().do_POST()

    handler = type("Handler", (Together,), {"answers": [OK, OK, OK], "posts": 0})
    with serving(handler) as port:
        sender = closed_after(SqsSender(f"http://127.0.0.1:{port}", "us-east-1"))
        first = sender.start_message_batch(QUEUE_URL, ENTRIES[:1])
        second = sender.start_message_batch(QUEUE_URL, ENTRIES[:1])
        assert first()["Successful"] == second()["Successful"] == [{"Id": "0", "MessageId": "m0"}]
        assert not both_in.broken
        sender.send_message_batch(QUEUE_URL, ENTRIES[:1])  # on one of the two, kept alive
    assert handler.posts == 3
    assert len(ports) == 2
