"""The webhook delivery queue (SQS): one small message per delivery, `{"deliveryId", "accountId"}`."""

from __future__ import annotations

import functools
import json
import math
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from chalicelib.config import settings
from chalicelib.store.aws import client, translated_errors

MAX_BATCH = 10  # SQS SendMessageBatch limit
MAX_DELAY_S = 900  # SQS DelaySeconds limit; longer waits are left to the sweep
SEND_THREADS = 8  # batches sent at once for a bulk write (a lap import, a recovery)


@dataclass(frozen=True)
class Message:
    delivery_id: str
    account_id: str
    delay_s: float = 0.0

    def body(self) -> str:
        return json.dumps({"deliveryId": self.delivery_id, "accountId": self.account_id}, separators=(",", ":"))


@functools.cache
def _queue_url(name: str) -> str:
    with translated_errors("sqs"):
        return str(client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


def send(messages: Sequence[Message]) -> list[str]:
    """Send the messages (batches of 10, several batches at once for a bulk write); returns the delivery
    ids whose message was NOT sent."""
    chunks = [messages[start : start + MAX_BATCH] for start in range(0, len(messages), MAX_BATCH)]
    if len(chunks) <= 2:
        return [delivery_id for chunk in chunks for delivery_id in _send_batch(chunk)]
    return [delivery_id for unsent in _senders().map(_send_batch, chunks) for delivery_id in unsent]


@functools.cache
def _senders() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="webhook-enqueue")


def _send_batch(chunk: Sequence[Message]) -> list[str]:
    entries: list[dict[str, Any]] = []
    for index, message in enumerate(chunk):
        entry: dict[str, Any] = {"Id": str(index), "MessageBody": message.body()}
        if message.delay_s >= 1:
            # Whole seconds, rounded down: the worker accepts a delivery up to a second early.
            entry["DelaySeconds"] = min(MAX_DELAY_S, math.floor(message.delay_s))
        entries.append(entry)
    try:
        with translated_errors("sqs"):
            response = client("sqs").send_message_batch(QueueUrl=_queue_url(settings().webhook_queue), Entries=entries)
    except Exception:
        _queue_url.cache_clear()  # the queue may be back under another URL (recreated, emulator restart)
        return [message.delivery_id for message in chunk]
    return [chunk[int(failure["Id"])].delivery_id for failure in response.get("Failed", [])]


def parse(body: str) -> str | None:
    """The delivery id of a queue message body, or None when the body is not one of ours."""
    try:
        payload = json.loads(body)
        delivery_id = payload["deliveryId"]
    except (ValueError, TypeError, KeyError):
        return None
    try:
        return str(uuid.UUID(delivery_id))
    except (ValueError, TypeError, AttributeError):
        return None
