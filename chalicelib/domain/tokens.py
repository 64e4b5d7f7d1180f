"""JWT sessions (HS256 with JWT_SECRET) and `race_` API key secrets (stored only as a hash)."""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

from chalicelib.errors import Unauthorized

API_KEY_PREFIX = "race_"
_ALGORITHM = "HS256"
_ISSUER = "race-platform"


def issue_jwt(secret: str, *, user_id: str, account_id: str, role: str, ttl_s: int) -> str:
    import jwt

    now = int(time.time())
    claims = {"iss": _ISSUER, "sub": user_id, "acc": account_id, "role": role, "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def verify_jwt(secret: str, token: str) -> dict[str, Any]:
    """The token's claims, or Unauthorized for expired, forged, malformed or non-HS256 tokens."""
    import jwt

    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],  # pins the algorithm: "none" and RS/ES confusions are refused
            issuer=_ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token expired; sign in again") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid token") from exc
    if not isinstance(claims.get("acc"), str) or not isinstance(claims.get("role"), str):
        raise Unauthorized("invalid token")
    return claims


def new_api_key() -> tuple[str, str, str]:
    """A fresh key: (the secret shown once, its display prefix, its hash to store)."""
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return secret, secret[: len(API_KEY_PREFIX) + 6], hash_api_key(secret)


def hash_api_key(secret: str) -> str:
    # A 256-bit random secret needs no slow hash: SHA-256 keeps lookups O(1) by index.
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_api_key(value: str) -> bool:
    return value.startswith(API_KEY_PREFIX) and 20 <= len(value) <= 100
