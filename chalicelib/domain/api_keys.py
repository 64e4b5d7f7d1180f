"""API keys: created with a secret shown once, listed without it, revoked at once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from chalicelib.domain import access, changes, idempotency, listing, tokens
from chalicelib.domain.caller import Caller
from chalicelib.domain.records import API_KEYS
from chalicelib.domain.roles import at_least
from chalicelib.domain.validation import Body
from chalicelib.errors import Forbidden, NotFound
from chalicelib.store.postgres import execute, fetch_one, transaction

KEY_ROLES = ("viewer", "engineer", "admin")


def create(caller: Caller, payload: Any) -> dict[str, Any]:
    caller.require("admin")
    body = Body(payload, allowed={"name", "role", "expiresAt"})
    name = body.text("name", max_len=100)
    role = body.choice("role", KEY_ROLES, default="engineer")
    expires_at = body.time("expiresAt", required=False)
    if expires_at is not None and expires_at <= dt.datetime.now(dt.UTC):
        body.fail("expiresAt must be in the future", "expiresAt")
    if not at_least(caller.role, role):
        raise Forbidden(f"you cannot create a key with more rights ({role}) than your own ({caller.role})")
    secret, prefix, key_hash = tokens.new_api_key()
    with transaction() as conn:
        idempotency.claim_in(conn)  # a retried key never makes a second one (its secret was shown once)
        row = fetch_one(
            conn,
            "insert_api_key",
            {
                "account_id": caller.account_id,
                "created_by": caller.acting_user_id,  # a key minted by a key is its creator's
                "name": name,
                "prefix": prefix,
                "key_hash": key_hash,
                "role": role,
                "expires_at": expires_at,
            },
        )
    assert row is not None
    return {**API_KEYS.to_wire(row), "key": secret}


def list_keys(caller: Caller, params: Mapping[str, str]) -> dict[str, Any]:
    from chalicelib.domain.reads import list_page

    caller.require("admin")
    return list_page(caller, API_KEYS, params)


def revoke(caller: Caller, key_id: str) -> None:
    caller.require("admin")
    key_id = listing.parse_uuid(key_id, "id")
    with changes.write(caller) as (conn, recorder):
        if execute(conn, "delete_api_key", {"id": key_id, "account_id": caller.account_id}) == 0:
            raise NotFound(f"api key {key_id} not found")
        access.lose(recorder, access.AccessLoss(caller.account_id, api_key_ids=(key_id,)))  # its sockets close
