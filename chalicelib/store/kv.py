"""Small key-value uses of the DynamoDB KV table: atomic counters with expiry."""

from __future__ import annotations

import time

from chalicelib.config import settings
from chalicelib.store.aws import client, translated_errors


def count_hit(key: str, window_s: int, now: float | None = None) -> tuple[int, int, float]:
    """Atomically count one hit for `key` in the fixed window containing `now`.

    Returns (hits in this window, hits in the window before it, how far into this window `now` is, 0
    to 1): what a sliding-window limit (domain/rate_limits.py) weighs. DynamoDB's ADD is atomic, so
    concurrent callers never lose a hit; a window's item lives until the next window has ended.
    """
    now = time.time() if now is None else now
    window_start = int(now) - int(now) % window_s
    table = settings().kv_table
    with translated_errors("dynamodb"):
        answer = client("dynamodb").update_item(
            TableName=table,
            Key={"pk": {"S": f"counter#{key}"}, "sk": {"S": str(window_start)}},
            UpdateExpression="ADD hits :one SET expiresAt = if_not_exists(expiresAt, :exp)",
            ExpressionAttributeValues={":one": {"N": "1"}, ":exp": {"N": str(window_start + 2 * window_s + 60)}},
            ReturnValues="UPDATED_NEW",
        )
        before = (
            client("dynamodb")
            .get_item(
                TableName=table,
                Key={"pk": {"S": f"counter#{key}"}, "sk": {"S": str(window_start - window_s)}},
                ConsistentRead=True,
            )
            .get("Item")
        )
    previous = int(before["hits"]["N"]) if before and not is_expired(before, now) else 0
    return int(answer["Attributes"]["hits"]["N"]), previous, (now - window_start) / window_s


def is_expired(item: dict[str, dict[str, str]], now: float | None = None) -> bool:
    """moto (and DynamoDB, for up to days) keeps items past their TTL: treat them as absent."""
    expires = item.get("expiresAt", {}).get("N")
    return expires is not None and float(expires) <= (time.time() if now is None else now)
