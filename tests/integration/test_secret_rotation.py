"""Rotating JWT_SECRET invalidates every token at the next cold start; API keys keep working."""

from __future__ import annotations

import os
import secrets

import pytest

from tests.integration.conftest import Api, Stack, reset_caches, token_for

pytestmark = pytest.mark.integration


def test_old_tokens_die_and_api_keys_live(stack: Stack) -> None:
    old_token = token_for("jamie@apexracing.io")
    jamie = Api(stack.api_url, old_token)
    key = jamie.post("/api-keys", {"name": "survives rotation", "role": "viewer"}).json()["key"]
    original = os.environ["JWT_SECRET"]
    os.environ["JWT_SECRET"] = secrets.token_hex(64)
    reset_caches()  # the next request is a cold start reading the new secret
    try:
        assert Api(stack.api_url, old_token).get("/events").status_code == 401
        assert Api(stack.api_url, api_key=key).get("/events").status_code == 200
    finally:
        os.environ["JWT_SECRET"] = original
        reset_caches()
    assert Api(stack.api_url, old_token).get("/events").status_code == 200
