"""The webhook outbox: deliveries inserted in the writer's transaction, queue messages sent after commit.

    with changes.write(caller) as (conn, recorder):   # each recorded batch: WebhookSink.recorded -> enqueue_for
        ...
    # after commit: WebhookSink.committed -> dispatch(its messages)

A delivery exists once the write commits, whatever happens next: if the process dies before
`dispatch`, or SQS refuses the message, the scheduled sweep (webhooks/sweep.py) sends it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from chalicelib.store.postgres import fetch_all
from chalicelib.webhooks.queue import Message

if TYPE_CHECKING:
    import psycopg

    from chalicelib.domain.changes import DomainEvent


def enqueue_for(
    conn: psycopg.Connection[dict[str, Any]],
    events: DomainEvent | Sequence[DomainEvent],
    without_subscriptions: set[str] | None = None,
) -> list[Message]:
    """Insert a delivery per (event, matching enabled subscription) in the caller's transaction, with
    one statement per account of the batch (a write's are all its caller's); returns the messages to
    send after commit.

    The statement matches the filters itself, so a write with subscriptions costs one round trip
    here, not two. An account found without enabled subscriptions goes into `without_subscriptions`
    (one set per write transaction) and is not asked again: a write recording events one by one, or
    a 15,000-lap import in batches, costs one indexed query in an account without webhooks.
    """
    batch = [events] if not isinstance(events, Sequence) else list(events)
    skipped = set() if without_subscriptions is None else without_subscriptions
    by_account: dict[str, list[int]] = {}
    for event in batch:
        if event.account_id not in skipped:
            by_account.setdefault(event.account_id, []).append(event.id)
    messages: list[Message] = []
    for account_id, event_ids in by_account.items():
        rows = fetch_all(conn, "insert_matching_webhook_deliveries", {"account_id": account_id, "event_ids": event_ids})
        if not rows[0]["subscriptions"]:
            skipped.add(account_id)
        messages += [Message(str(row["id"]), str(row["account_id"])) for row in rows if row["id"] is not None]
    return messages


class WebhookSink:
    """One write transaction's part: inserts each batch's deliveries in it, sends their messages after commit."""

    def __init__(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        self.conn = conn
        self.without_subscriptions: set[str] = set()  # accounts found with none: not asked again in this transaction
        self.messages: list[Message] = []

    def recorded(self, events: Sequence[DomainEvent], *, live: bool) -> None:
        # Live or not, webhooks get every event.
        self.messages += enqueue_for(self.conn, events, self.without_subscriptions)

    def pending(self) -> bool:
        return bool(self.messages)

    def committed(self) -> Callable[[], None] | None:
        return start_dispatch(self.messages) if self.messages else None


def dispatch(messages: Sequence[Message]) -> None:
    """After commit: the deliveries go to the queue packed (up to 100 a message, webhooks/queue.py).
    Never raises: what is not sent, the sweep sends."""
    if messages:
        start_dispatch(messages)()


def start_dispatch(messages: Sequence[Message]) -> Callable[[], None]:
    """`dispatch` with its queue requests written now; the returned call (which never raises either)
    reads the answers and hands what was not sent to the sweep."""
    from chalicelib.observability import logger
    from chalicelib.webhooks import queue

    try:
        pending = queue.start_send(messages)
    except Exception:
        logger().exception("sending webhook queue messages failed; the sweep will send them")
        every = [m.delivery_id for m in messages]
        return lambda: _not_sent(every)

    def answered() -> None:
        try:
            unsent = pending()
        except Exception:
            logger().exception("sending webhook queue messages failed; the sweep will send them")
            unsent = [m.delivery_id for m in messages]
        if unsent:
            _not_sent(unsent)

    return answered


def _not_sent(delivery_ids: Sequence[str]) -> None:
    from chalicelib.observability import logger

    logger().warning(
        "webhook queue messages not sent; the next sweep sends them",
        extra={"deliveries": list(delivery_ids[:20]), "count": len(delivery_ids)},
    )
    forget_enqueued(delivery_ids)


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
