"""Rotating JWT_SECRET invalidates every token at the next cold start; API keys keep working."""

from __future__ import annotations

import secrets

import pytest

from tests.integration.conftest import Api, Stack, cold_start_with, token_for

pytestmark = pytest.mark.integration


def test_old_tokens_die_and_api_keys_live(stack: Stack) -> None:
    old_token = token_for("jamie@apexracing.io")
    jamie = Api(stack.api_url, old_token)
    key = jamie.post("/api-keys", {"name": "survives rotation", "role": "viewer"}).json()["key"]
    with cold_start_with(JWT_SECRET=secrets.token_hex(64)):
        assert Api(stack.api_url, old_token).get("/events").status_code == 401
        assert Api(stack.api_url, api_key=key).get("/events").status_code == 200
    assert Api(stack.api_url, old_token).get("/events").status_code == 200
