"""/api-keys: create (secret shown once), list, revoke."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api import shapes
from chalicelib.api.routing import caller, json_body, query_params, route
from chalicelib.api.shapes import documented
from chalicelib.domain import api_keys
from chalicelib.domain.records import API_KEYS

bp = Blueprint(__name__)


@route(bp, "/api-keys", methods=("POST",), status=201, applied_once=True)
@documented(request=shapes.api_key_request(), answer=shapes.api_key_created())
def create_key() -> Any:
    """Create an API key; its race_ secret is in this answer only"""
    return api_keys.create(caller(), json_body(bp))


@route(bp, "/api-keys")
@documented(resource=API_KEYS, listing=True)
def list_keys() -> Any:
    """List API keys (name, prefix, role, last use; never the secret)"""
    return api_keys.list_keys(caller(), query_params(bp))


@route(bp, "/api-keys/{id}", methods=("DELETE",))
def revoke_key(id: str) -> None:
    """Revoke an API key: the next request with it gets 401"""
    api_keys.revoke(caller(), id)
