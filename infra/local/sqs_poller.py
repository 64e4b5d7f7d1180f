"""Local stand-in for Lambda's SQS event source mapping: polls the app's queues and invokes its handlers."""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import chalice
from chalice.app import SQSEventConfig

log = logging.getLogger("race.poller")

ACCOUNT_ID = "123456789012"  # moto's default account; only used in ARNs we make up
LAMBDA_TIMEOUT_S = 60  # Chalice's default lambda_timeout
LAMBDA_MEMORY_MB = 128  # Chalice's default lambda_memory_size
MAX_RECEIVE = 10  # SQS caps one ReceiveMessage (and one DeleteMessageBatch) at 10 messages
FIRST_BACKOFF_S = 0.25
# FIFO queues: message groups handled at once (Lambda runs a function per group in flight), and how
# long to wait between short polls while groups are in flight.
FIFO_GROUPS_AT_ONCE = 4
FIFO_BUSY_POLL_S = 0.02
MAX_BACKOFF_S = 5.0

Handler = Callable[[dict[str, Any], Any], Any]

# The FIFO queues a running poller of this process polls, by (emulator URL, queue name). A second
# poller of one is refused: it long-polls while the first holds the group, and moto's long poll then
# spins a core for the whole wait (measured: 77% of the emulator's CPU in bench_load, room pushes
# seconds late). Lambda has one event source mapping per FIFO queue, which handles groups
# concurrently (as `_poll_groups` does); standard queues may have several pollers, as Lambda scales.
_polled: set[tuple[str, str]] = set()
_polled_lock = threading.Lock()


class QueueAlreadyPolledError(RuntimeError):
    """Another running poller of this process polls the FIFO queue already."""


class LambdaContext:
    """The attributes and method of Lambda's Python context object that handlers and Powertools read."""

    def __init__(self, function_name: str, region: str, timeout_s: float = LAMBDA_TIMEOUT_S) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name}"
        self.memory_limit_in_mb = LAMBDA_MEMORY_MB
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def lambda_function_name(app: chalice.Chalice, handler_name: str) -> str:
    """The name Chalice deploys a handler's function under: {app}-{stage}-{handler}."""
    return f"{app.app_name}-{os.environ.get('STAGE', 'local')}-{handler_name}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _lambda_message_attribute(attribute: dict[str, Any]) -> dict[str, Any]:
    """One message attribute as Lambda shows it (camelCase, binary values base64-encoded)."""
    shaped: dict[str, Any] = {}
    if "StringValue" in attribute:
        shaped["stringValue"] = attribute["StringValue"]
    if "BinaryValue" in attribute:
        shaped["binaryValue"] = _b64(attribute["BinaryValue"])
    shaped["stringListValues"] = list(attribute.get("StringListValues", []))
    shaped["binaryListValues"] = [_b64(value) for value in attribute.get("BinaryListValues", [])]
    shaped["dataType"] = attribute["DataType"]
    return shaped


def lambda_sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """A received SQS message as one record of the event Lambda's SQS event source mapping sends."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _lambda_message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update({"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region})
    return record


def failed_message_ids(response: Any, message_ids: list[str]) -> set[str]:
    """The ids a handler's response reports as failed, read as Lambda's ReportBatchItemFailures does.

    A missing or empty `batchItemFailures` is a complete success; a malformed one (not a list, an item
    without a non-empty `itemIdentifier`, an id not in the batch) fails the whole batch.
    """
    if not isinstance(response, dict):
        return set()
    failures = response.get("batchItemFailures")
    if not failures:
        return set()
    everything = set(message_ids)
    if not isinstance(failures, list):
        return everything
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in everything:
            return everything
        failed.add(identifier)
    return failed


@dataclass
class _Source:
    """One `on_sqs_message` event source and what the poller learnt about its queue."""

    config: SQSEventConfig
    queue_name: str
    handler: Handler
    function_name: str
    url: str | None = None
    arn: str | None = None
    in_flight: set[futures.Future[None]] = field(default_factory=set)  # FIFO: group batches being handled


def _queue_name(source: SQSEventConfig) -> str:
    return source.queue or (source.queue_arn or "").rsplit(":", 1)[-1]


def _wanted(name: str, only: set[str] | None, skip: set[str]) -> bool:
    return (only is None or name in only) and name not in skip


def room_publisher(app: chalice.Chalice, endpoint_url: str) -> SqsPoller:
    """A poller of the room queue only, started: what a stack without the full poller needs for live rooms."""
    import boto3

    from chalicelib.resources import ROOM_QUEUE

    poller = SqsPoller(app, boto3.client("sqs", endpoint_url=endpoint_url), only={ROOM_QUEUE.name})
    poller.start_in_thread()
    return poller


class SqsPoller:
    """Receives from every SQS event source of a Chalice app and invokes its handler like Lambda does.

    Acknowledgement follows Lambda: a handler that raises leaves the whole batch to come back after
    the queue's visibility timeout; a `batchItemFailures` response deletes all but the reported
    messages. Retries and dead-lettering are the queue's (visibility timeout, RedrivePolicy).
    """

    def __init__(
        self,
        app: chalice.Chalice,
        sqs_client: Any,
        *,
        wait_time_s: int = 1,
        queue_url_for: Callable[[str], str] | None = None,
        only: set[str] | None = None,
        skip: set[str] | None = None,
    ) -> None:
        """`only`: the queue names to poll (default every SQS event source of the app); `skip`: names
        not to poll (e.g. the room queue, when `room_publisher` polls it)."""
        self._app = app
        self._sqs = sqs_client
        self._wait_time_s = wait_time_s
        self._queue_url_for = queue_url_for or self._get_queue_url
        self._region: str = sqs_client.meta.region_name or "us-east-1"
        self._sources = [
            _Source(
                config=source,
                queue_name=_queue_name(source),
                handler=app.handler_map[source.name],
                function_name=lambda_function_name(app, source.name),
                arn=source.queue_arn,
            )
            for source in app.event_sources
            if isinstance(source, SQSEventConfig) and _wanted(_queue_name(source), only, skip or set())
        ]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def queue_names(self) -> list[str]:
        """The queues this poller polls."""
        return [source.queue_name for source in self._sources]

    def poll_once(self) -> int:
        """One receive per event source, then invoke and acknowledge; returns the records handed over.

        Handler errors are logged and swallowed; errors talking to SQS propagate (the threads retry).
        """
        return sum(self._poll(source, threading.Event()) for source in self._sources)

    def start_in_thread(self) -> None:
        """Poll every event source in its own daemon thread until stop(). Raises
        QueueAlreadyPolledError, starting nothing, when another running poller polls one of its FIFO queues."""
        if self._threads:
            return
        self._claim()
        # A fresh event per start, so a straggler from a previous start can never resume.
        self._stop = threading.Event()
        for source in self._sources:
            thread = threading.Thread(
                target=self._run,
                args=(source, self._stop),
                name=f"sqs-poller-{source.queue_name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Ask the threads to finish and wait for them about as long as one long poll lasts."""
        self._stop.set()
        deadline = time.monotonic() + self._wait_time_s + 1.0
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if self._threads:
            with _polled_lock:
                _polled.difference_update(self._claims())
        self._threads = []

    def _claims(self) -> set[tuple[str, str]]:
        endpoint = str(self._sqs.meta.endpoint_url)
        return {(endpoint, source.queue_name) for source in self._sources if source.queue_name.endswith(".fifo")}

    def _claim(self) -> None:
        claims = self._claims()
        with _polled_lock:
            taken = sorted(name for _, name in claims & _polled)
            if taken:
                raise QueueAlreadyPolledError(
                    f"another poller of this process polls {', '.join(taken)} already: pass `only=` so each "
                    "queue has one poller"
                )
            _polled.update(claims)

    def _run(self, source: _Source, stop: threading.Event) -> None:
        if source.queue_name.endswith(".fifo"):
            with futures.ThreadPoolExecutor(FIFO_GROUPS_AT_ONCE, f"sqs-{source.queue_name}") as groups:
                self._run_polls(source, stop, lambda: self._poll_groups(source, stop, groups))
        else:
            self._run_polls(source, stop, lambda: self._poll(source, stop))

    def _run_polls(self, source: _Source, stop: threading.Event, poll: Callable[[], int]) -> None:
        backoff = FIRST_BACKOFF_S
        failing = False
        while not stop.is_set():
            try:
                if poll() == 0 and self._wait_time_s <= 0:
                    stop.wait(0.1)  # short polling: do not spin on an empty queue
            except Exception as exc:
                if not failing:
                    log.warning(
                        "queue %s: cannot poll (%s: %s); retrying until it answers",
                        source.queue_name,
                        type(exc).__name__,
                        exc,
                    )
                    failing = True
                source.url = None  # the queue may come back under a new URL (emulator restart)
                stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            if failing:
                log.info("queue %s: polling again", source.queue_name)
                failing = False
                backoff = FIRST_BACKOFF_S

    def _poll(self, source: _Source, stop: threading.Event) -> int:
        url = self._resolve(source)
        messages = self._receive_batch(source, url, stop)
        if not messages:
            return 0
        self._handle(source, url, messages)
        return len(messages)

    def _poll_groups(self, source: _Source, stop: threading.Event, groups: futures.ThreadPoolExecutor) -> int:
        """A FIFO queue: each message group of a receive is handled in a thread of its own, so one
        session's slow batch holds back only that session; SQS hands out no more of a group while
        its batch is in flight. While groups are in flight the poll is short: moto's long poll spins
        a core when every visible message belongs to a group in flight."""
        in_flight = source.in_flight
        in_flight -= {f for f in in_flight if f.done()}
        if len(in_flight) >= FIFO_GROUPS_AT_ONCE:
            futures.wait(in_flight, timeout=self._wait_time_s or FIFO_BUSY_POLL_S, return_when=futures.FIRST_COMPLETED)
            return -1  # not idle
        url = self._resolve(source)
        messages = self._receive(url, source.config.batch_size, 0 if in_flight else self._wait_time_s)
        if not messages:
            if in_flight:
                futures.wait(in_flight, timeout=FIFO_BUSY_POLL_S, return_when=futures.FIRST_COMPLETED)
                return -1
            return 0
        by_group: dict[str, list[dict[str, Any]]] = {}
        for message in messages:
            by_group.setdefault(message.get("Attributes", {}).get("MessageGroupId", ""), []).append(message)
        for batch in by_group.values():
            in_flight.add(groups.submit(self._handle, source, url, batch))
        return len(messages)

    def _handle(self, source: _Source, url: str, messages: list[dict[str, Any]]) -> None:
        assert source.arn is not None
        records = [lambda_sqs_record(message, source.arn, self._region) for message in messages]
        failed = self._invoke(source, {"Records": records})
        self._delete(source, url, [message for message in messages if message["MessageId"] not in failed])

    def _resolve(self, source: _Source) -> str:
        if source.url is None:
            url = self._queue_url_for(source.queue_name)
            if source.arn is None:
                source.arn = self._queue_arn(url, source.queue_name)
            source.url = url
        return source.url

    def _get_queue_url(self, queue_name: str) -> str:
        return str(self._sqs.get_queue_url(QueueName=queue_name)["QueueUrl"])

    def _queue_arn(self, url: str, queue_name: str) -> str:
        attributes = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        fallback = f"arn:aws:sqs:{self._region}:{ACCOUNT_ID}:{queue_name}"
        return str(attributes.get("Attributes", {}).get("QueueArn", fallback))

    def _receive(self, url: str, max_messages: int, wait_s: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=max(1, min(MAX_RECEIVE, max_messages)),
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def _receive_batch(self, source: _Source, url: str, stop: threading.Event) -> list[dict[str, Any]]:
        """Up to batch_size messages: one long poll, then more until the batching window closes."""
        batch_size = source.config.batch_size
        messages = self._receive(url, batch_size, self._wait_time_s)
        window_s = source.config.maximum_batching_window_in_seconds
        if not messages or window_s <= 0:
            return messages
        deadline = time.monotonic() + window_s
        while len(messages) < batch_size and not stop.is_set():
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                break
            wait_s = math.ceil(remaining_s)
            messages += self._receive(url, batch_size - len(messages), min(wait_s, max(1, self._wait_time_s)))
        return messages

    def _invoke(self, source: _Source, event: dict[str, Any]) -> set[str]:
        """Run the handler on one batch; returns the ids of the messages that must not be deleted."""
        message_ids = [record["messageId"] for record in event["Records"]]
        context = LambdaContext(source.function_name, self._region)
        try:
            # Lambda hands over JSON and serialises the response: an unserialisable one is an error.
            response = json.loads(json.dumps(source.handler(event, context)))
        except Exception:
            log.exception(
                "handler %s failed on a batch of %d from %s; all return after the visibility timeout: %s",
                source.config.name,
                len(message_ids),
                source.queue_name,
                ", ".join(message_ids),
            )
            return set(message_ids)
        failed = failed_message_ids(response, message_ids)
        if failed:
            log.warning(
                "handler %s reported %d of %d messages from %s as failed: %s",
                source.config.name,
                len(failed),
                len(message_ids),
                source.queue_name,
                ", ".join(sorted(failed)),
            )
        return failed

    def _delete(self, source: _Source, url: str, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), MAX_RECEIVE):
            chunk = messages[start : start + MAX_RECEIVE]
            entries = [
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]} for index, message in enumerate(chunk)
            ]
            try:
                response = self._sqs.delete_message_batch(QueueUrl=url, Entries=entries)
            except Exception as exc:
                log.error(
                    "queue %s: deleting %s failed (%s: %s); they will be delivered again",
                    source.queue_name,
                    ", ".join(message["MessageId"] for message in chunk),
                    type(exc).__name__,
                    exc,
                )
                continue
            for failure in response.get("Failed", []):
                log.error(
                    "queue %s: deleting %s failed (%s); it will be delivered again",
                    source.queue_name,
                    chunk[int(failure["Id"])]["MessageId"],
                    failure.get("Code", "unknown"),
                )
