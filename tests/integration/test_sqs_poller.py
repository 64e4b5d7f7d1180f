"""The local SQS event source mapping against the emulator: Lambda-shaped events, acks, retries, DLQ."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import boto3
import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from chalice import Chalice
from chalice.app import SQSEvent

from infra.local.emulator import Emulator
from infra.local.ports import free_port
from infra.local.sqs_poller import QueueAlreadyPolledError, SqsPoller

pytestmark = pytest.mark.integration

DEADLINE_S = 30.0


@dataclass
class QueueUnderTest:
    name: str
    url: str
    arn: str
    dlq_url: str


def sqs_client(endpoint_url: str) -> Any:
    return boto3.client("sqs", endpoint_url=endpoint_url, region_name="us-east-1")


@pytest.fixture
def sqs(emulator_url: str) -> Any:
    return sqs_client(emulator_url)


def queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def make_queue(
    sqs: Any, *, name: str | None = None, visibility_timeout_s: int = 1, max_receive_count: int = 2
) -> QueueUnderTest:
    """A uniquely named queue with a 1 s visibility timeout and a DLQ after `max_receive_count`."""
    name = name or f"test-poller-{uuid.uuid4().hex[:12]}"
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = queue_arn(sqs, dlq_url)
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
    url = sqs.create_queue(
        QueueName=name,
        Attributes={"VisibilityTimeout": str(visibility_timeout_s), "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    return QueueUnderTest(name=name, url=url, arn=queue_arn(sqs, url), dlq_url=dlq_url)


@pytest.fixture
def queue(sqs: Any) -> QueueUnderTest:
    return make_queue(sqs)


def poll_until(poller: SqsPoller, done: Callable[[], bool], what: str) -> None:
    """Poll until `done()`; fail naming `what` if it never happens within the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        poller.poll_once()


def wait_until(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.05)


def queue_is_empty(sqs: Any, url: str) -> bool:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return all(attributes[name] == "0" for name in names)


def dlq_bodies(sqs: Any, dlq_url: str) -> list[str]:
    messages = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages", [])
    return [message["Body"] for message in messages]


def send(sqs: Any, queue: QueueUnderTest, *bodies: str) -> list[str]:
    return [sqs.send_message(QueueUrl=queue.url, MessageBody=body)["MessageId"] for body in bodies]


def recording_app(
    queue: QueueUnderTest, respond: Callable[[dict[str, Any]], Any]
) -> tuple[Chalice, list[dict[str, Any]]]:
    """An app whose one SQS handler records every record it is given and answers `respond(event)`."""
    app = Chalice(app_name="poller-test")
    seen: list[dict[str, Any]] = []

    @app.on_sqs_message(queue=queue.name, batch_size=10)
    def handle(event: SQSEvent) -> Any:
        payload = event.to_dict()
        seen.extend(payload["Records"])
        return respond(payload)

    return app, seen


def receives_of(seen: list[dict[str, Any]], body: str) -> list[str]:
    return [record["attributes"]["ApproximateReceiveCount"] for record in seen if record["body"] == body]


def test_handler_gets_lambda_shaped_records_with_unique_ids(sqs: Any, queue: QueueUnderTest) -> None:
    app = Chalice(app_name="poller-test")
    events: list[dict[str, Any]] = []
    contexts: list[Any] = []

    @app.on_sqs_message(queue=queue.name, batch_size=10)
    def handle(event: SQSEvent) -> None:
        events.append(event.to_dict())
        contexts.append(event.context)
        assert [record.body for record in event] == [r["body"] for r in event.to_dict()["Records"]]

    sent = {
        sqs.send_message(
            QueueUrl=queue.url,
            MessageBody=json.dumps({"n": n}),
            MessageAttributes={
                "kind": {"DataType": "String", "StringValue": "lap"},
                "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
            },
        )["MessageId"]: json.dumps({"n": n})
        for n in range(3)
    }
    poller = SqsPoller(app, sqs)
    poll_until(poller, lambda: sum(len(e["Records"]) for e in events) >= 3, "3 records")

    records = [record for event in events for record in event["Records"]]
    assert {record["messageId"]: record["body"] for record in records} == sent
    for record in records:
        assert set(record) >= {
            "messageId",
            "receiptHandle",
            "body",
            "attributes",
            "messageAttributes",
            "md5OfBody",
            "eventSource",
            "eventSourceARN",
            "awsRegion",
        }
        assert record["receiptHandle"]
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"] == queue.arn
        assert record["awsRegion"] == "us-east-1"
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
        assert set(record["attributes"]) >= {
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
        }
        assert record["attributes"]["ApproximateReceiveCount"] == "1"
        assert record["messageAttributes"] == {
            "kind": {
                "stringValue": "lap",
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            },
            "blob": {
                "binaryValue": base64.b64encode(b"\x00\x01").decode(),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "Binary",
            },
        }
    context = contexts[0]
    assert context.function_name == "poller-test-local-handle"
    assert 0 < context.get_remaining_time_in_millis() <= 60_000
    assert context.aws_request_id
    wait_until(lambda: queue_is_empty(sqs, queue.url), "the handled messages to be deleted")


def test_partial_batch_failure_returns_only_the_failed_message(sqs: Any, queue: QueueUnderTest) -> None:
    def respond(event: dict[str, Any]) -> dict[str, Any]:
        # "bad" fails on its first delivery only, so it does not end in the DLQ.
        failures = [
            {"itemIdentifier": record["messageId"]}
            for record in event["Records"]
            if record["body"] == "bad" and record["attributes"]["ApproximateReceiveCount"] == "1"
        ]
        return {"batchItemFailures": failures}

    app, seen = recording_app(queue, respond)
    ok_1, bad, ok_2 = send(sqs, queue, "ok-1", "bad", "ok-2")
    poller = SqsPoller(app, sqs)
    poll_until(poller, lambda: len(receives_of(seen, "bad")) >= 2, "the failed message to come back")

    assert receives_of(seen, "bad") == ["1", "2"]
    assert [record["messageId"] for record in seen if record["body"] == "bad"] == [bad, bad]
    # Same visibility timeout as "bad": had they not been deleted, they would be back by now.
    assert receives_of(seen, "ok-1") == ["1"]
    assert receives_of(seen, "ok-2") == ["1"]
    assert {ok_1, ok_2} <= {record["messageId"] for record in seen}
    wait_until(lambda: queue_is_empty(sqs, queue.url), "the queue to drain")
    assert dlq_bodies(sqs, queue.dlq_url) == []


def test_message_that_always_fails_ends_in_the_dlq_after_max_receive_count(sqs: Any, queue: QueueUnderTest) -> None:
    def respond(event: dict[str, Any]) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}

    app, seen = recording_app(queue, respond)
    send(sqs, queue, "poison")
    poller = SqsPoller(app, sqs)
    in_dlq: list[str] = []

    def dead_lettered() -> bool:
        in_dlq.extend(dlq_bodies(sqs, queue.dlq_url))
        return bool(in_dlq)

    poll_until(poller, dead_lettered, "the message to reach the DLQ")
    assert in_dlq == ["poison"]
    assert receives_of(seen, "poison") == ["1", "2"]
    assert queue_is_empty(sqs, queue.url)


def test_handler_raising_returns_the_whole_batch(
    sqs: Any, queue: QueueUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    secret = f"secret-{uuid.uuid4().hex}"

    def respond(event: dict[str, Any]) -> None:
        if any(r["attributes"]["ApproximateReceiveCount"] == "1" for r in event["Records"]):
            raise RuntimeError("database is down")

    app, seen = recording_app(queue, respond)
    ids = send(sqs, queue, f"{secret}-a", f"{secret}-b")
    poller = SqsPoller(app, sqs)
    with caplog.at_level(logging.ERROR, logger="race.poller"):
        poll_until(
            poller,
            lambda: all(len(receives_of(seen, f"{secret}-{s}")) >= 2 for s in "ab"),
            "both messages to come back",
        )

    for suffix in "ab":
        assert receives_of(seen, f"{secret}-{suffix}") == ["1", "2"]
    wait_until(lambda: queue_is_empty(sqs, queue.url), "the retried batch to be deleted")
    failures = [r for r in caplog.records if r.name == "race.poller" and r.levelno >= logging.ERROR]
    assert failures
    assert all(message_id in caplog.text for message_id in ids)
    assert secret not in caplog.text


def test_invalid_batch_item_failures_fail_the_whole_batch(sqs: Any, queue: QueueUnderTest) -> None:
    def respond(event: dict[str, Any]) -> dict[str, Any] | None:
        if event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "1":
            return {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}
        return None

    app, seen = recording_app(queue, respond)
    send(sqs, queue, "one")
    poller = SqsPoller(app, sqs)
    poll_until(poller, lambda: len(receives_of(seen, "one")) >= 2, "the message to come back")
    wait_until(lambda: queue_is_empty(sqs, queue.url), "the queue to drain")


def test_powertools_batch_processor_works_through_the_poller(sqs: Any, queue: QueueUnderTest) -> None:
    app = Chalice(app_name="poller-test")
    processor = BatchProcessor(event_type=EventType.SQS)
    handled: list[tuple[str, str]] = []

    def record_handler(record: SQSRecord) -> None:
        handled.append((record.body, record.attributes.approximate_receive_count))
        if record.body == "bad" and record.attributes.approximate_receive_count == "1":
            raise ValueError("bad record")

    @app.on_sqs_message(queue=queue.name, batch_size=10)
    def handle(event: SQSEvent) -> PartialItemFailureResponse:
        return process_partial_response(
            event=event.to_dict(),
            record_handler=record_handler,
            processor=processor,
            context=cast(Any, event.context),
        )

    send(sqs, queue, "good-1", "bad", "good-2")
    poller = SqsPoller(app, sqs)
    poll_until(poller, lambda: ("bad", "2") in handled, "the failed record to come back")

    assert sorted(handled) == [("bad", "1"), ("bad", "2"), ("good-1", "1"), ("good-2", "1")]
    wait_until(lambda: queue_is_empty(sqs, queue.url), "the queue to drain")


def test_batch_size_caps_records_per_invocation(sqs: Any, queue: QueueUnderTest) -> None:
    app = Chalice(app_name="poller-test")
    batches: list[int] = []

    @app.on_sqs_message(queue=queue.name, batch_size=2)
    def handle(event: SQSEvent) -> None:
        batches.append(len(event.to_dict()["Records"]))

    send(sqs, queue, *[f"m{n}" for n in range(5)])
    poller = SqsPoller(app, sqs)
    poll_until(poller, lambda: sum(batches) >= 5, "all five messages")
    assert max(batches) <= 2


@pytest.fixture
def private_emulator(tmp_path: Any) -> Iterator[Emulator]:
    emulator = Emulator(port=free_port(), log_path=tmp_path / "moto.log")
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


def test_threads_survive_an_emulator_restart_and_stop_promptly(
    private_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    sqs = sqs_client(private_emulator.endpoint_url)
    queue = make_queue(sqs)
    app, seen = recording_app(queue, lambda event: None)
    poller = SqsPoller(app, sqs)
    with caplog.at_level(logging.INFO, logger="race.poller"):
        poller.start_in_thread()
        try:
            send(sqs, queue, "before")
            wait_until(lambda: receives_of(seen, "before") == ["1"], "the first message")

            private_emulator.stop()
            wait_until(
                lambda: any("cannot poll" in r.getMessage() for r in caplog.records),
                "the outage to be noticed",
            )
            private_emulator.start()
            # moto keeps state in memory: the restarted emulator needs its queue again.
            make_queue(sqs, name=queue.name)
            send(sqs, queue, "after")
            wait_until(lambda: receives_of(seen, "after") == ["1"], "the poller to recover")
        finally:
            threads = list(poller._threads)
            poller.stop()
    assert not any(thread.is_alive() for thread in threads)
    outage_warnings = [r for r in caplog.records if "cannot poll" in r.getMessage()]
    assert len(outage_warnings) == 1
    assert any("polling again" in r.getMessage() for r in caplog.records)


def test_a_fifo_queue_keeps_each_groups_order_and_one_slow_group_holds_back_no_other(sqs: Any) -> None:
    name = f"test-poller-{uuid.uuid4().hex[:12]}.fifo"
    url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true", "VisibilityTimeout": "30"})["QueueUrl"]
    app = Chalice(app_name="poller-test")
    seen: list[tuple[str, str, float]] = []
    release_slow = threading.Event()

    @app.on_sqs_message(queue=name, batch_size=10)
    def handle(event: SQSEvent) -> Any:
        for record in event.to_dict()["Records"]:
            group = record["attributes"]["MessageGroupId"]
            if group == "slow":
                release_slow.wait(DEADLINE_S)  # a session whose publisher is stuck on a slow socket
            seen.append((group, record["body"], time.monotonic()))
        return {}

    def put(group: str, n: int) -> None:
        for i in range(n):
            body = f"{group}-{i}"
            sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=body)

    poller = SqsPoller(app, sqs, wait_time_s=1)
    put("slow", 3)
    poller.start_in_thread()
    try:
        wait_until(
            lambda: (
                sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"][
                    "ApproximateNumberOfMessagesNotVisible"
                ]
                != "0"
            ),
            "the slow group in flight",
        )
        put("fast", 5)
        wait_until(lambda: len([s for s in seen if s[0] == "fast"]) == 5, "the other group, while the slow one waits")
        assert not [s for s in seen if s[0] == "slow"]
        release_slow.set()
        wait_until(lambda: len(seen) == 8 and queue_is_empty(sqs, url), "everything handled and deleted")
    finally:
        release_slow.set()
        poller.stop()
    for group, n in (("slow", 3), ("fast", 5)):
        assert [body for g, body, _ in seen if g == group] == [f"{group}-{i}" for i in range(n)]


def test_a_second_poller_of_a_fifo_queue_is_refused_until_the_first_stops(sqs: Any) -> None:
    # Two pollers of one FIFO queue make moto's long poll spin while the other holds the group.
    name = f"test-poller-{uuid.uuid4().hex[:12]}.fifo"
    sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})
    app = Chalice(app_name="poller-test")

    @app.on_sqs_message(queue=name, batch_size=10)
    def handle(event: SQSEvent) -> Any:
        return {}

    first = SqsPoller(app, sqs, wait_time_s=0)
    first.start_in_thread()
    try:
        with pytest.raises(QueueAlreadyPolledError, match=name):
            SqsPoller(app, sqs, wait_time_s=0).start_in_thread()
        SqsPoller(app, sqs, wait_time_s=0, skip={name}).start_in_thread()  # polls nothing: allowed
    finally:
        first.stop()
    second = SqsPoller(app, sqs, wait_time_s=0)
    second.start_in_thread()  # the queue is free again
    second.stop()


def test_standard_queues_may_have_several_pollers(sqs: Any, queue: QueueUnderTest) -> None:
    app, seen = recording_app(queue, lambda event: {})
    pollers = [SqsPoller(app, sqs, wait_time_s=0) for _ in range(2)]
    for poller in pollers:
        poller.start_in_thread()
    try:
        send(sqs, queue, "one", "two")
        wait_until(lambda: len(seen) == 2, "both messages handled")
    finally:
        for poller in pollers:
            poller.stop()
