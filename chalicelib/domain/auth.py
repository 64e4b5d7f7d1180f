"""Signing in, recognising callers (JWT or API key) and limiting login attempts."""

from __future__ import annotations

from typing import Any

from chalicelib.config import settings
from chalicelib.domain import passwords, rate_limits, roles, tokens
from chalicelib.domain.caller import Caller
from chalicelib.domain.records import encode
from chalicelib.errors import Forbidden, Invalid, Unauthorized
from chalicelib.store.postgres import execute, fetch_all, fetch_one, transaction

# A person mistyping gets 10 tries in 5 minutes; one address 50 (a paddock NAT).
LOGIN_LIMITS = (("email", 10, 300), ("ip", 50, 300))
MAX_PASSWORD_CHARS = 1024
CREATORLESS_KEY_ROLE = "viewer"


def _check_login_rate(email: str, source_ip: str) -> None:
    rate_limits.check("sign-in", LOGIN_LIMITS, {"email": email.lower(), "ip": source_ip})


def accounts_wire(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `accounts` of a sign-in answer, from the accounts_of_user query."""
    return [{"id": str(a["id"]), "name": a["name"], "role": a["role"]} for a in rows]


def login(email: Any, password: Any, source_ip: str, account_id: Any = None) -> dict[str, Any]:
    """A JWT for one of the user's accounts: `account_id` picks it, else the oldest membership."""
    if not isinstance(email, str) or "@" not in email or len(email) > 320 or "\x00" in email:
        raise Invalid("email must be an email address", field="email")  # NUL: PostgreSQL text refuses it
    if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD_CHARS:
        raise Invalid("password is required", field="password")
    _check_login_rate(email, source_ip)
    if account_id is not None:
        from chalicelib.domain.listing import parse_uuid

        account_id = parse_uuid(account_id, "accountId")
    with transaction() as conn:
        if account_id:
            user = fetch_one(conn, "user_by_email_in_account", {"email": email, "account_id": account_id})
        else:
            user = fetch_one(conn, "user_by_email", {"email": email})
        accounts = fetch_all(conn, "accounts_of_user", {"user_id": user["id"]}) if user else []
        # No login yet: a sign-up waiting for its emailed link (told only to whoever knows its password).
        pending = None if user else fetch_one(conn, "pending_signup_by_email", {"email": email})
    stored = user["password_hash"] if user else pending["password_hash"] if pending else None
    matches = passwords.verify_password(stored, password)
    if matches and user is None:
        raise Forbidden("confirm your email first: open the link we emailed you when you signed up")
    if not matches or user is None:
        raise Unauthorized("wrong email or password")
    token = tokens.issue_jwt(
        settings().jwt_secret,
        user_id=str(user["id"]),
        account_id=str(user["account_id"]),
        role=user["role"],
        ttl_s=settings().jwt_ttl_s,
    )
    return {
        "token": token,
        "expiresIn": settings().jwt_ttl_s,
        "user": {
            "id": str(user["id"]),
            "email": user["email"],
            "name": user["name"],
            "role": user["role"],
            "accountId": str(user["account_id"]),
            "accountName": user["account_name"],
        },
        # Members of several teams sign in again with accountId to switch.
        "accounts": accounts_wire(accounts),
    }


def authenticate(authorization: str | None, api_key: str | None) -> Caller:
    """The caller behind the request's credentials, or Unauthorized."""
    if authorization:
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise Unauthorized("Authorization must be 'Bearer <token>'")
        credential = credential.strip()
        if tokens.looks_like_api_key(credential):
            return authenticate_api_key(credential)
        return authenticate_jwt(credential)
    if api_key:
        return authenticate_api_key(api_key.strip())
    raise Unauthorized("sign in: send Authorization: Bearer <token> or X-API-Key: race_<secret>")


def authenticate_jwt(token: str) -> Caller:
    claims = tokens.verify_jwt(settings().jwt_secret, token)
    with transaction() as conn:
        # Membership is read each time so a removed member or changed role takes effect at once.
        member = fetch_one(conn, "member", {"user_id": claims["sub"], "account_id": claims["acc"]})
    if member is None:
        raise Unauthorized("this account no longer has you as a member; sign in again")
    return Caller(account_id=str(member["account_id"]), role=member["role"], user_id=str(member["id"]))


def authenticate_api_key(secret: str) -> Caller:
    if not tokens.looks_like_api_key(secret):
        raise Unauthorized("invalid API key")
    with transaction() as conn:
        key = fetch_one(conn, "api_key_by_hash", {"key_hash": tokens.hash_api_key(secret)})
        if key is None:
            raise Unauthorized("invalid or revoked API key")
        if key["expired"]:
            raise Unauthorized("API key expired")
        execute(conn, "touch_api_key", {"id": key["id"]})
    return Caller(
        account_id=str(key["account_id"]),
        role=key_role(key["role"], key["created_by"], key["creator_role"]),
        api_key_id=str(key["id"]),
        key_creator_id=str(key["created_by"]) if key["created_by"] else None,
    )


def key_role(own: str, creator_id: Any, creator_role: str | None) -> str:
    """What an API key may do now: never more than its creator holds in the account now.

    A key whose creator left the account is refused (removal revokes it, this is the backstop); a
    key with no recorded creator (made before keys recorded one) acts as a viewer at most, until
    an admin re-issues it (docs/permissions.md).
    """
    if creator_id is None:
        return roles.lower(own, CREATORLESS_KEY_ROLE)
    if creator_role is None:
        raise Unauthorized("this API key's creator is no longer a member of the account; the key is revoked")
    return roles.lower(own, creator_role)


def describe(caller: Caller) -> dict[str, Any]:
    """GET /auth/me: who is calling, in which account, with which role."""
    with transaction() as conn:
        account = fetch_one(conn, "account", {"account_id": caller.account_id})
        member = (
            fetch_one(conn, "member", {"user_id": caller.user_id, "account_id": caller.account_id})
            if caller.user_id
            else None
        )
    if account is None:
        raise Unauthorized("account no longer exists")
    answer: dict[str, Any] = {
        "kind": caller.kind,
        "role": caller.role,
        "account": {"id": str(account["id"]), "name": account["name"], "slug": account["slug"]},
    }
    if member is not None:
        answer["user"] = {"id": str(member["id"]), "email": member["email"], "name": member["name"]}
    if caller.api_key_id:
        answer["apiKey"] = {"id": caller.api_key_id}
    return {k: encode(v) for k, v in answer.items()}
