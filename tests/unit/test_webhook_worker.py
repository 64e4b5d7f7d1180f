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


def _ids(n: int) -> list[str]:
    import uuid

    return [str(uuid.uuid4()) for _ in range(n)]


def test_a_writes_deliveries_travel_together_in_messages_of_at_most_a_hundred() -> None:
    account, other = "a0c1", "b0c2"
    messages = [queue.Message(d, account) for d in _ids(230)] + [queue.Message(d, other) for d in _ids(2)]
    messages += [queue.Message(d, account, 30.0) for d in _ids(3)]  # retries due later travel apart
    packs = queue.packs(messages)
    assert [(len(p), p[0].account_id, p[0].delay_s) for p in packs] == [
        (100, account, 0),
        (100, account, 0),
        (30, account, 0),
        (2, other, 0),
        (3, account, 30.0),
    ]
    body = queue.pack_body(packs[0])
    assert json.loads(body) == {"accountId": account, "deliveryIds": [m.delivery_id for m in messages[:100]]}
    assert queue.parse_many(body) == [m.delivery_id for m in messages[:100]]
    assert len(body.encode()) < 8 * 1024  # far under SQS's 256 KB
    assert queue.parse_many(queue.pack_body(messages[:1])) == [messages[0].delivery_id]  # one: the old shape
    old_shape = json.dumps({"accountId": account, "deliveryIds": [m.delivery_id for m in messages[:10]]})
    assert queue.parse_many(old_shape) == [m.delivery_id for m in messages[:10]]  # messages queued before


@pytest.mark.parametrize(
    "body",
    [
        '{"deliveryIds": []}',
        '{"deliveryIds": "x"}',
        '{"deliveryIds": ["not-a-uuid"]}',
        json.dumps({"deliveryIds": _ids(101)}),  # more than a message ever carries
        '{"deliveryIds": [5]}',
    ],
)
def test_a_body_that_is_not_a_pack_of_deliveries_is_refused(body: str) -> None:
    assert queue.parse_many(body) is None
