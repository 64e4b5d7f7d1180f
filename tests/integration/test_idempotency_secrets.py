"""One-time secrets never rest in an idempotency record: the DynamoDB items are read as they are."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.integration.conftest import Api, Stack, mailed_token, new_account, token_for

pytestmark = pytest.mark.integration
QUIET_WEBHOOK = {"url": "http://127.0.0.1:9/secrets", "entityTypes": ["strategy"], "operations": ["delete"]}


def _records(stack: Stack, account_id: str) -> list[dict[str, Any]]:
    import boto3

    from chalicelib.config import settings

    dynamodb = boto3.client("dynamodb", endpoint_url=stack.aws_endpoint_url, region_name="us-east-1")
    return dynamodb.query(  # type: ignore[no-any-return]
        TableName=settings().kv_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"idempotency#{account_id}"}},
    )["Items"]


def _twice(api: Api, path: str, body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first, again = api.post(path, body, headers=key), api.post(path, body, headers=key)
    assert first.status_code in (200, 201) and again.status_code == first.status_code, again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    return first.json(), again.json()


def test_secrets_are_answered_once_and_never_kept(stack: Stack) -> None:
    email, account_id = new_account("owner")
    owner = Api(stack.api_url, token_for(email))
    made_key, replayed_key = _twice(owner, "/api-keys", {"name": "feed"})
    hook, replayed_hook = _twice(owner, "/webhooks", QUIET_WEBHOOK)
    rotated, replayed_rotation = _twice(owner, f"/webhooks/{hook['id']}/rotate-secret", None)
    invited = f"i-{uuid.uuid4().hex[:8]}@s.test"
    invite, replayed_invite = _twice(owner, "/members", {"email": invited, "role": "viewer"})
    secrets = [made_key["key"], hook["secret"], rotated["secret"], mailed_token(invited)]
    assert made_key["key"].startswith("race_") and hook["secret"].startswith("whsec_")
    assert (replayed_key["key"], replayed_key["secretShownOnce"], replayed_key["id"]) == (None, ["key"], made_key["id"])
    assert (replayed_hook["secret"], replayed_hook["secretShownOnce"]) == (None, ["secret"])
    assert (replayed_rotation["secret"], replayed_rotation["secretShownOnce"]) == (None, ["secret"])
    assert replayed_invite == invite and "inviteToken" not in invite  # the token went only by email
    stored = json.dumps(_records(stack, account_id))
    assert len(_records(stack, account_id)) == 4
    assert not [s for s in secrets if s in stored], "a one-time secret rests in DynamoDB"
    assert made_key["prefix"] in stored and "whsec_" not in stored  # the key's public prefix is no secret


def test_an_answer_without_secrets_is_replayed_whole(stack: Stack) -> None:
    email, _ = new_account("owner")
    owner = Api(stack.api_url, token_for(email))
    first, again = _twice(owner, "/events", {"name": "Sebring 12h"})
    assert again == first and "secretShownOnce" not in again
