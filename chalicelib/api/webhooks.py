"""/webhooks: subscriptions (admin), their deliveries, replay and recovery."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api import shapes
from chalicelib.api.routing import caller, json_body, query_params, route
from chalicelib.api.shapes import documented
from chalicelib.webhooks import deliveries, subscriptions

bp = Blueprint(__name__)


@route(bp, "/webhooks", methods=("POST",), status=201, applied_once=True)
@documented(request=shapes.webhook_write(creating=True), answer=shapes.webhook_with_secret())
def create_webhook() -> Any:
    """Subscribe a URL to domain events; its whsec_ signing secret is in this answer only"""
    return subscriptions.create(caller(), json_body(bp))


@route(bp, "/webhooks")
@documented(resource=subscriptions.WEBHOOKS, listing=True, answer=shapes.page_of(shapes.webhook()))
def list_webhooks() -> Any:
    """List your account's webhooks (never their secrets)"""
    return subscriptions.list_webhooks(caller(), query_params(bp))


@route(bp, "/webhooks/{id}")
@documented(answer=shapes.webhook())
def get_webhook(id: str) -> Any:
    """One webhook (never its secret)"""
    return subscriptions.get(caller(), id)


@route(bp, "/webhooks/{id}", methods=("PATCH",))
@documented(request=shapes.webhook_write(creating=False), answer=shapes.webhook())
def update_webhook(id: str) -> Any:
    """Change a webhook's url, filter, description or enabled flag (enabling clears disabledReason)"""
    return subscriptions.update(caller(), id, json_body(bp))


@route(bp, "/webhooks/{id}", methods=("DELETE",))
def delete_webhook(id: str) -> None:
    """Delete a webhook and its deliveries"""
    subscriptions.delete(caller(), id)


@route(bp, "/webhooks/{id}/rotate-secret", methods=("POST",))
@documented(answer=shapes.webhook_with_secret(), no_body=True)
def rotate_webhook_secret(id: str) -> Any:
    """A new signing secret (in this answer only); the old one also signs for 24 hours"""
    return subscriptions.rotate_secret(caller(), id)


@route(bp, "/webhooks/{id}/test", methods=("POST",), status=202)
@documented(answer=shapes.delivery(), no_body=True)
def test_webhook(id: str) -> Any:
    """Send a webhook.test event through the normal delivery path"""
    return subscriptions.send_test(caller(), id)


@route(bp, "/webhooks/{id}/deliveries")
@documented(query=shapes.delivery_query(), answer=shapes.page_of(shapes.delivery()))
def list_deliveries(id: str) -> Any:
    """A webhook's deliveries, newest first (status, eventType, since, until filters)"""
    return deliveries.list_page(caller(), id, query_params(bp))


@route(bp, "/webhooks/{id}/deliveries/{deliveryId}")
@documented(answer=shapes.delivery_detail())
def get_delivery(id: str, deliveryId: str) -> Any:
    """One delivery with its payload and every attempt"""
    return deliveries.get(caller(), id, deliveryId)


@route(bp, "/webhooks/{id}/deliveries/{deliveryId}/replay", methods=("POST",), status=202)
@documented(answer=shapes.delivery(), no_body=True)
def replay_delivery(id: str, deliveryId: str) -> Any:
    """Start a new cycle of attempts for a delivery (same webhook-id)"""
    return deliveries.replay(caller(), id, deliveryId)


@route(bp, "/webhooks/{id}/recover", methods=("POST",), status=202)
@documented(request=shapes.recover_request(), answer=shapes.recover_answer())
def recover_deliveries(id: str) -> Any:
    """Replay every failed delivery created in [since, until), in the background; says how many"""
    return deliveries.recover(caller(), id, json_body(bp))
