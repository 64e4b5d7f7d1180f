"""The webhook delivery queue (SQS): one message per write's deliveries, `{"accountId", "deliveryIds"}`.

A write's deliveries with the same delay travel together, up to MAX_DELIVERIES_PER_MESSAGE per
message (well under SQS's 256 KB, and within one worker batch's time: the worker sends a batch's
deliveries concurrently, in lanes, all done one attempt timeout after the batch began). A single
delivery keeps the original shape `{"deliveryId", "accountId"}`; the worker reads both.
"""

from __future__ import annotations

import functools
import json
import math
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from chalicelib.config import settings
from chalicelib.store import sqs_send
from chalicelib.store.aws import client, translated_errors

MAX_BATCH = 10  # SQS SendMessageBatch limit
MAX_DELAY_S = 900  # SQS DelaySeconds limit; longer waits are left to the sweep
SEND_THREADS = 8  # batches sent at once for a bulk write (a lap import, a recovery)
# ~4 KB of ids, far under SQS's 256 KB. A worker batch (10 messages) may then hold 1,000 deliveries:
# its lanes still end one attempt timeout after the batch began, and what did not fit is released
# without using an attempt. 10 a message made a 100-lap write send 10 (webhook_bulk: a write's
# after-commit part 36 -> 24 ms p50 with 100).
MAX_DELIVERIES_PER_MESSAGE = 100


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


def packs(messages: Sequence[Message]) -> list[list[Message]]:
    """The deliveries grouped into queue messages: same account and whole-second delay, at most
    MAX_DELIVERIES_PER_MESSAGE each, in the order given."""
    groups: dict[tuple[str, int], list[Message]] = {}
    for message in messages:
        groups.setdefault((message.account_id, _delay_s(message)), []).append(message)
    return [
        group[start : start + MAX_DELIVERIES_PER_MESSAGE]
        for group in groups.values()
        for start in range(0, len(group), MAX_DELIVERIES_PER_MESSAGE)
    ]


def pack_body(pack: Sequence[Message]) -> str:
    if len(pack) == 1:
        return pack[0].body()
    return json.dumps(
        {"accountId": pack[0].account_id, "deliveryIds": [m.delivery_id for m in pack]}, separators=(",", ":")
    )


def _delay_s(message: Message) -> int:
    # Whole seconds, rounded down: the worker accepts a delivery up to a second early.
    return min(MAX_DELAY_S, math.floor(message.delay_s)) if message.delay_s >= 1 else 0


def send(messages: Sequence[Message]) -> list[str]:
    """Send the deliveries (packed into messages, batches of 10 messages, several batches at once for a
    bulk write); returns the delivery ids whose message was NOT sent."""
    return start_send(messages)()


def start_send(messages: Sequence[Message]) -> Callable[[], list[str]]:
    """`send` with the requests of up to two batches written now (a write's usual one); the returned
    call reads their answers and gives the delivery ids NOT sent. More batches (a bulk write) are
    sent by that call, several at once on threads."""
    grouped = packs(messages)
    chunks = [grouped[start : start + MAX_BATCH] for start in range(0, len(grouped), MAX_BATCH)]
    if len(chunks) > 2:
        return lambda: [delivery_id for unsent in _senders().map(_send_batch, chunks) for delivery_id in unsent]
    started = [_start_batch(chunk) for chunk in chunks]
    return lambda: [delivery_id for unsent in started for delivery_id in unsent()]


@functools.cache
def _senders() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="webhook-enqueue")


def _send_batch(chunk: Sequence[list[Message]]) -> list[str]:
    return _start_batch(chunk)()


def _start_batch(chunk: Sequence[list[Message]]) -> Callable[[], list[str]]:
    """SendMessageBatch of up to 10 packs written now; the returned call gives the delivery ids NOT sent."""
    entries: list[dict[str, Any]] = []
    for index, pack in enumerate(chunk):
        entry: dict[str, Any] = {"Id": str(index), "MessageBody": pack_body(pack)}
        if _delay_s(pack[0]):
            entry["DelaySeconds"] = _delay_s(pack[0])
        entries.append(entry)
    pending = sqs_send.start_unsent(
        lambda: _queue_url(settings().webhook_queue), entries, forget_url=_queue_url.cache_clear
    )
    return lambda: [message.delivery_id for index in pending() for message in chunk[index]]


def parse_many(body: str) -> list[str] | None:
    """The delivery ids a queue message carries (either shape), or None when it is not one of ours."""
    single = parse(body)
    if single is not None:
        return [single]
    try:
        ids = json.loads(body)["deliveryIds"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(ids, list) or not 0 < len(ids) <= MAX_DELIVERIES_PER_MESSAGE:
        return None
    try:
        return [str(uuid.UUID(i)) for i in ids]
    except (ValueError, TypeError, AttributeError):
        return None


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
