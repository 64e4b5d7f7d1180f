"""/api-keys: create (secret shown once), list, revoke."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api.routing import caller, json_body, query_params, route
from chalicelib.domain import api_keys

bp = Blueprint(__name__)


@route(bp, "/api-keys", methods=("POST",), status=201)
def create_key() -> Any:
    return api_keys.create(caller(), json_body(bp))


@route(bp, "/api-keys")
def list_keys() -> Any:
    return api_keys.list_keys(caller(), query_params(bp))


@route(bp, "/api-keys/{id}", methods=("DELETE",))
def revoke_key(id: str) -> None:
    api_keys.revoke(caller(), id)
