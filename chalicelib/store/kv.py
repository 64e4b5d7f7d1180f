"""Small key-value uses of the DynamoDB KV table: atomic counters with expiry."""

from __future__ import annotations

import time

from chalicelib.config import settings
from chalicelib.store.aws import client, translated_errors


def increment_window(key: str, window_s: int, now: float | None = None) -> tuple[int, int]:
    """Atomically count one hit in the fixed window containing `now`.

    Returns (hits so far in this window, seconds until the window ends). DynamoDB's ADD is
    atomic, so concurrent callers never lose a hit.
    """
    now = time.time() if now is None else now
    window_start = int(now) - int(now) % window_s
    window_end = window_start + window_s
    with translated_errors("dynamodb"):
        answer = client("dynamodb").update_item(
            TableName=settings().kv_table,
            Key={"pk": {"S": f"counter#{key}"}, "sk": {"S": str(window_start)}},
            UpdateExpression="ADD hits :one SET expiresAt = if_not_exists(expiresAt, :exp)",
            ExpressionAttributeValues={":one": {"N": "1"}, ":exp": {"N": str(window_end + 60)}},
            ReturnValues="UPDATED_NEW",
        )
    return int(answer["Attributes"]["hits"]["N"]), max(1, window_end - int(now))


def is_expired(item: dict[str, dict[str, str]], now: float | None = None) -> bool:
    """moto (and DynamoDB, for up to days) keeps items past their TTL: treat them as absent."""
    expires = item.get("expiresAt", {}).get("N")
    return expires is not None and float(expires) <= (time.time() if now is None else now)
