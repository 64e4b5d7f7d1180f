"""The timing-import queue (SQS): one small message per import; the file itself waits in S3."""

from __future__ import annotations

import functools
import json

from chalicelib.config import settings
from chalicelib.store.aws import client, translated_errors


@functools.cache
def _queue_url(name: str) -> str:
    with translated_errors("sqs"):
        return str(client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


def enqueue(import_id: str, account_id: str) -> None:
    """Ask the worker to run an import (at-least-once; the worker is idempotent)."""
    body = json.dumps({"importId": import_id, "accountId": account_id}, separators=(",", ":"))
    try:
        with translated_errors("sqs"):
            client("sqs").send_message(QueueUrl=_queue_url(settings().timing_import_queue), MessageBody=body)
    except Exception:
        _queue_url.cache_clear()  # the queue may be back under another URL (recreated, emulator restart)
        raise


def message(body: str) -> tuple[str, str] | None:
    """(import id, account id) from a queue message body, or None when it is not one of ours."""
    try:
        payload = json.loads(body)
        import_id, account_id = payload["importId"], payload["accountId"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(import_id, str) or not isinstance(account_id, str):
        return None
    return import_id, account_id
