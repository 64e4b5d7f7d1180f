"""Reading deliveries and their attempts, replaying one, and recovering every failed one of a time window."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from chalicelib.domain import listing
from chalicelib.domain.caller import Caller
from chalicelib.domain.records import Field, Resource, encode
from chalicelib.domain.validation import Body, parse_time
from chalicelib.errors import Conflict, Invalid, NotFound
from chalicelib.store.postgres import fetch_all, fetch_one, transaction
from chalicelib.webhooks.queue import Message

STATUSES = ("pending", "sending", "retrying", "succeeded", "failed")
RECOVER_DISPATCH_NOW = 100  # messages sent by the request itself; the sweep sends the rest

DELIVERIES = Resource(
    "webhook_delivery",
    "webhook_deliveries",
    (
        Field("id", "id", "uuid"),
        Field("webhookId", "webhook_id", "uuid"),
        Field("eventId", "event_id", "int"),
        Field("eventType", "event_type", filter=True),
        Field("status", "status", filter=True),
        Field("attempts", "attempts", "int"),
        Field("createdAt", "created_at", "time"),
        Field("nextAttemptAt", "next_attempt_at", "time"),
        Field("succeededAt", "succeeded_at", "time"),
        Field("failedAt", "failed_at", "time"),
        Field("lastStatusCode", "last_status_code", "int"),
        Field("lastError", "last_error"),
    ),
    order=("created_at", "id"),  # newest first
)

ATTEMPTS = Resource(
    "webhook_attempt",
    "webhook_attempts",
    (
        Field("attempt", "attempt", "int"),
        Field("cycle", "cycle", "int"),
        Field("startedAt", "started_at", "time"),
        Field("finishedAt", "finished_at", "time"),
        Field("durationMs", "duration_ms", "int"),
        Field("statusCode", "status_code", "int"),
        Field("error", "error"),
        Field("responseBody", "response_body"),
    ),
)

_LIST_PARAMS = ("limit", "cursor", "status", "eventType", "since", "until")


def _webhook_must_exist(conn: Any, caller: Caller, webhook_id: str) -> dict[str, Any]:
    state = fetch_one(conn, "webhook_state", {"id": webhook_id, "account_id": caller.account_id})
    if state is None:
        raise NotFound(f"webhook {webhook_id} not found")
    return state


def list_page(caller: Caller, webhook_id: str, params: Mapping[str, str]) -> dict[str, Any]:
    """Newest first; `status`, `eventType`, `since`/`until` (createdAt window) filters; keyset cursor."""
    caller.require("admin")
    webhook_id = listing.parse_uuid(webhook_id, "id")
    unknown = sorted(set(params) - set(_LIST_PARAMS))
    if unknown:
        raise Invalid(f"unknown query parameter {unknown[0]!r}; allowed: {', '.join(_LIST_PARAMS)}", field=unknown[0])
    status = params.get("status")
    if status is not None and status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}", field="status")
    event_type = params.get("eventType")
    if event_type is not None and (len(event_type) > 100 or "\x00" in event_type):
        raise Invalid("eventType is not a valid event type", field="eventType")
    since = parse_time(params["since"], "since") if "since" in params else None
    until = parse_time(params["until"], "until") if "until" in params else None
    limit = listing.parse_limit(params.get("limit"))
    after = listing.decode_cursor(params["cursor"], 2) if params.get("cursor") else None
    after_created_at = parse_time(after[0], "cursor") if after else None
    after_id = listing.parse_uuid(str(after[1]), "cursor") if after else None
    with transaction() as conn:
        _webhook_must_exist(conn, caller, webhook_id)
        rows = fetch_all(
            conn,
            "list_webhook_deliveries",
            {
                "account_id": caller.account_id,
                "webhook_id": webhook_id,
                "status": status,
                "event_type": event_type,
                "since": since,
                "until": until,
                "after_created_at": after_created_at,
                "after_id": after_id,
                "limit": limit + 1,
            },
        )
    return listing.page(DELIVERIES, rows, limit)


def get(caller: Caller, webhook_id: str, delivery_id: str) -> dict[str, Any]:
    """One delivery with its payload and every attempt (`attemptLog`)."""
    caller.require("admin")
    webhook_id = listing.parse_uuid(webhook_id, "id")
    delivery_id = listing.parse_uuid(delivery_id, "deliveryId")
    with transaction() as conn:
        row = fetch_one(
            conn, "get_webhook_delivery", {"id": delivery_id, "webhook_id": webhook_id, "account_id": caller.account_id}
        )
        if row is None:
            raise NotFound(f"delivery {delivery_id} not found")
        attempts = fetch_all(
            conn, "list_webhook_attempts", {"delivery_id": delivery_id, "account_id": caller.account_id}
        )
    return {
        **DELIVERIES.to_wire(row),
        "cycle": row["cycle"],
        "payload": json.loads(row["payload"]),
        "attemptLog": [ATTEMPTS.to_wire(a) for a in attempts],
    }


def replay(caller: Caller, webhook_id: str, delivery_id: str) -> dict[str, Any]:
    """A new cycle of attempts (1 + up to 3 retries) with the same id, hence the same webhook-id."""
    from chalicelib.webhooks import outbox

    caller.require("admin")
    webhook_id = listing.parse_uuid(webhook_id, "id")
    delivery_id = listing.parse_uuid(delivery_id, "deliveryId")
    with transaction() as conn:
        state = _webhook_must_exist(conn, caller, webhook_id)
        if not state["enabled"]:
            raise Conflict("the webhook is disabled; enable it (PATCH enabled=true) before replaying")
        row = fetch_one(
            conn,
            "replay_webhook_delivery",
            {"id": delivery_id, "webhook_id": webhook_id, "account_id": caller.account_id},
        )
        if row is None:
            exists = fetch_one(
                conn,
                "get_webhook_delivery",
                {"id": delivery_id, "webhook_id": webhook_id, "account_id": caller.account_id},
            )
            if exists is None:
                raise NotFound(f"delivery {delivery_id} not found")
            raise Conflict(f"delivery {delivery_id} is {exists['status']}: it is being delivered already")
    outbox.dispatch([Message(str(row["id"]), caller.account_id)])
    return DELIVERIES.to_wire(row)


def recover(caller: Caller, webhook_id: str, payload: Any) -> dict[str, Any]:
    """Replay every failed delivery created in [since, until): marked now, sent in the background."""
    from chalicelib.webhooks import outbox

    caller.require("admin")
    webhook_id = listing.parse_uuid(webhook_id, "id")
    body = Body(payload, allowed={"since", "until"})
    since = body.time("since")
    until = body.time("until", required=False) or dt.datetime.now(dt.UTC)
    assert since is not None
    if until <= since:
        body.fail("until must be after since", "until")
    with transaction() as conn:
        state = _webhook_must_exist(conn, caller, webhook_id)
        if not state["enabled"]:
            raise Conflict("the webhook is disabled; enable it (PATCH enabled=true) before recovering")
        row = fetch_one(
            conn,
            "recover_webhook_deliveries",
            {
                "account_id": caller.account_id,
                "webhook_id": webhook_id,
                "since": since,
                "until": until,
                "dispatch_limit": RECOVER_DISPATCH_NOW,
            },
        )
    assert row is not None
    first = [str(i) for i in (row["first_ids"] or [])]
    outbox.dispatch([Message(i, caller.account_id) for i in first])
    return {"recovering": int(row["n"]), "since": encode(since), "until": encode(until)}
