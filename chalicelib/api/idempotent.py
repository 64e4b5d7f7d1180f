"""Idempotency-Key on every authenticated POST: `routing.route` hands such requests to `answer`.

The view runs inside `domain.idempotency.once`; its answer (status, body, content type) is what a
retry with the same key gets back, with `Idempotent-Replayed: true`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalice import Blueprint, Response

from chalicelib.domain import idempotency

# When Chalice gives no Lambda context (tests): the function's timeout (.chalice/config.json).
DEFAULT_REMAINING_MS = 30_000


def _stored(result: Any, status: int) -> idempotency.Stored:
    if isinstance(result, Response):
        body = result.body
        if isinstance(body, bytes):
            body = body.decode()
        elif not isinstance(body, str):
            body = json.dumps(body, separators=(",", ":"))
        content_type = str(result.headers.get("Content-Type", "application/json"))
        return idempotency.Stored(result.status_code, body, content_type)
    if result is None:
        return idempotency.Stored(204, "", "application/json")
    return idempotency.Stored(status, json.dumps(result, separators=(",", ":")), "application/json")


def _remaining_ms(bp: Blueprint) -> Callable[[], int]:
    context = getattr(bp, "lambda_context", None)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        return lambda: int(remaining())
    return lambda: DEFAULT_REMAINING_MS


def answer(
    bp: Blueprint,
    path: str,
    key: str,
    path_params: dict[str, Any],
    view: Callable[[], Any],
    status: int,
    *,
    applied_once: bool = False,
) -> Response:
    """Run `view` at most once for this Idempotency-Key and answer with its (first) answer."""
    from chalicelib.api.routing import caller

    request = bp.current_request
    query = dict(request.query_params or {})
    raw = request.raw_body or b""
    fingerprint = idempotency.fingerprint(
        request.method,
        path,
        {k: str(v) for k, v in path_params.items()},
        query,
        raw.encode() if isinstance(raw, str) else raw,
    )
    stored = idempotency.once(
        caller(),
        f"{request.method} {path}",
        key,
        fingerprint,
        lambda: _stored(view(), status),
        remaining_ms=_remaining_ms(bp),
        applied_once=applied_once,
    )
    headers: dict[str, str | list[str]] = {"Content-Type": stored.content_type}
    if stored.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(body=stored.body, status_code=stored.status, headers=headers)


def register(app: Any) -> None:
    """The hourly sweep of applied keys older than their answers (`idempotency.forget_expired`)."""
    from chalice import Rate
    from chalice.app import CloudWatchEvent

    @app.schedule(Rate(1, unit=Rate.HOURS), name="idempotency_sweep")
    def idempotency_sweep(event: CloudWatchEvent) -> None:
        from chalicelib.observability import logger

        logger().info("applied idempotency keys forgotten", extra={"count": idempotency.forget_expired()})
