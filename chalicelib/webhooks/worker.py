"""The SQS worker: claims the batch's deliveries, POSTs them concurrently, records every attempt, schedules retries.

One batch (up to 10 messages) is handled in three steps: one statement claims every delivery that
is due (webhooks.sql `claim_webhook_deliveries`: two workers never hold the same one; a succeeded or
failed one is never claimed, so a redelivered message for it sends nothing); the POSTs run
concurrently (ten slow receivers take one timeout, not ten, well inside the queue's visibility
timeout); one statement records the outcomes. Powertools' BatchProcessor then reports per message
which ones the queue must deliver again (ReportBatchItemFailures): only those whose delivery could
not be claimed or recorded because PostgreSQL failed. A failed attempt is retried through a new,
delayed message (SQS DelaySeconds, at most 900 s; longer waits are the sweep's), never by failing
the message, so retries do not count towards the queue's DLQ redrive. A delivery left unsent because
its receiver used its share of the batch's time (webhooks/lanes.py) is released without an attempt
and sent a new message: only attempts made count towards the schedule. Secrets are opened inside the
claim's transaction: a wrong WEBHOOK_KEY fails the invocation before anything is claimed or signed.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from chalicelib.observability import logger, metric
from chalicelib.store.postgres import fetch_all, transaction
from chalicelib.webhooks import lanes, queue, schedule, sealing, sender, signing
from chalicelib.webhooks.schedule import RETRYING, Decision, RetryPolicy

EARLY_S = 1.0  # a delivery may be attempted this much before it is due (SQS delays are whole seconds)
SEND_THREADS = 10  # one per message of a full batch
MAX_PER_DESTINATION = 3  # lanes one receiver may use in a batch (webhooks/lanes.py)


class RetryLater(Exception):
    """The queue must deliver this message again (its delivery could not be claimed or recorded)."""


@dataclass(frozen=True)
class Claimed:
    id: str
    account_id: str
    webhook_id: str
    event_type: str
    payload: str
    attempt: int  # this attempt's number over the delivery's life
    cycle_attempts: int  # and within the current cycle (1 = first)
    enabled: bool
    url: str
    secret: str
    previous_secret: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Claimed:
        box = sealing.box()  # checked by claim()
        webhook_id = str(row["webhook_id"])
        return cls(
            str(row["id"]),
            str(row["account_id"]),
            webhook_id,
            row["event_type"],
            row["payload"],
            row["attempts"],
            row["cycle_attempts"],
            row["enabled"],
            row["url"],
            box.open(webhook_id, row["secret"]),
            box.open(webhook_id, row["previous_secret"]) if row["previous_secret"] else None,
        )


@functools.cache
def _executor() -> ThreadPoolExecutor:
    # Lives as long as the container; idle threads cost nothing while Lambda is frozen.
    return ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="webhook-send")


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The SQS handler's body: returns the partial batch response (`batchItemFailures`)."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    records = event.get("Records") or []
    if not records:
        return {"batchItemFailures": []}
    retry_later = process(records)

    def settle(record: SQSRecord) -> None:
        reason = retry_later.get(record.message_id)
        if reason:
            raise RetryLater(reason)

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(  # type: ignore[return-value]
        event=event, record_handler=settle, processor=processor, context=context
    )


def process(records: Sequence[dict[str, Any]], policy: RetryPolicy | None = None) -> dict[str, str]:
    """Handle a batch of queue records; returns {message id: reason} for those to be delivered again."""
    policy = policy or schedule.policy()
    retry_later: dict[str, str] = {}
    delivery_of: dict[str, list[str]] = {}  # message id -> the deliveries it carries
    for message in records:
        delivery_ids = queue.parse_many(message.get("body", ""))
        if delivery_ids is None:
            logger().error(
                "not a webhook delivery message; it goes to the DLQ after its retries",
                extra={"message_id": message.get("messageId")},
            )
            retry_later[message["messageId"]] = "not a webhook delivery message"
        else:
            delivery_of[message["messageId"]] = delivery_ids
    if not delivery_of:
        return retry_later
    try:
        claimed = claim(sorted({d for ids in delivery_of.values() for d in ids}), policy)
    except sealing.WrongKey:
        raise  # the invocation fails loudly: every signature would be wrong
    except Exception:
        logger().exception("claiming webhook deliveries failed; the queue delivers them again")
        return retry_later | dict.fromkeys(delivery_of, "claim failed")
    sending = [c for c in claimed if c.enabled]
    outcomes = send_all(sending, policy)
    try:
        retries = record(sending, outcomes, policy)
    except Exception:
        # The POSTs happened but are not recorded: these messages come back, and once the lock has
        # run out the deliveries are sent again with the same webhook-id (at-least-once).
        logger().exception("recording webhook attempts failed; the queue delivers them again")
        sent = {c.id for c in sending}
        return retry_later | {m: "outcome not recorded" for m, ids in delivery_of.items() if sent.intersection(ids)}
    if retries:
        unsent = queue.send(retries)
        if unsent:
            from chalicelib.webhooks.outbox import forget_enqueued

            logger().warning("webhook retry messages not sent; the sweep sends them", extra={"deliveries": unsent})
            forget_enqueued(unsent)
    return retry_later


def claim(delivery_ids: list[str], policy: RetryPolicy) -> list[Claimed]:
    sealing.checked_box()  # a wrong WEBHOOK_KEY raises before anything is claimed
    with transaction() as conn:
        rows = fetch_all(
            conn, "claim_webhook_deliveries", {"ids": delivery_ids, "lock_s": float(policy.lock_s), "early_s": EARLY_S}
        )
        return [Claimed.from_row(row) for row in rows]  # a secret that does not open undoes the claim


def send_one(delivery: Claimed, policy: RetryPolicy, timeout_s: float | None = None) -> sender.Outcome:
    """One attempt; whatever goes wrong becomes the attempt's error (recorded, then retried or final)."""
    try:
        secrets = [delivery.secret] + ([delivery.previous_secret] if delivery.previous_secret else [])
        headers = signing.headers(
            delivery_id=delivery.id,
            event_type=delivery.event_type,
            body=delivery.payload,
            secrets_=secrets,
            timestamp_s=int(time.time()),
        )
        return sender.post(delivery.url, delivery.payload.encode("utf-8"), headers, timeout_s or policy.timeout_s)
    except Exception as exc:
        logger().exception("webhook attempt failed inside the worker", extra={"delivery_id": delivery.id})
        return sender.Outcome(None, 0, f"not sent: internal error ({type(exc).__name__})")


def send_all(deliveries: list[Claimed], policy: RetryPolicy) -> list[sender.Outcome | None]:
    """Every attempt of the batch, in lanes (webhooks/lanes.py): all done one timeout after the batch began.

    None: not attempted, its receiver (or the batch) used the batch's time (the batch's first always is)."""
    if len(deliveries) <= 1:
        return [send_one(d, policy) for d in deliveries]
    batch_ends = time.monotonic() + policy.timeout_s
    outcomes: list[sender.Outcome | None] = [None] * len(deliveries)

    def run(numbered: tuple[int, list[int]]) -> None:
        number, lane = numbered
        for position, index in enumerate(lane):
            remaining_s = batch_ends - time.monotonic()
            if remaining_s < lanes.MIN_ATTEMPT_S and (number or position):
                return  # the rest of the lane is released by record(), using up no attempt
            # The batch's first delivery is always attempted, so every batch makes progress.
            outcomes[index] = send_one(
                deliveries[index], policy, min(policy.timeout_s, max(remaining_s, lanes.MIN_ATTEMPT_S))
            )

    list(_executor().map(run, enumerate(lanes.lanes([d.url for d in deliveries], MAX_PER_DESTINATION))))
    return outcomes


def _decision(delivery: Claimed, outcome: sender.Outcome, policy: RetryPolicy) -> Decision:
    retry_after_s = schedule.parse_retry_after(outcome.retry_after) if outcome.status_code in (429, 503) else None
    return schedule.decide(policy, delivery.cycle_attempts, outcome.status_code, retry_after_s)


def record(claimed: list[Claimed], sent: list[sender.Outcome | None], policy: RetryPolicy) -> list[queue.Message]:
    """Record the attempts and their consequences, release the unattempted; returns the messages to send."""
    if not claimed:
        return []
    deferred = [c for c, o in zip(claimed, sent, strict=True) if o is None]
    deliveries = [c for c, o in zip(claimed, sent, strict=True) if o is not None]
    outcomes = [o for o in sent if o is not None]
    decisions = [_decision(d, o, policy) for d, o in zip(deliveries, outcomes, strict=True)]
    queued = [d.status == RETRYING and (d.delay_s or 0) <= queue.MAX_DELAY_S for d in decisions]
    disable = {
        d.webhook_id: dec.disable_reason for d, dec in zip(deliveries, decisions, strict=True) if dec.disable_reason
    }
    with transaction() as conn:
        rows = fetch_all(
            conn,
            "settle_webhook_deliveries",
            {
                "ids": [d.id for d in deliveries],
                "attempts": [d.attempt for d in deliveries],
                "statuses": [dec.status for dec in decisions],
                "delays_s": [dec.delay_s for dec in decisions],
                "queued": queued,
                "status_codes": [o.status_code for o in outcomes],
                "errors": [o.error for o in outcomes],
                "durations_ms": [o.duration_ms for o in outcomes],
                "bodies": [o.response_body for o in outcomes],
                "disable_ids": list(disable),
                "disable_reasons": list(disable.values()),
            },
        )
        released = _release(conn, deferred)
    settled = {str(row["id"]) for row in rows}
    _report(deliveries, decisions, settled)
    if released:
        metric("WebhookDeliveriesDeferred", len(released))
    return [
        queue.Message(d.id, d.account_id, dec.delay_s or 0.0)
        for d, dec, q in zip(deliveries, decisions, queued, strict=True)
        if q and d.id in settled
    ] + [queue.Message(str(row["id"]), str(row["account_id"]), 0.0) for row in released]


def _release(conn: Any, deferred: list[Claimed]) -> list[dict[str, Any]]:
    """Undo the claim of deliveries that were not attempted: no attempt is recorded or used up."""
    if not deferred:
        return []
    return fetch_all(
        conn, "release_webhook_deliveries", {"ids": [d.id for d in deferred], "attempts": [d.attempt for d in deferred]}
    )


def _report(deliveries: list[Claimed], decisions: list[Decision], settled: set[str]) -> None:
    counts: dict[str, int] = {}
    for delivery, decision in zip(deliveries, decisions, strict=True):
        if delivery.id not in settled:
            continue
        counts[decision.status] = counts.get(decision.status, 0) + 1
        if decision.status == schedule.FAILED:
            logger().warning(
                "webhook delivery failed for good (replay it once the receiver is fixed)",
                extra={
                    "delivery_id": delivery.id,
                    "webhook_id": delivery.webhook_id,
                    "account_id": delivery.account_id,
                    "reason": decision.disable_reason,
                },
            )
    for status, count in counts.items():
        metric(f"WebhookDeliveries{status.title()}", count)
