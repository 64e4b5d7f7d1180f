"""The `storage` capability's data: a small key-value store per account and plugin in the DynamoDB KV table.

Items live under the partition `plugin-storage#<account>#<plugin id>`, which the host derives from
the invocation, never from anything the plugin sends; a counter item bounds the number of keys.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.config import settings
from chalicelib.plugins import limits
from chalicelib.store.aws import client, translated_errors

_COUNT_SK = "meta#count"


class StorageFull(Exception):
    """The plugin's store already holds the maximum number of keys."""


def partition(account_id: str, plugin_id: str) -> str:
    return f"plugin-storage#{account_id}#{plugin_id}"


def _key(key: str) -> str:
    return f"k#{key}"


def get(account_id: str, plugin_id: str, key: str) -> Any:
    with translated_errors("dynamodb"):
        answer = client("dynamodb").get_item(
            TableName=settings().kv_table,
            Key={"pk": {"S": partition(account_id, plugin_id)}, "sk": {"S": _key(key)}},
            ConsistentRead=True,
        )
    item = answer.get("Item")
    return None if item is None else json.loads(item["value"]["S"])


def put(account_id: str, plugin_id: str, key: str, value_json: str) -> None:
    """Store `value_json` under `key`; StorageFull when it is a new key and the store is full."""
    from botocore.exceptions import ClientError

    dynamodb = client("dynamodb")
    pk = {"S": partition(account_id, plugin_id)}
    item = {"pk": pk, "sk": {"S": _key(key)}, "value": {"S": value_json}}
    for _ in range(3):
        with translated_errors("dynamodb"):
            try:  # an existing key is overwritten without touching the count
                dynamodb.put_item(TableName=settings().kv_table, Item=item, ConditionExpression="attribute_exists(pk)")
                return
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
            try:
                dynamodb.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": settings().kv_table,
                                "Item": item,
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                        {
                            "Update": {
                                "TableName": settings().kv_table,
                                "Key": {"pk": pk, "sk": {"S": _COUNT_SK}},
                                "UpdateExpression": "ADD keyCount :one",
                                "ConditionExpression": "attribute_not_exists(keyCount) OR keyCount < :max",
                                "ExpressionAttributeValues": {
                                    ":one": {"N": "1"},
                                    ":max": {"N": str(limits.STORAGE_MAX_KEYS)},
                                },
                            }
                        },
                    ]
                )
                return
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                    raise StorageFull(f"the store already holds {limits.STORAGE_MAX_KEYS} keys") from exc
                # The key appeared meanwhile: overwrite it on the next round.
    raise StorageFull("the store is too busy to take this key; try again")


def delete(account_id: str, plugin_id: str, key: str) -> bool:
    """Delete `key`; False when it did not exist."""
    from botocore.exceptions import ClientError

    pk = {"S": partition(account_id, plugin_id)}
    with translated_errors("dynamodb"):
        try:
            client("dynamodb").transact_write_items(
                TransactItems=[
                    {
                        "Delete": {
                            "TableName": settings().kv_table,
                            "Key": {"pk": pk, "sk": {"S": _key(key)}},
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": settings().kv_table,
                            "Key": {"pk": pk, "sk": {"S": _COUNT_SK}},
                            "UpdateExpression": "ADD keyCount :minus",
                            "ExpressionAttributeValues": {":minus": {"N": "-1"}},
                        }
                    },
                ]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                return False
            raise
    return True


def delete_all(account_id: str, plugin_id: str) -> int:
    """Remove a plugin's whole store (when the plugin is deleted); returns the items removed."""
    dynamodb = client("dynamodb")
    removed = 0
    start: dict[str, Any] | None = None
    with translated_errors("dynamodb"):
        while True:
            page = dynamodb.query(
                TableName=settings().kv_table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": partition(account_id, plugin_id)}},
                ProjectionExpression="pk, sk",
                **({"ExclusiveStartKey": start} if start else {}),
            )
            items = page.get("Items", [])
            for offset in range(0, len(items), 25):
                batch = [{"DeleteRequest": {"Key": item}} for item in items[offset : offset + 25]]
                dynamodb.batch_write_item(RequestItems={settings().kv_table: batch})
                removed += len(batch)
            start = page.get("LastEvaluatedKey")
            if not start:
                return removed
