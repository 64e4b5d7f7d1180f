"""The emulator's speed fixes (infra/local/moto_patches.py) keep the AWS semantics the platform relies on."""

from __future__ import annotations

import time
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration


@pytest.fixture()
def table(emulator_url: str) -> tuple[Any, str]:
    dynamodb = boto3.client("dynamodb", endpoint_url=emulator_url, region_name="us-east-1")
    name = f"patches-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    return dynamodb, name


def _put(table: str, sk: str, condition: str | None = "attribute_not_exists(sk)") -> dict[str, Any]:
    put: dict[str, Any] = {"TableName": table, "Item": {"pk": {"S": "p"}, "sk": {"S": sk}, "v": {"N": "1"}}}
    if condition:
        put["ConditionExpression"] = condition
    return {"Put": put}


def _keys(dynamodb: Any, table: str) -> list[str]:
    items = dynamodb.query(
        TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}}
    )["Items"]
    return sorted(item["sk"]["S"] for item in items)


def test_a_transaction_writes_all_or_nothing(table: tuple[Any, str]) -> None:
    dynamodb, name = table
    dynamodb.transact_write_items(TransactItems=[_put(name, "a"), _put(name, "b")])
    assert _keys(dynamodb, name) == ["a", "b"]
    with pytest.raises(ClientError) as refused:
        # "c" alone would succeed; "a" exists, so neither may be written.
        dynamodb.transact_write_items(TransactItems=[_put(name, "c"), _put(name, "a")])
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in refused.value.response["CancellationReasons"]]
    assert reasons == ["None", "ConditionalCheckFailed"]
    assert _keys(dynamodb, name) == ["a", "b"]


def test_a_transaction_applies_updates_deletes_and_condition_checks(table: tuple[Any, str]) -> None:
    dynamodb, name = table
    dynamodb.transact_write_items(TransactItems=[_put(name, "a"), _put(name, "b")])
    dynamodb.transact_write_items(
        TransactItems=[
            {
                "ConditionCheck": {
                    "TableName": name,
                    "Key": {"pk": {"S": "p"}, "sk": {"S": "a"}},
                    "ConditionExpression": "attribute_exists(sk)",
                }
            },
            {
                "Update": {
                    "TableName": name,
                    "Key": {"pk": {"S": "p"}, "sk": {"S": "b"}},
                    "UpdateExpression": "SET v = v + :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
            {"Delete": {"TableName": name, "Key": {"pk": {"S": "p"}, "sk": {"S": "z"}}}},
        ]
    )
    item = dynamodb.get_item(TableName=name, Key={"pk": {"S": "p"}, "sk": {"S": "b"}})["Item"]
    assert item["v"] == {"N": "2"}
    with pytest.raises(ClientError) as refused:  # one item twice in a transaction is refused, as by AWS
        dynamodb.transact_write_items(TransactItems=[_put(name, "d", None), _put(name, "d", None)])
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert _keys(dynamodb, name) == ["a", "b"]


def test_sqs_delay_and_visibility_still_hold(emulator_url: str) -> None:
    sqs = boto3.client("sqs", endpoint_url=emulator_url, region_name="us-east-1")
    url = sqs.create_queue(QueueName=f"patches-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    sqs.send_message(QueueUrl=url, MessageBody="now")
    (first,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=1)["Messages"]
    assert first["Body"] == "now"  # the delayed one is not visible yet, the received one is in flight
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []
    time.sleep(1.2)
    bodies = sorted(m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"])
    assert bodies == ["later", "now"]  # the delay ran out; the unacknowledged one came back
