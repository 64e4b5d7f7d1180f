"""The fan-out's PostToConnection is the request boto3 would send: same URL, body and SigV4 signature."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.realtime.poster import Poster

pytestmark = pytest.mark.unit

ENDPOINT = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
CONNECTION_ID = "Ab3dEfGhIAMCJ-Q="  # API Gateway's ids end in '=': percent-encoded in the path
FRAME = b'{"type":"lap.create","seq":7,"data":{"id":"1"}}'
AT = datetime.datetime(2026, 12, 5, 1, 2, 3, tzinfo=datetime.UTC)


class Captured(Exception):
    def __init__(self, request: Any) -> None:
        self.request = request


@pytest.fixture(autouse=True)
def signing_at_a_fixed_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import botocore.auth

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-example")
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: AT.replace(tzinfo=None))
    yield


def _boto3_request() -> Any:
    """What boto3's client would put on the wire for the same call (stopped just before sending)."""
    import boto3

    client = boto3.session.Session().client("apigatewaymanagementapi", endpoint_url=ENDPOINT, region_name="eu-west-1")

    def capture(request: Any, **kwargs: Any) -> None:
        raise Captured(request)

    client.meta.events.register("before-send", capture)
    with pytest.raises(Captured) as sent:
        client.post_to_connection(ConnectionId=CONNECTION_ID, Data=FRAME)
    return sent.value.request


def test_the_signed_post_is_the_one_boto3_sends() -> None:
    ours = Poster(ENDPOINT, "eu-west-1", pool_size=2).request(CONNECTION_ID, FRAME)
    theirs = _boto3_request()
    assert (ours.method, ours.url, ours.body) == (theirs.method, theirs.url, theirs.body)
    assert ours.url.endswith("/prod/@connections/Ab3dEfGhIAMCJ-Q%3D")
    for header in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
        assert _text(ours.headers[header]) == _text(theirs.headers[header]), header


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value  # boto3 encodes its headers on the way out


def test_a_poster_without_credentials_refuses_to_send_unsigned(monkeypatch: pytest.MonkeyPatch) -> None:
    poster = Poster(ENDPOINT, "eu-west-1", pool_size=2)
    monkeypatch.setattr(poster, "_credentials", None)
    with pytest.raises(RuntimeError, match="no AWS credentials"):
        poster.request(CONNECTION_ID, FRAME)
