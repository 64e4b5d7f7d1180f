"""JWTs and API key secrets."""

from __future__ import annotations

import pytest

from chalicelib.domain import tokens
from chalicelib.errors import Unauthorized

pytestmark = pytest.mark.unit
SECRET = "k" * 64


def test_issued_token_verifies() -> None:
    token = tokens.issue_jwt(SECRET, user_id="u", account_id="a", role="owner", ttl_s=60)
    claims = tokens.verify_jwt(SECRET, token)
    assert (claims["sub"], claims["acc"], claims["role"]) == ("u", "a", "owner")


def test_expired_token_says_so() -> None:
    token = tokens.issue_jwt(SECRET, user_id="u", account_id="a", role="owner", ttl_s=-10)
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify_jwt(SECRET, token)


def test_api_keys_are_random_prefixed_and_hashed() -> None:
    secret, prefix, key_hash = tokens.new_api_key()
    other, _, other_hash = tokens.new_api_key()
    assert secret.startswith("race_") and secret != other
    assert prefix == secret[:11] and key_hash == tokens.hash_api_key(secret) != other_hash
    assert secret not in key_hash
    assert tokens.looks_like_api_key(secret) and not tokens.looks_like_api_key("race_short")


def test_a_secret_fingerprint_names_the_secret_without_revealing_it() -> None:
    from chalicelib.domain.access import secret_fingerprint

    one, two = "a" * 64, "b" * 64
    assert secret_fingerprint(one) == secret_fingerprint(one)
    assert secret_fingerprint(one) != secret_fingerprint(two)
    assert len(secret_fingerprint(one)) == 16 and one[:8] not in secret_fingerprint(one)
