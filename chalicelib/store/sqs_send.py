"""SendMessageBatch as boto3 sends it (SQS's JSON protocol, signed by botocore's SigV4 signer) over
a kept-alive http.client connection: the two sends after every lap write commits (the room message,
the webhook deliveries) cost the API ~1.0-1.4 ms of CPU each through boto3's client, ~0.4 ms this way.

The endpoint and region are the boto3 client's own (`client("sqs").meta`), so AWS_ENDPOINT_URL,
FIPS or any other endpoint rule resolves exactly as for every other SQS call. Like the client
(standard retry mode, two attempts), a connection error, a 5xx or a throttling answer is tried once
more; SQS's answer is returned as boto3 returns it ({"Successful": [...], "Failed": [...]}).
"""

from __future__ import annotations

import functools
import http.client
import json
from collections.abc import Callable
from typing import Any

from chalicelib.store.signed_http import SignedHttp

TARGET = "AmazonSQS.SendMessageBatch"
HEADERS = {
    "X-Amz-Target": TARGET,
    "Content-Type": "application/x-amz-json-1.0",
    "x-amzn-query-mode": "true",  # SQS answers errors with their query-protocol codes, as boto3 asks
}
ATTEMPTS = 2


class SqsError(Exception):
    """SQS refused the request: its HTTP status, error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"SQS {status} {code}: {message}")
        self.status, self.code = status, code

    @property
    def retryable(self) -> bool:
        return self.status >= 500 or "throttl" in self.code.lower()

    @classmethod
    def of(cls, status: int, body: bytes) -> SqsError:
        try:
            answer = json.loads(body or b"{}")
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        code = str(answer.get("__type") or answer.get("code") or "").rsplit("#", 1)[-1] or f"HTTP{status}"
        return cls(status, code, str(answer.get("message") or answer.get("Message") or body[:200]))


class SqsSender(SignedHttp):
    """SendMessageBatch to the SQS endpoint; one per endpoint and container."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        super().__init__(endpoint_url, "sqs", region)

    def request(self, queue_url: str, entries: list[dict[str, Any]]) -> Any:
        """The signed request (botocore's AWSPreparedRequest)."""
        body = json.dumps({"QueueUrl": queue_url, "Entries": entries}).encode()
        return self.signed(f"{self.endpoint_url}/", body, dict(HEADERS))

    def send_message_batch(self, queue_url: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
        """Queue the entries; SQS's answer ({"Successful", "Failed"}). Raises SqsError or OSError."""
        return self.start_message_batch(queue_url, entries)()

    def start_message_batch(self, queue_url: str, entries: list[dict[str, Any]]) -> Callable[[], dict[str, Any]]:
        """Write the request now; the returned call reads SQS's answer as `send_message_batch` returns
        it (the second attempt, when one is needed, is made there)."""
        unsent: OSError | http.client.HTTPException | None = None
        try:
            pending: Callable[[], tuple[int, bytes]] | None = self.start(self.request(queue_url, entries))
        except (OSError, http.client.HTTPException) as exc:
            pending, unsent = None, exc  # the first attempt failed: the answer makes the second

        def answer() -> dict[str, Any]:
            nonlocal pending
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    if pending is None:
                        if attempt == 1 and unsent is not None:
                            raise unsent
                        pending = self.start(self.request(queue_url, entries))
                    status, body = pending()
                except (OSError, http.client.HTTPException):
                    if attempt == ATTEMPTS:
                        raise
                    continue
                finally:
                    pending = None
                if status == 200:
                    answer: dict[str, Any] = json.loads(body)
                    return answer
                error = SqsError.of(status, body)
                if attempt == ATTEMPTS or not error.retryable:
                    raise error
            raise AssertionError("unreachable")

        return answer


def send_message_batch(queue_url: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """SendMessageBatch through the container's sender for the SQS client's endpoint."""
    return start_message_batch(queue_url, entries)()


def start_message_batch(queue_url: str, entries: list[dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """SendMessageBatch written now; the returned call reads the answer (SqsSender.start_message_batch)."""
    from chalicelib.store.aws import client

    meta = client("sqs").meta
    return _sender(meta.endpoint_url, meta.region_name).start_message_batch(queue_url, entries)


def start_unsent(
    queue_url: Callable[[], str], entries: list[dict[str, Any]], forget_url: Callable[[], None]
) -> Callable[[], list[int]]:
    """A batch (entries with Ids "0", "1", ...) written now; the returned call gives the indexes of the
    entries NOT queued, and never raises: on any error all of them, after `forget_url` (the queue may
    be back under another URL: recreated, an emulator restart)."""
    from chalicelib.store.aws import translated_errors

    every = list(range(len(entries)))
    try:
        with translated_errors("sqs"):
            pending = start_message_batch(queue_url(), entries)
    except Exception:
        forget_url()
        return lambda: every

    def unsent() -> list[int]:
        try:
            with translated_errors("sqs"):
                answer = pending()
        except Exception:
            forget_url()
            return every
        return [int(failure["Id"]) for failure in answer.get("Failed", [])]

    return unsent


@functools.cache
def _sender(endpoint_url: str, region: str) -> SqsSender:
    return SqsSender(endpoint_url, region)


def forget() -> None:
    _sender.cache_clear()
