"""Webhook secrets and the headers of each POST: Standard Webhooks signatures plus the original's X-Race-* ones.

- `webhook-signature`: `v1,<base64 HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")>`, the key
  being the base64-decoded part of the `whsec_` secret (the Standard Webhooks scheme, signed with the
  `standardwebhooks` library). The timestamp is signed, so a receiver can refuse replays.
- `X-Race-Signature`: `sha256=<hex HMAC-SHA256(secret, body)>` with the whole secret string (`whsec_...`)
  as the key, as the original platform signed (body only: kept for existing receivers).
During a secret rotation both secrets sign: `webhook-signature` holds two space-separated signatures and
`X-Race-Signature` two comma-separated ones (new first); a receiver accepts when any one matches.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105  (the format's prefix, not a secret)
SECRET_BYTES = 36  # 288 random bits: 48 base64 characters without padding
USER_AGENT = "race-webhooks/1.0"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def standard_signature(secret: str, webhook_id: str, timestamp_s: int, body: str) -> str:
    from standardwebhooks.webhooks import Webhook

    return Webhook(secret).sign(webhook_id, dt.datetime.fromtimestamp(timestamp_s, dt.UTC), body)


def legacy_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def headers(
    *, delivery_id: str, event_type: str, body: str, secrets_: Sequence[str], timestamp_s: int
) -> dict[str, str]:
    """Every header of one attempt; `secrets_` = the current secret, then the previous one while rotating."""
    raw = body.encode("utf-8")
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp_s),
        "webhook-signature": " ".join(standard_signature(s, delivery_id, timestamp_s, body) for s in secrets_),
        "X-Race-Event": event_type,
        "X-Race-Delivery": delivery_id,
        "X-Race-Signature": ",".join(legacy_signature(s, raw) for s in secrets_),
    }
