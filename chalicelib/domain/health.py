"""Deep health: one cheap call to each dependency, concurrently, each with its own verdict."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalicelib.config import settings


def _postgres() -> None:
    from chalicelib.store.postgres import transaction

    with transaction() as conn:
        conn.execute("SELECT 1")


def _dynamodb() -> None:
    from chalicelib.store.aws import client

    client("dynamodb").describe_table(TableName=settings().kv_table)


def _sqs() -> None:
    from chalicelib.store.aws import client

    client("sqs").get_queue_url(QueueName=settings().webhook_queue)


def _s3() -> None:
    from chalicelib.store.aws import client

    client("s3").head_bucket(Bucket=settings().attachments_bucket)


CHECKS: dict[str, Callable[[], None]] = {"postgres": _postgres, "dynamodb": _dynamodb, "sqs": _sqs, "s3": _s3}


def _run(check: Callable[[], None]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # any failure means "down"; the error text says why
        detail = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        return {"status": "down", "error": detail, "ms": round((time.perf_counter() - started) * 1000, 1)}
    return {"status": "ok", "ms": round((time.perf_counter() - started) * 1000, 1)}


def deep_check() -> dict[str, Any]:
    with ThreadPoolExecutor(max_workers=len(CHECKS)) as pool:
        results = dict(zip(CHECKS, pool.map(_run, CHECKS.values()), strict=True))
    down = [name for name, result in results.items() if result["status"] != "ok"]
    return {
        "status": "ok" if not down else "degraded",
        "stage": settings().stage,
        "down": down,
        "checks": results,
    }
