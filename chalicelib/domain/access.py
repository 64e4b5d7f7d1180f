"""Live access to an account's session rooms, re-checked where it is used, and the losses that end it.

A WebSocket connection is authenticated once, at `$connect`; what it may do afterwards is decided
now, from PostgreSQL: its user is still a member (or its key still exists, is unexpired and its
creator still a member) and, for a JWT, the token was signed by the secret in force now (the
connection keeps a fingerprint of that secret, never the secret). Every role reads rooms, so a
principal holds room access exactly while it may authenticate at all.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.config import settings
from chalicelib.domain import roles
from chalicelib.domain.caller import Caller
from chalicelib.errors import Unauthorized
from chalicelib.store.postgres import fetch_all, fetch_one, transaction

if TYPE_CHECKING:
    import psycopg

    from chalicelib.domain.changes import Recorder

ROOM_ROLE = "viewer"
_FINGERPRINT_LABEL = b"race-platform connection secret fingerprint v1"


def secret_fingerprint(secret: str) -> str:
    """Names a signing secret without revealing it (an HMAC of a fixed label, 64 bits)."""
    return hmac.new(secret.encode(), _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:16]


def current_fingerprint() -> str:
    return secret_fingerprint(settings().jwt_secret)


@dataclass(frozen=True)
class Principal:
    """Who a connection acts for: a user (signed in with a JWT) or an API key, in one account."""

    account_id: str
    user_id: str | None = None
    api_key_id: str | None = None
    secret_fp: str | None = None  # JWT connections: the fingerprint of the secret that signed the token

    @classmethod
    def of(cls, record: dict[str, Any]) -> Principal:
        """From a connection or room-member record (camelCase, as store/connections.py returns it)."""
        return cls(record["accountId"], record.get("userId"), record.get("apiKeyId"), record.get("secretFp"))


def recheck(principal: Principal) -> Caller:
    """The principal as it stands now, or Unauthorized (removed, revoked, expired, secret rotated)."""
    with transaction() as conn:
        if principal.api_key_id:
            key = fetch_one(conn, "api_key_by_id", {"id": principal.api_key_id, "account_id": principal.account_id})
            if key is None:
                raise Unauthorized("this connection's API key was revoked; reconnect with a valid key")
            if key["expired"]:
                raise Unauthorized("this connection's API key expired")
            role = _key_role(key)
            caller = Caller(principal.account_id, role, api_key_id=principal.api_key_id)
        else:
            if principal.secret_fp != current_fingerprint():
                raise Unauthorized("the signing secret was rotated since this connection opened; sign in again")
            member = fetch_one(conn, "member", {"user_id": principal.user_id, "account_id": principal.account_id})
            if member is None:
                raise Unauthorized("this account no longer has you as a member")
            caller = Caller(principal.account_id, member["role"], user_id=principal.user_id)
    if not roles.at_least(caller.role, ROOM_ROLE):
        raise Unauthorized(f"session rooms need the {ROOM_ROLE} role")
    return caller


def _key_role(key: dict[str, Any]) -> str:
    from chalicelib.domain.auth import key_role

    return key_role(key["role"], key["created_by"], key["creator_role"])


def holding(principals: Iterable[Principal]) -> set[Principal]:
    """Those of `principals` that hold room access now: one query per account and kind, whatever
    their number (the fan-out asks this before each page it sends)."""
    wanted = set(principals)
    current_fp = current_fingerprint()
    by_account: dict[str, list[Principal]] = {}
    for p in wanted:
        by_account.setdefault(p.account_id, []).append(p)
    held: set[Principal] = set()
    with transaction() as conn:
        for account_id, group in by_account.items():
            users = sorted({p.user_id for p in group if not p.api_key_id and p.user_id and p.secret_fp == current_fp})
            keys = sorted({p.api_key_id for p in group if p.api_key_id})
            user_roles = _roles(conn, "members_among", {"account_id": account_id, "user_ids": users}) if users else {}
            key_rows = fetch_all(conn, "keys_among", {"account_id": account_id, "key_ids": keys}) if keys else []
            key_roles = {row["id"]: _key_role_or_none(row) for row in key_rows}
            for p in group:
                if p.api_key_id:
                    role = key_roles.get(p.api_key_id)
                else:  # a token signed by a rotated secret holds nothing, whoever it names
                    role = user_roles.get(p.user_id or "") if p.secret_fp == current_fp else None
                if role is not None and roles.at_least(role, ROOM_ROLE):
                    held.add(p)
    return held


def _roles(conn: psycopg.Connection[dict[str, Any]], name: str, params: dict[str, Any]) -> dict[str, str]:
    return {row["id"]: row["role"] for row in fetch_all(conn, name, params)}


def _key_role_or_none(row: dict[str, Any]) -> str | None:
    try:
        return _key_role(row)
    except Unauthorized:
        return None


@dataclass(frozen=True)
class AccessLoss:
    """Principals of one account that lose access once the transaction that found it commits."""

    account_id: str
    user_ids: tuple[str, ...] = ()
    api_key_ids: tuple[str, ...] = ()


def lose(recorder: Recorder, loss: AccessLoss) -> None:
    """Tell the write's consumers that `loss` takes effect at its commit (they close live access then)."""
    from chalicelib.domain.sinks import AccessListener

    for sink in recorder.sinks.values():
        if isinstance(sink, AccessListener):
            sink.lost(loss)


def member_removed(recorder: Recorder, account_id: str, user_id: str) -> None:
    """A member leaves the account: they, and every key they created there, lose access."""
    keys = fetch_all(recorder.conn, "api_keys_created_by", {"account_id": account_id, "user_id": user_id})
    lose(recorder, AccessLoss(account_id, (user_id,), tuple(row["id"] for row in keys)))
