"""The worker's handling of queue messages that are not deliveries, and the queue message format."""

from __future__ import annotations

import json

import pytest

from chalicelib.webhooks import queue, worker

pytestmark = pytest.mark.unit

DELIVERY = "6f1d9a4e-0b7c-4c59-9d59-8f7d2c1b5a10"


def _record(message_id: str, body: str) -> dict[str, object]:
    return {
        "messageId": message_id,
        "receiptHandle": "r",
        "body": body,
        "attributes": {},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:race-webhook-deliveries",
        "awsRegion": "us-east-1",
    }


def test_the_message_names_the_delivery_and_its_account() -> None:
    message = queue.Message(DELIVERY, "a0c1", 30.0)
    assert json.loads(message.body()) == {"deliveryId": DELIVERY, "accountId": "a0c1"}
    assert queue.parse(message.body()) == DELIVERY


@pytest.mark.parametrize(
    "body", ["", "{", "[]", '{"deliveryId": 5}', '{"deliveryId": "not-a-uuid"}', '{"importId": "x"}']
)
def test_bodies_that_are_not_deliveries_are_refused(body: str) -> None:
    assert queue.parse(body) is None


def test_messages_that_are_not_deliveries_are_reported_failed_so_they_reach_the_dlq() -> None:
    event = {"Records": [_record("m1", "garbage"), _record("m2", '{"deliveryId": "nope"}')]}
    response = worker.handle(event, None)
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == ["m1", "m2"]


def test_an_empty_batch_is_a_success() -> None:
    assert worker.handle({"Records": []}, None) == {"batchItemFailures": []}
