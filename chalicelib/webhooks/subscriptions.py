"""Webhook subscriptions: URL (checked against SSRF), event filter, enabled flag, signing secret and its rotation."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from typing import Any

from chalicelib import netguard
from chalicelib.domain import idempotency, listing
from chalicelib.domain.caller import Caller
from chalicelib.domain.changes import OPS
from chalicelib.domain.records import Field, Resource
from chalicelib.domain.validation import Body
from chalicelib.errors import Conflict, Invalid, NotFound
from chalicelib.store.postgres import execute, fetch_one, transaction
from chalicelib.webhooks import sealing, signing
from chalicelib.webhooks.queue import Message

# The entity types whose writes record domain events (the `type` of a payload is "<entity>.<op>").
ENTITY_TYPES = (
    "event",
    "session",
    "car",
    "driver",
    "run_sheet",
    "lap",
    "setup",
    "issue",
    "board_card",
    "strategy",
    "attachment",
    "timing_import",
    "member",
    "api_key",
)
MAX_WEBHOOKS_PER_ACCOUNT = 100
ROTATION_OVERLAP_S = 24 * 3600
TEST_EVENT_TYPE = "webhook.test"

WEBHOOKS = Resource(
    "webhook",
    "webhooks",
    (
        Field("id", "id", "uuid"),
        Field("url", "url"),
        Field("description", "description"),
        Field("entityTypes", "entity_types", "json"),
        Field("operations", "operations", "json"),
        Field("enabled", "enabled", "bool", filter=True),
        Field("disabledReason", "disabled_reason"),
        Field("secretRotationEndsAt", "previous_secret_expires_at", "time"),
        Field("createdBy", "created_by", "uuid"),
        Field("createdAt", "created_at", "time"),
        Field("updatedAt", "updated_at", "time"),
    ),
)


def check_url(url: str, field: str = "url") -> str:
    """The URL if it may receive webhooks (https and public addresses outside `local`); 400 otherwise."""
    from chalicelib.config import settings

    try:
        netguard.check_url(url, local=settings().is_local, allow=settings().outbound_allow)
    except netguard.Refused as exc:
        raise Invalid(f"{field}: {exc}", field=field) from exc
    except netguard.Unreachable as exc:
        raise Invalid(f"{field}: {exc}", field=field) from exc
    return url


def _url(body: Body, required: bool) -> str | None:
    if not body.has("url") and not required:
        return None
    return check_url(body.text("url", max_len=netguard.MAX_URL_LENGTH))


def _names(body: Body, name: str, allowed: tuple[str, ...], default: list[str] | None) -> list[str] | None:
    if not body.has(name):
        return default
    value = body.payload[name]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        body.fail(f"{name} must be a list of strings", name)
    unknown = [v for v in value if v not in allowed]
    if unknown:
        body.fail(f"{name}: {unknown[0]!r} is not one of {', '.join(allowed)}", name)
    return sorted(set(value), key=allowed.index)


def _filters(body: Body, creating: bool) -> tuple[list[str] | None, list[str] | None]:
    entity_types = _names(body, "entityTypes", ENTITY_TYPES, [] if creating else None)
    operations = _names(body, "operations", OPS, list(OPS) if creating else None)
    if operations is not None and not operations:
        body.fail("operations must name at least one of create, update, delete", "operations")
    return entity_types, operations


WRITABLE = frozenset({"url", "description", "entityTypes", "operations", "enabled"})
_FIELDS = WRITABLE


def create(caller: Caller, payload: Any) -> dict[str, Any]:
    """A new subscription; its `secret` is in this answer only."""
    caller.require("admin")
    body = Body(payload, allowed=_FIELDS)
    url = _url(body, required=True)
    entity_types, operations = _filters(body, creating=True)
    description = body.text("description", required=False, max_len=500, min_len=0, default="")
    enabled = body.boolean("enabled", default=True)
    webhook_id = str(uuid.uuid4())  # the sealed secret is bound to it
    secret = signing.new_secret()
    sealed = sealing.checked_box().seal(webhook_id, secret)
    with transaction() as conn:
        idempotency.claim_in(conn)  # a retried key never makes a second one (its secret was shown once)
        count = fetch_one(conn, "count_webhooks", {"account_id": caller.account_id})
        if count and count["n"] >= MAX_WEBHOOKS_PER_ACCOUNT:
            raise Conflict(f"an account has at most {MAX_WEBHOOKS_PER_ACCOUNT} webhooks; delete one first")
        row = fetch_one(
            conn,
            "insert_webhook",
            {
                "id": webhook_id,
                "account_id": caller.account_id,
                "url": url,
                "description": description,
                "entity_types": entity_types,
                "operations": operations,
                "enabled": enabled,
                "secret": sealed,
                "created_by": caller.acting_user_id,  # it stays with the account when they leave
            },
        )
    assert row is not None
    return {**WEBHOOKS.to_wire(row), "secret": secret}


def list_webhooks(caller: Caller, params: Mapping[str, str]) -> dict[str, Any]:
    from chalicelib.domain.reads import list_page

    caller.require("admin")
    return list_page(caller, WEBHOOKS, params)


def get(caller: Caller, webhook_id: str) -> dict[str, Any]:
    from chalicelib.domain.reads import get_one

    caller.require("admin")
    return get_one(caller, WEBHOOKS, webhook_id)


def update(caller: Caller, webhook_id: str, payload: Any) -> dict[str, Any]:
    caller.require("admin")
    webhook_id = listing.parse_uuid(webhook_id, "id")
    body = Body(payload, allowed=_FIELDS)
    if not body.payload:
        raise Invalid(f"send at least one of {', '.join(sorted(_FIELDS))}", field="body")
    url = _url(body, required=False)
    entity_types, operations = _filters(body, creating=False)
    description = body.text("description", required=False, max_len=500, min_len=0)
    enabled = body.boolean("enabled")
    with transaction() as conn:
        row = fetch_one(
            conn,
            "update_webhook",
            {
                "id": webhook_id,
                "account_id": caller.account_id,
                "url": url,
                "description": description,
                "entity_types": entity_types,
                "operations": operations,
                "enabled": enabled,
            },
        )
    if row is None:
        raise NotFound(f"webhook {webhook_id} not found")
    return WEBHOOKS.to_wire(row)


def delete(caller: Caller, webhook_id: str) -> None:
    caller.require("admin")
    webhook_id = listing.parse_uuid(webhook_id, "id")
    with transaction() as conn:
        if execute(conn, "delete_webhook", {"id": webhook_id, "account_id": caller.account_id}) == 0:
            raise NotFound(f"webhook {webhook_id} not found")


def rotate_secret(caller: Caller, webhook_id: str) -> dict[str, Any]:
    """A new secret (in this answer only); the old one keeps signing too for 24 hours."""
    caller.require("admin")
    webhook_id = listing.parse_uuid(webhook_id, "id")
    secret = signing.new_secret()
    sealed = sealing.checked_box().seal(webhook_id, secret)
    with transaction() as conn:
        row = fetch_one(
            conn,
            "rotate_webhook_secret",
            {
                "id": webhook_id,
                "account_id": caller.account_id,
                "secret": sealed,
                "overlap_s": float(ROTATION_OVERLAP_S),
            },
        )
    if row is None:
        raise NotFound(f"webhook {webhook_id} not found")
    return {**WEBHOOKS.to_wire(row), "secret": secret}


def send_test(caller: Caller, webhook_id: str) -> dict[str, Any]:
    """Queue a `webhook.test` delivery (whatever the filter) through the normal path: signed, retried, listed."""
    from chalicelib.webhooks import deliveries, outbox

    caller.require("admin")
    webhook_id = listing.parse_uuid(webhook_id, "id")
    now = dt.datetime.now(dt.UTC)
    with transaction() as conn:
        state = fetch_one(conn, "webhook_state", {"id": webhook_id, "account_id": caller.account_id})
        if state is None:
            raise NotFound(f"webhook {webhook_id} not found")
        if not state["enabled"]:
            raise Conflict("the webhook is disabled; enable it (PATCH enabled=true) first")
        payload = json.dumps(
            {
                "type": TEST_EVENT_TYPE,
                "timestamp": now.isoformat().replace("+00:00", "Z"),
                "data": {"webhookId": webhook_id, "message": "a test event sent from POST /webhooks/{id}/test"},
                "accountId": caller.account_id,
                "eventId": None,
            },
            separators=(",", ":"),
        )
        row = fetch_one(
            conn,
            "insert_test_delivery",
            {
                "account_id": caller.account_id,
                "webhook_id": webhook_id,
                "event_type": TEST_EVENT_TYPE,
                "payload": payload,
            },
        )
    assert row is not None
    outbox.dispatch([Message(str(row["id"]), caller.account_id)])
    return deliveries.DELIVERIES.to_wire(row)
