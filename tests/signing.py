"""Requests compared with boto3's: example credentials, a fixed signing time, and the request a
boto3 client would put on the wire (stopped just before sending)."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest

AT = datetime.datetime(2026, 12, 5, 1, 2, 3, tzinfo=datetime.UTC)


class Captured(Exception):
    def __init__(self, request: Any) -> None:
        self.request = request


def sign_at_a_fixed_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Example credentials (with a session token) and botocore's clock stopped at AT; AWS's own
    endpoints (the integration stack sets AWS_ENDPOINT_URL for the whole process)."""
    import botocore.auth

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-example")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: AT.replace(tzinfo=None))


def boto3_request(client: Any, call: Callable[[Any], Any]) -> Any:
    """What `call(client)` would send."""

    def capture(request: Any, **kwargs: Any) -> None:
        raise Captured(request)

    client.meta.events.register("before-send", capture)
    with pytest.raises(Captured) as sent:
        call(client)
    return sent.value.request


def text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value  # boto3 encodes its headers on the way out
