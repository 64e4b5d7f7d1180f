"""The minute sweep: sends a queue message for every delivery that is due but has none (never sent, lost,
waiting longer than SQS can delay, or left behind by a worker that died), retires rotated secrets and
seals secrets still stored in plaintext (rows from before sealing, or restored from such a dump)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from chalicelib.observability import logger
from chalicelib.store.postgres import execute, fetch_all, transaction
from chalicelib.webhooks import queue, schedule
from chalicelib.webhooks.schedule import RetryPolicy

CHUNK = 500
BUDGET_S = 40.0  # stay well inside one minute, so two sweeps rarely overlap (SKIP LOCKED if they do)


@dataclass(frozen=True)
class SweepReport:
    enqueued: int
    unsent: int


def _seal_plaintext() -> None:
    from chalicelib.webhooks import sealing

    try:
        sealed = sealing.seal_all_plaintext()
    except Exception:  # a missing or wrong WEBHOOK_KEY must not stop the sweep of deliveries
        logger().exception("sealing webhook secrets stored in plaintext failed")
        return
    if sealed:
        logger().info("sealed webhook secrets stored in plaintext", extra={"sealed": sealed})


def run(policy: RetryPolicy | None = None, budget_s: float = BUDGET_S) -> SweepReport:
    policy = policy or schedule.policy()
    deadline = time.monotonic() + budget_s
    enqueued = unsent = 0
    with transaction() as conn:
        execute(conn, "expire_rotated_secrets")
    _seal_plaintext()
    while True:
        with transaction() as conn:
            rows = fetch_all(conn, "sweep_webhook_deliveries", {"grace_s": float(policy.sweep_grace_s), "limit": CHUNK})
        if not rows:
            break
        messages = [queue.Message(str(row["id"]), str(row["account_id"])) for row in rows]
        failed = queue.send(messages)
        enqueued += len(messages) - len(failed)
        if failed:
            from chalicelib.webhooks.outbox import forget_enqueued

            unsent += len(failed)
            forget_enqueued(failed)
            break  # SQS is refusing: try again next minute
        if len(rows) < CHUNK or time.monotonic() > deadline:
            break
    if enqueued or unsent:
        logger().info("webhook sweep", extra={"enqueued": enqueued, "unsent": unsent})
    return SweepReport(enqueued, unsent)
