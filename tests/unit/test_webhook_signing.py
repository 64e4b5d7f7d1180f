"""Signatures: Standard Webhooks (verified with the `standardwebhooks` library) and the original's body HMAC."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from chalicelib.webhooks import signing

pytestmark = pytest.mark.unit

BODY = json.dumps(
    {
        "type": "lap.create",
        "timestamp": "2026-03-14T10:00:00.000000Z",
        "data": {"lapNumber": 7},
        "accountId": "a0000000-0000-0000-0000-000000000001",
        "eventId": 42,
    },
    separators=(",", ":"),
)
DELIVERY = "6f1d9a4e-0b7c-4c59-9d59-8f7d2c1b5a10"


def _headers(*secrets: str, timestamp_s: int | None = None, body: str = BODY) -> dict[str, str]:
    return signing.headers(
        delivery_id=DELIVERY,
        event_type="lap.create",
        body=body,
        secrets_=list(secrets),
        timestamp_s=int(time.time()) if timestamp_s is None else timestamp_s,
    )


def plain_legacy_check(secret: str, body: bytes, header: str) -> bool:
    """What an integrator of the original platform writes (any listed signature may match)."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate.strip()) for candidate in header.split(","))


def test_secrets_are_whsec_prefixed_base64_of_288_random_bits() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_") and len(secret) == 6 + 48
    assert len(base64.b64decode(secret[6:])) == 36
    assert signing.new_secret() != secret


def test_every_header_of_an_attempt() -> None:
    secret = signing.new_secret()
    headers = _headers(secret, timestamp_s=1773482400)
    assert headers["webhook-id"] == headers["X-Race-Delivery"] == DELIVERY
    assert headers["webhook-timestamp"] == "1773482400"
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["X-Race-Event"] == "lap.create"
    assert headers["X-Race-Signature"].startswith("sha256=") and len(headers["X-Race-Signature"]) == 7 + 64
    assert headers["User-Agent"] == "race-webhooks/1.0"
    assert headers["Content-Type"] == "application/json"


def test_standard_signature_verifies_with_the_standardwebhooks_library() -> None:
    secret = signing.new_secret()
    assert Webhook(secret).verify(BODY, _headers(secret)) == json.loads(BODY)


def test_standard_signature_refuses_tampering_other_secrets_and_stale_timestamps() -> None:
    secret = signing.new_secret()
    headers = _headers(secret)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace("7", "8"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):  # a replay of a 10-minute-old request
        Webhook(secret).verify(BODY, _headers(secret, timestamp_s=int(time.time()) - 600))
    with pytest.raises(WebhookVerificationError):  # the id is signed too
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "another"})


def test_legacy_signature_is_a_plain_hmac_of_the_body_with_the_secret_string() -> None:
    secret = signing.new_secret()
    headers = _headers(secret)
    assert plain_legacy_check(secret, BODY.encode(), headers["X-Race-Signature"])
    assert (
        headers["X-Race-Signature"] == "sha256=" + hmac.new(secret.encode(), BODY.encode(), hashlib.sha256).hexdigest()
    )
    assert not plain_legacy_check(secret, BODY.encode() + b" ", headers["X-Race-Signature"])


def test_during_a_rotation_both_secrets_sign_and_each_verifies_alone() -> None:
    new, old = signing.new_secret(), signing.new_secret()
    headers = _headers(new, old)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert len(headers["X-Race-Signature"].split(",")) == 2
    for secret in (new, old):
        Webhook(secret).verify(BODY, headers)
        assert plain_legacy_check(secret, BODY.encode(), headers["X-Race-Signature"])
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(BODY, headers)


def test_non_ascii_bodies_sign_their_utf8_bytes() -> None:
    secret = signing.new_secret()
    body = json.dumps({"data": {"driver": "Sébastien Bourdais"}}, ensure_ascii=False)
    headers = _headers(secret, body=body)
    Webhook(secret).verify(body.encode("utf-8"), headers)
    assert plain_legacy_check(secret, body.encode("utf-8"), headers["X-Race-Signature"])
