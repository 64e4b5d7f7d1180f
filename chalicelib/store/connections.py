"""WebSocket connections and session-room membership in the DynamoDB connections table.

Items: `conn#<id>/meta` (who is connected), `room#<session>/conn#<id>` (a member of a room) and
its mirror `conn#<id>/room#<session>` (so a disconnect finds the rooms to leave).
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib.config import settings
from chalicelib.store.aws import client, translated_errors
from chalicelib.store.kv import is_expired

# API Gateway closes connections after 2 hours; records outlive that a little, then count as gone.
CONNECTION_TTL_S = 2 * 3600 + 300


def _table() -> str:
    return settings().connections_table


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _key(pk: str, sk: str) -> dict[str, dict[str, str]]:
    return {"pk": _s(pk), "sk": _s(sk)}


def save_connection(connection_id: str, account_id: str, role: str, user_id: str | None,
                    api_key_id: str | None, name: str) -> None:
    now = int(time.time())
    item = {
        "pk": _s(f"conn#{connection_id}"),
        "sk": _s("meta"),
        "accountId": _s(account_id),
        "role": _s(role),
        "name": _s(name),
        "connectedAt": {"N": str(now)},
        "expiresAt": {"N": str(now + CONNECTION_TTL_S)},
    }
    if user_id:
        item["userId"] = _s(user_id)
    if api_key_id:
        item["apiKeyId"] = _s(api_key_id)
    with translated_errors("dynamodb"):
        client("dynamodb").put_item(TableName=_table(), Item=item)


def get_connection(connection_id: str) -> dict[str, Any] | None:
    with translated_errors("dynamodb"):
        item = client("dynamodb").get_item(
            TableName=_table(), Key={"pk": _s(f"conn#{connection_id}"), "sk": _s("meta")}, ConsistentRead=True
        ).get("Item")
    if not item or is_expired(item):
        return None
    return {
        "connectionId": connection_id,
        "accountId": item["accountId"]["S"],
        "role": item["role"]["S"],
        "name": item["name"]["S"],
        "userId": item.get("userId", {}).get("S"),
        "apiKeyId": item.get("apiKeyId", {}).get("S"),
    }


def join_room(session_id: str, connection: dict[str, Any]) -> None:
    now = int(time.time())
    member = {
        "accountId": _s(connection["accountId"]),
        "name": _s(connection["name"]),
        "role": _s(connection["role"]),
        "joinedAt": {"N": str(now)},
        "expiresAt": {"N": str(now + CONNECTION_TTL_S)},
    }
    if connection.get("userId"):
        member["userId"] = _s(connection["userId"])
    cid = connection["connectionId"]
    with translated_errors("dynamodb"):
        room_item = {"pk": _s(f"room#{session_id}"), "sk": _s(f"conn#{cid}"), **member}
        mirror_item = {"pk": _s(f"conn#{cid}"), "sk": _s(f"room#{session_id}"), "expiresAt": member["expiresAt"]}
        client("dynamodb").transact_write_items(
            TransactItems=[
                {"Put": {"TableName": _table(), "Item": room_item}},
                {"Put": {"TableName": _table(), "Item": mirror_item}},
            ]
        )


def leave_room(session_id: str, connection_id: str) -> None:
    with translated_errors("dynamodb"):
        client("dynamodb").transact_write_items(
            TransactItems=[
                {"Delete": {"TableName": _table(), "Key": _key(f"room#{session_id}", f"conn#{connection_id}")}},
                {"Delete": {"TableName": _table(), "Key": _key(f"conn#{connection_id}", f"room#{session_id}")}},
            ]
        )


def rooms_of(connection_id: str) -> list[str]:
    items = _query(f"conn#{connection_id}", "room#")
    return [item["sk"]["S"].removeprefix("room#") for item in items]


def members(session_id: str) -> list[dict[str, Any]]:
    """The room's live members (expired records are treated as gone)."""
    return [
        {
            "connectionId": item["sk"]["S"].removeprefix("conn#"),
            "userId": item.get("userId", {}).get("S"),
            "name": item["name"]["S"],
            "role": item["role"]["S"],
            "joinedAt": int(item["joinedAt"]["N"]),
        }
        for item in _query(f"room#{session_id}", "conn#")
    ]


def forget_connection(connection_id: str) -> list[str]:
    """Remove a connection and its room memberships; returns the rooms it was in."""
    rooms = rooms_of(connection_id)
    for session_id in rooms:
        leave_room(session_id, connection_id)
    with translated_errors("dynamodb"):
        client("dynamodb").delete_item(TableName=_table(), Key={"pk": _s(f"conn#{connection_id}"), "sk": _s("meta")})
    return rooms


def room_seq(session_id: str) -> int:
    with translated_errors("dynamodb"):
        item = client("dynamodb").get_item(
            TableName=_table(), Key={"pk": _s(f"room#{session_id}"), "sk": _s("seq")}, ConsistentRead=True
        ).get("Item")
    return int(item["seq"]["N"]) if item else 0


def _query(pk: str, sk_prefix: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": _table(),
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {":pk": _s(pk), ":prefix": _s(sk_prefix)},
        "ConsistentRead": True,
    }
    with translated_errors("dynamodb"):
        while True:
            answer = client("dynamodb").query(**kwargs)
            items.extend(i for i in answer.get("Items", []) if not is_expired(i))
            if "LastEvaluatedKey" not in answer:
                return items
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


def next_seq(session_id: str) -> int:
    """The room's next message number: an atomic counter, so concurrent writers never share one."""
    with translated_errors("dynamodb"):
        answer = client("dynamodb").update_item(
            TableName=_table(),
            Key=_key(f"room#{session_id}", "seq"),
            UpdateExpression="ADD seq :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
    return int(answer["Attributes"]["seq"]["N"])
