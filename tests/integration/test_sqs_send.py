"""The after-commit SQS sends against the emulator over HTTP: what boto3 receives is what was sent."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest

from chalicelib.store.sqs_send import SqsError, SqsSender

pytestmark = pytest.mark.integration


@pytest.fixture
def sqs(emulator_url: str) -> Any:
    return boto3.client("sqs", endpoint_url=emulator_url, region_name="us-east-1")


def test_a_fifo_batch_arrives_in_order_with_its_group_and_deduplication(
    sqs: Any, emulator_url: str, closed_after: Any
) -> None:
    url = sqs.create_queue(QueueName=f"test-send-{uuid.uuid4().hex[:12]}.fifo", Attributes={"FifoQueue": "true"})[
        "QueueUrl"
    ]
    entries = [
        {"Id": str(n), "MessageBody": json.dumps({"n": n, "text": "caf\u00e9"}), "MessageGroupId": "session-1"}
        | {"MessageDeduplicationId": f"d{n}"}
        for n in range(3)
    ]
    sender = closed_after(SqsSender(emulator_url, "us-east-1"))
    answer = sender.send_message_batch(url, entries)
    assert sorted(s["Id"] for s in answer["Successful"]) == ["0", "1", "2"] and not answer.get("Failed")
    again = sender.send_message_batch(url, entries[:1])  # the same deduplication id: queued once
    assert [s["Id"] for s in again["Successful"]] == ["0"]
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    assert [json.loads(m["Body"]) for m in got] == [{"n": n, "text": "caf\u00e9"} for n in range(3)]
    assert {m["Attributes"]["MessageGroupId"] for m in got} == {"session-1"}


def test_a_delayed_entry_is_not_visible_at_once(sqs: Any, emulator_url: str, closed_after: Any) -> None:
    url = sqs.create_queue(QueueName=f"test-send-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    answer = closed_after(SqsSender(emulator_url, "us-east-1")).send_message_batch(
        url, [{"Id": "now", "MessageBody": "a"}, {"Id": "later", "MessageBody": "b", "DelaySeconds": 60}]
    )
    assert sorted(s["Id"] for s in answer["Successful"]) == ["later", "now"]
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == ["a"]


def test_a_queue_that_does_not_exist_is_refused_with_its_code(emulator_url: str, closed_after: Any) -> None:
    with pytest.raises(SqsError) as refused:
        closed_after(SqsSender(emulator_url, "us-east-1")).send_message_batch(
            f"{emulator_url}/000000000000/no-such-queue-{uuid.uuid4().hex[:8]}", [{"Id": "0", "MessageBody": "a"}]
        )
    assert refused.value.status == 400
    assert refused.value.code in ("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"), refused.value
