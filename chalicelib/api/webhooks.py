"""/webhooks: subscriptions (admin), their deliveries, replay and recovery."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from chalice import Blueprint

from chalicelib.api.routing import caller, json_body, query_params, route
from chalicelib.webhooks import deliveries, subscriptions

bp = Blueprint(__name__)


@route(bp, "/webhooks", methods=("POST",), status=201, applied_once=True)
def create_webhook() -> Any:
    """Subscribe a URL to domain events; its whsec_ signing secret is in this answer only"""
    return subscriptions.create(caller(), json_body(bp))


@route(bp, "/webhooks")
def list_webhooks() -> Any:
    """List your account's webhooks (never their secrets)"""
    return subscriptions.list_webhooks(caller(), query_params(bp))


@route(bp, "/webhooks/{id}")
def get_webhook(id: str) -> Any:
    """One webhook (never its secret)"""
    return subscriptions.get(caller(), id)


@route(bp, "/webhooks/{id}", methods=("PATCH",))
def update_webhook(id: str) -> Any:
    """Change a webhook's url, filter, description or enabled flag (enabling clears disabledReason)"""
    return subscriptions.update(caller(), id, json_body(bp))


@route(bp, "/webhooks/{id}", methods=("DELETE",))
def delete_webhook(id: str) -> None:
    """Delete a webhook and its deliveries"""
    subscriptions.delete(caller(), id)


@route(bp, "/webhooks/{id}/rotate-secret", methods=("POST",))
def rotate_webhook_secret(id: str) -> Any:
    """A new signing secret (in this answer only); the old one also signs for 24 hours"""
    return subscriptions.rotate_secret(caller(), id)


@route(bp, "/webhooks/{id}/test", methods=("POST",), status=202)
def test_webhook(id: str) -> Any:
    """Send a webhook.test event through the normal delivery path"""
    return subscriptions.send_test(caller(), id)


@route(bp, "/webhooks/{id}/deliveries")
def list_deliveries(id: str) -> Any:
    """A webhook's deliveries, newest first (status, eventType, since, until filters)"""
    return deliveries.list_page(caller(), id, query_params(bp))


@route(bp, "/webhooks/{id}/deliveries/{deliveryId}")
def get_delivery(id: str, deliveryId: str) -> Any:
    """One delivery with its payload and every attempt"""
    return deliveries.get(caller(), id, deliveryId)


@route(bp, "/webhooks/{id}/deliveries/{deliveryId}/replay", methods=("POST",), status=202)
def replay_delivery(id: str, deliveryId: str) -> Any:
    """Start a new cycle of attempts for a delivery (same webhook-id)"""
    return deliveries.replay(caller(), id, deliveryId)


@route(bp, "/webhooks/{id}/recover", methods=("POST",), status=202)
def recover_deliveries(id: str) -> Any:
    """Replay every failed delivery created in [since, until), in the background; says how many"""
    return deliveries.recover(caller(), id, json_body(bp))


for _view, _resource in ((create_webhook, subscriptions.WEBHOOKS), (get_webhook, subscriptions.WEBHOOKS),
                         (update_webhook, subscriptions.WEBHOOKS), (rotate_webhook_secret, subscriptions.WEBHOOKS),
                         (list_webhooks, subscriptions.WEBHOOKS), (list_deliveries, deliveries.DELIVERIES),
                         (test_webhook, deliveries.DELIVERIES), (replay_delivery, deliveries.DELIVERIES)):
    _view.race_resource = _resource  # type: ignore[attr-defined]  # read by the OpenAPI generator
for _view in (create_webhook, update_webhook):
    _view.race_body = SimpleNamespace(allowed=subscriptions.WRITABLE)  # type: ignore[attr-defined]
list_webhooks.race_list = True  # type: ignore[attr-defined]
list_deliveries.race_list = True  # type: ignore[attr-defined]
