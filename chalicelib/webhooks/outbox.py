"""The webhook outbox: deliveries inserted in the writer's transaction, queue messages sent after commit.

    with changes.write(caller) as (conn, recorder):   # each recorded batch: WebhookSink.recorded -> enqueue_for
        ...
    # after commit: WebhookSink.committed -> dispatch(its messages)

A delivery exists once the write commits, whatever happens next: if the process dies before
`dispatch`, or SQS refuses the message, the scheduled sweep (webhooks/sweep.py) sends it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.store.postgres import fetch_all
from chalicelib.webhooks.queue import Message

if TYPE_CHECKING:
    import psycopg

    from chalicelib.domain.changes import DomainEvent


@dataclass(frozen=True)
class Subscription:
    """What the outbox needs of an enabled webhook: its id and filter."""

    id: str
    entity_types: frozenset[str]  # empty: every entity type
    operations: frozenset[str]

    def matches(self, entity: str, op: str) -> bool:
        return op in self.operations and (not self.entity_types or entity in self.entity_types)


# account id -> its enabled subscriptions, read once per write transaction (Recorder.webhook_subscriptions)
SubscriptionCache = dict[str, list[Subscription]]


def subscriptions(
    conn: psycopg.Connection[dict[str, Any]], account_id: str, cache: SubscriptionCache | None = None
) -> list[Subscription]:
    if cache is not None and account_id in cache:
        return cache[account_id]
    found = [
        Subscription(str(row["id"]), frozenset(row["entity_types"]), frozenset(row["operations"]))
        for row in fetch_all(conn, "enabled_webhooks", {"account_id": account_id})
    ]
    if cache is not None:
        cache[account_id] = found
    return found


def enqueue_for(
    conn: psycopg.Connection[dict[str, Any]],
    events: DomainEvent | Sequence[DomainEvent],
    cache: SubscriptionCache | None = None,
) -> list[Message]:
    """Insert a delivery per (event, matching enabled subscription) in the caller's transaction.

    An account without subscriptions costs one indexed query per write transaction (`cache` keeps
    the answer for the transaction's later events: a 15,000-lap import asks once); events that match
    nothing cost nothing more; the matching ones are inserted with one statement however many there
    are. Returns the messages to send after commit.
    """
    batch = [events] if not isinstance(events, Sequence) else list(events)
    cache = {} if cache is None else cache
    webhook_ids: list[str] = []
    event_ids: list[int] = []
    for event in batch:
        for subscription in subscriptions(conn, event.account_id, cache):
            if subscription.matches(event.entity, event.op):
                webhook_ids.append(subscription.id)
                event_ids.append(event.id)
    if not webhook_ids:
        return []
    rows = fetch_all(conn, "insert_webhook_deliveries", {"webhook_ids": webhook_ids, "event_ids": event_ids})
    return [Message(str(row["id"]), str(row["account_id"])) for row in rows]


class WebhookSink:
    """One write transaction's part: inserts each batch's deliveries in it, sends their messages after commit."""

    def __init__(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        self.conn = conn
        self.cache: SubscriptionCache = {}  # an account's subscriptions, read once per transaction
        self.messages: list[Message] = []

    def recorded(self, events: Sequence[DomainEvent], *, live: bool) -> None:
        self.messages += enqueue_for(self.conn, events, self.cache)  # live or not, webhooks get every event

    def pending(self) -> bool:
        return bool(self.messages)

    def committed(self) -> None:
        dispatch(self.messages)


def dispatch(messages: Sequence[Message]) -> None:
    """After commit: the deliveries go to the queue packed (up to 100 a message, webhooks/queue.py).
    Never raises: what is not sent, the sweep sends."""
    if not messages:
        return
    from chalicelib.observability import logger
    from chalicelib.webhooks import queue

    try:
        unsent = queue.send(messages)
    except Exception:
        logger().exception("sending webhook queue messages failed; the sweep will send them")
        unsent = [m.delivery_id for m in messages]
    if unsent:
        logger().warning(
            "webhook queue messages not sent; the next sweep sends them",
            extra={"deliveries": unsent[:20], "count": len(unsent)},
        )
        forget_enqueued(unsent)


def forget_enqueued(delivery_ids: Sequence[str]) -> None:
    """Best effort: mark deliveries as having no queue message, so the next sweep sends one at once.

    If this fails too (PostgreSQL unreachable), the sweep still finds them once the grace has passed.
    """
    from chalicelib.observability import logger
    from chalicelib.store.postgres import execute, transaction

    try:
        with transaction() as conn:
            execute(conn, "forget_enqueued", {"ids": list(delivery_ids)})
    except Exception:
        logger().exception("could not mark webhook deliveries as unsent; the sweep finds them after its grace")
