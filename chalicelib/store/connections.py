"""WebSocket connections, session-room membership and each room's message log in the DynamoDB connections table.

Items (pk / sk):
- `conn#<id>` / `meta`: who is connected; `conn#<id>` / `room#<session>`: the rooms it is in.
- `room#<session>` / `conn#<id>`: a member of the room (with its principal, for the fan-out's re-check).
- The connections of a principal, to close them when it loses access: `member#<account>#<user>` /
  `conn#<id>`, `apikey#<key>` / `conn#<id>`, and, for JWT connections, `jwtfp#<fingerprint of the
  signing secret>` / `conn#<id>`; `jwtfps` / `fp#<fingerprint>` lists the fingerprints in use (so a
  rotation finds the stale ones without a scan).
- `room#<session>` / `turn`: the room's state in one item: `seq`, the head (the last message number
  logged; no TTL), `sentSeq` (every message up to it has been fanned out), the lease of the one sender
  allowed to fan out now (`holder`, `leaseUntilMs`), so pushes go out in seq order, and `epoch`: the
  numbering's id, set once (`if_not_exists`, the first writer wins) by whichever update creates the
  item. Numbers restart only if this item is lost (a recreated table, an emulator restarted empty),
  and then the epoch is a new one, so a client's seq from before is never taken for one of now.
  One item, so taking or giving up the turn also tells the sender how far the log goes.
- `log#<session>` / `msg#<seq, 12 digits>`: a message as sent, kept `MESSAGE_TTL_S` for resume; writing
  it (conditionally) is what gives the number out.
- `log#<session>` / `evt#<domain event id>`: the event's claim, so it is logged once however often
  it is published. (The log has a partition of its own so that reading a room's members never
  wades through its messages.)
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
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


def _log(session_id: str) -> str:
    """The partition of a room's message log and event claims."""
    return f"log#{session_id}"


def save_connection(
    connection_id: str,
    account_id: str,
    role: str,
    user_id: str | None,
    api_key_id: str | None,
    name: str,
    secret_fp: str | None = None,
) -> None:
    """Record a new connection and index it by its principal (and, for a JWT, its secret's fingerprint)."""
    now = int(time.time())
    expires = {"N": str(now + CONNECTION_TTL_S)}
    item = {
        "pk": _s(f"conn#{connection_id}"),
        "sk": _s("meta"),
        "accountId": _s(account_id),
        "role": _s(role),
        "name": _s(name),
        "connectedAt": {"N": str(now)},
        "expiresAt": expires,
    }
    if user_id:
        item["userId"] = _s(user_id)
    if api_key_id:
        item["apiKeyId"] = _s(api_key_id)
    if secret_fp:
        item["secretFp"] = _s(secret_fp)
        _register_fingerprint(secret_fp)
    record = {"accountId": account_id, "userId": user_id, "apiKeyId": api_key_id, "secretFp": secret_fp}
    # The index items first: a connection is never recorded without the way to find and close it.
    _write([{"pk": _s(pk), "sk": _s(f"conn#{connection_id}"), "expiresAt": expires} for pk in _index_keys(record)])
    with translated_errors("dynamodb"):
        client("dynamodb").put_item(TableName=_table(), Item=item)


def _index_keys(record: dict[str, Any]) -> list[str]:
    """The partitions that list this connection under its principal."""
    keys = []
    if record.get("apiKeyId"):
        keys.append(f"apikey#{record['apiKeyId']}")
    elif record.get("userId"):
        keys.append(f"member#{record['accountId']}#{record['userId']}")
    if record.get("secretFp") and not record.get("apiKeyId"):
        keys.append(f"jwtfp#{record['secretFp']}")
    return keys


@functools.cache
def _register_fingerprint(secret_fp: str) -> None:
    """List the fingerprint in `jwtfps` (once per container: every connection would write the same item)."""
    with translated_errors("dynamodb"):
        client("dynamodb").put_item(TableName=_table(), Item={"pk": _s("jwtfps"), "sk": _s(f"fp#{secret_fp}")})


def _write(items: list[dict[str, Any]]) -> None:
    """Put items in one BatchWriteItem, retrying what DynamoDB leaves unprocessed."""
    requests = [{"PutRequest": {"Item": item}} for item in items]
    for _ in range(5):
        if not requests:
            return
        with translated_errors("dynamodb"):
            answer = client("dynamodb").batch_write_item(RequestItems={_table(): requests})
        requests = answer.get("UnprocessedItems", {}).get(_table(), [])
        if requests:
            time.sleep(0.05)
    if requests:
        raise RuntimeError("DynamoDB left connection index items unprocessed")


def member_connections(account_id: str, user_id: str) -> list[str]:
    """The live connections of one member of one account (signed in with a JWT)."""
    return [i["sk"]["S"].removeprefix("conn#") for i in _query(f"member#{account_id}#{user_id}", "conn#")]


def key_connections(api_key_id: str) -> list[str]:
    return [i["sk"]["S"].removeprefix("conn#") for i in _query(f"apikey#{api_key_id}", "conn#")]


def stale_fingerprint_connections(current_fp: str) -> dict[str, list[str]]:
    """JWT connections whose token was signed by a secret other than the current one, by fingerprint."""
    stale = [i["sk"]["S"].removeprefix("fp#") for i in _query("jwtfps", "fp#") if i["sk"]["S"] != f"fp#{current_fp}"]
    return {fp: [i["sk"]["S"].removeprefix("conn#") for i in _query(f"jwtfp#{fp}", "conn#")] for fp in stale}


def forget_fingerprint(secret_fp: str) -> None:
    """Drop a stale fingerprint from `jwtfps` once none of its connections is left."""
    if _query(f"jwtfp#{secret_fp}", "conn#"):
        return
    with translated_errors("dynamodb"):
        client("dynamodb").delete_item(TableName=_table(), Key=_key("jwtfps", f"fp#{secret_fp}"))


def get_connection(connection_id: str) -> dict[str, Any] | None:
    with translated_errors("dynamodb"):
        item = (
            client("dynamodb")
            .get_item(
                TableName=_table(), Key={"pk": _s(f"conn#{connection_id}"), "sk": _s("meta")}, ConsistentRead=True
            )
            .get("Item")
        )
    if not item or is_expired(item):
        return None
    return {
        "connectionId": connection_id,
        "accountId": item["accountId"]["S"],
        "role": item["role"]["S"],
        "name": item["name"]["S"],
        "userId": item.get("userId", {}).get("S"),
        "apiKeyId": item.get("apiKeyId", {}).get("S"),
        "secretFp": item.get("secretFp", {}).get("S"),
    }


def join_room(session_id: str, connection: dict[str, Any]) -> dict[str, Any]:
    """Add the connection to the room; returns it as a member (like `members()` lists it)."""
    now = int(time.time())
    member = {
        "accountId": _s(connection["accountId"]),
        "name": _s(connection["name"]),
        "role": _s(connection["role"]),
        "joinedAt": {"N": str(now)},
        "expiresAt": {"N": str(now + CONNECTION_TTL_S)},
    }
    for name in ("userId", "apiKeyId", "secretFp"):
        if connection.get(name):
            member[name] = _s(connection[name])
    cid = connection["connectionId"]
    room_item = {"pk": _s(f"room#{session_id}"), "sk": _s(f"conn#{cid}"), **member}
    mirror_item = {"pk": _s(f"conn#{cid}"), "sk": _s(f"room#{session_id}"), "expiresAt": member["expiresAt"]}
    # Mirror first, then membership (and the reverse on leave): a crash in between leaves at most
    # a mirror, which the disconnect cleans up. The membership and its roster count in one
    # transaction: a publisher never keeps a member list that misses a change nobody counted.
    with translated_errors("dynamodb"):
        client("dynamodb").put_item(TableName=_table(), Item=mirror_item)
    _change_membership(session_id, {"Put": {"TableName": _table(), "Item": room_item}})
    return {
        "connectionId": cid,
        "userId": connection.get("userId"),
        "name": connection["name"],
        "role": connection["role"],
        "joinedAt": now,
    }


def leave_room(session_id: str, connection_id: str) -> None:
    key = _key(f"room#{session_id}", f"conn#{connection_id}")
    _change_membership(session_id, {"Delete": {"TableName": _table(), "Key": key}})
    with translated_errors("dynamodb"):
        client("dynamodb").delete_item(TableName=_table(), Key=_key(f"conn#{connection_id}", f"room#{session_id}"))


def _change_membership(session_id: str, change: dict[str, Any]) -> None:
    """Write a membership change and number it on the room's state item (`roster`) at once, all or
    nothing: a publisher that finds the number it last read the members under reuses that list
    (realtime/roster.py); one that finds another number reads them again. Counted apart, a leave
    whose count failed after its delete left a publisher sending to the gone member."""
    count = {
        "Update": {
            "TableName": _table(),
            "Key": _key(f"room#{session_id}", "turn"),
            "UpdateExpression": "ADD roster :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }
    with translated_errors("dynamodb"):
        client("dynamodb").transact_write_items(TransactItems=[change, count])


def is_member(session_id: str, connection_id: str) -> bool:
    with translated_errors("dynamodb"):
        item = (
            client("dynamodb")
            .get_item(TableName=_table(), Key=_key(f"room#{session_id}", f"conn#{connection_id}"), ConsistentRead=True)
            .get("Item")
        )
    return bool(item) and not is_expired(item)


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
        for item in _query(
            f"room#{session_id}",
            "conn#",
            projection="sk, userId, #name, #role, joinedAt, expiresAt",
            names={"#name": "name", "#role": "role"},
        )
    ]


def member_ids(session_id: str) -> list[str]:
    """The connection ids of the room's live members (only the keys are read)."""
    items = _query(f"room#{session_id}", "conn#", projection="sk, expiresAt")
    return [item["sk"]["S"].removeprefix("conn#") for item in items]


def member_principals(session_id: str) -> list[dict[str, Any]]:
    """The room's live members with who each acts for (what the fan-out re-checks before sending),
    and when each membership expires (`expiresAt`, epoch seconds; absent: never)."""
    items = _query(f"room#{session_id}", "conn#", projection="sk, accountId, userId, apiKeyId, secretFp, expiresAt")
    return [
        {
            "connectionId": item["sk"]["S"].removeprefix("conn#"),
            "accountId": item["accountId"]["S"],
            **{name: item[name]["S"] for name in ("userId", "apiKeyId", "secretFp") if name in item},
            **({"expiresAt": int(item["expiresAt"]["N"])} if "expiresAt" in item else {}),
        }
        for item in items
    ]


def forget_connection(connection_id: str, connection: dict[str, Any] | None = None) -> list[str]:
    """Remove a connection, its room memberships and its index items (`connection`: its record, if
    already read); returns the rooms it was in."""
    connection = connection or get_connection(connection_id)
    rooms = rooms_of(connection_id)
    for session_id in rooms:
        leave_room(session_id, connection_id)
    with translated_errors("dynamodb"):
        for pk in _index_keys(connection) if connection else []:
            client("dynamodb").delete_item(TableName=_table(), Key=_key(pk, f"conn#{connection_id}"))
        client("dynamodb").delete_item(TableName=_table(), Key={"pk": _s(f"conn#{connection_id}"), "sk": _s("meta")})
    return rooms


def _query(
    pk: str, sk_prefix: str, projection: str | None = None, names: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": _table(),
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {":pk": _s(pk), ":prefix": _s(sk_prefix)},
        "ConsistentRead": True,
    }
    if projection:
        kwargs["ProjectionExpression"] = projection
    if names:
        kwargs["ExpressionAttributeNames"] = names
    with translated_errors("dynamodb"):
        while True:
            answer = client("dynamodb").query(**kwargs)
            items.extend(i for i in answer.get("Items", []) if not is_expired(i))
            if "LastEvaluatedKey" not in answer:
                return items
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


# The room log: numbered messages and the fan-out turn


MESSAGE_TTL_S = 15 * 60
EVENT_CLAIM_TTL_S = 24 * 3600
# A claimed event not logged after this long was claimed by a publisher that died.
CLAIM_STALE_MS = 60_000
SEQ_DIGITS = 12
# Events logged per TransactWriteItems (two items each, plus the head; DynamoDB allows 100 per transaction).
TRANSACT_EVENTS = 49


class RoomBusy(RuntimeError):
    """Another publisher is logging the same event right now; it stays unpublished for the sweep."""


@dataclass(frozen=True)
class LoggedMessage:
    seq: int
    body: str  # the JSON frame exactly as members receive it


@dataclass(frozen=True)
class RoomState:
    seq: int  # the room's head: every number up to it is logged (the newest may be a little further)
    sent_seq: int  # every message up to this one has been fanned out
    holder: str | None  # who may fan out now
    lease_until_ms: int
    epoch: str | None = None  # the numbering's id (None only before the state item was first written)
    roster: int | None = None  # counts the room's joins and leaves (None: none since rosters exist)


# Sets the epoch only on the update that creates the state item (or the first since epochs exist).
_SET_EPOCH = "epoch = if_not_exists(epoch, :epoch)"


def new_epoch() -> str:
    """A fresh, opaque room epoch: the creation time in ms (hex, for people reading items) plus randomness."""
    return f"{int(time.time() * 1000):x}-{secrets.token_hex(6)}"


def _msg_sk(seq: int) -> str:
    return f"msg#{seq:0{SEQ_DIGITS}d}"


def _condition_failed(exc: Exception) -> bool:
    return getattr(exc, "response", {}).get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def append_messages(
    session_id: str, entries: list[tuple[int, Callable[[int], str]]], state: RoomState | None = None
) -> list[LoggedMessage]:
    """Number and log messages for the room: `entries` are (domain event id, render(seq) -> JSON frame);
    `state` is the room's state if the caller has just read it (else it is read here).

    A message takes the first free number after the room's head by a conditional put of its log
    entry: whoever writes `msg#n` owns n, so a number is never given twice, and since the search
    starts at the head (which only moves past numbers already written) none is skipped, however
    many processes append at once. Each domain event is claimed first (`evt#<id>`), so an event
    logged before (a retried publish, the sweep) is not logged again. Returns the messages logged,
    in seq order; the head is moved past them at the end.
    """
    from botocore.exceptions import ClientError

    state = state or room_state(session_id)
    next_seq = max(state.seq, state.sent_seq) + 1
    logged: list[LoggedMessage] = []
    head = 0
    pending = list(entries)
    while pending:
        chunk = pending[:TRANSACT_EVENTS]
        written = _append_at_once(session_id, chunk, next_seq)
        if written is None:  # a condition failed (a number taken, an event logged before): one by one
            break
        pending = pending[TRANSACT_EVENTS:]
        logged.extend(written)  # the transaction moved the head too
        next_seq += len(chunk)
    for event_id, render in pending:
        logged_before = _claim_event(session_id, event_id, next_seq - 1)
        if logged_before is not None:
            head = max(head, logged_before)
            continue
        while True:
            body = render(next_seq)
            try:
                with translated_errors("dynamodb"):
                    client("dynamodb").put_item(
                        TableName=_table(),
                        Item={
                            "pk": _s(_log(session_id)),
                            "sk": _s(_msg_sk(next_seq)),
                            "body": _s(body),
                            "eventId": {"N": str(event_id)},
                            "expiresAt": {"N": str(int(time.time()) + MESSAGE_TTL_S)},
                        },
                        ConditionExpression="attribute_not_exists(sk)",
                    )
            except ClientError as exc:
                if not _condition_failed(exc):
                    raise
                next_seq += 1  # another publisher took this number
                continue
            break
        logged.append(LoggedMessage(next_seq, body))
        head = max(head, next_seq)
        next_seq += 1
    if head:
        _raise_head(session_id, head)
    return logged


def append_in_turn(
    session_id: str,
    entries: list[tuple[int, Callable[[int], str]]],
    expected: RoomState,
    holder: str,
    lease_ms: int,
) -> list[LoggedMessage] | None:
    """Log the entries after `expected.seq` and take the turn in one transaction, provided the room
    is still exactly `expected` (head, sent, epoch, roster: e.g. as this publisher's last end_turn
    left it) and nobody's lease runs. The logged messages (the room's state is then `expected` with
    the new head and `holder`'s lease), or None: nothing was written (the caller takes the turn and
    appends as usual). A publisher whose room nobody else touched since its last round saves the
    turn's round trip."""
    if not entries or len(entries) > TRANSACT_EVENTS or expected.epoch is None or expected.seq < 1:
        return None
    now_ms = int(time.time() * 1000)
    conditions = [
        "(attribute_not_exists(holder) OR leaseUntilMs < :now)",
        "seq = :head",
        "epoch = :epoch",
        "sentSeq = :sent" if expected.sent_seq else "(attribute_not_exists(sentSeq) OR sentSeq = :sent)",
        "roster = :roster" if expected.roster is not None else "attribute_not_exists(roster)",
    ]
    values = {
        ":me": _s(holder),
        ":until": {"N": str(now_ms + lease_ms)},
        ":now": {"N": str(now_ms)},
        ":head": {"N": str(expected.seq)},
        ":epoch": _s(expected.epoch),
        ":sent": {"N": str(expected.sent_seq)},
    }
    if expected.roster is not None:
        values[":roster"] = {"N": str(expected.roster)}
    turn = {
        "UpdateExpression": "SET seq = :seq, holder = :me, leaseUntilMs = :until",
        "ConditionExpression": " AND ".join(conditions),
        "ExpressionAttributeValues": values,
    }
    return _append_at_once(session_id, entries, expected.seq + 1, turn)


def _append_at_once(
    session_id: str,
    chunk: list[tuple[int, Callable[[int], str]]],
    first_seq: int,
    turn: dict[str, Any] | None = None,
) -> list[LoggedMessage] | None:
    """The common case in one round trip: claim each event and write its message at the next numbers,
    all or nothing (TransactWriteItems). None when any condition failed: then nothing was written.
    `turn` replaces the head's update (expression, condition, values; `:seq` is the new head)."""
    from botocore.exceptions import ClientError

    now_s = int(time.time())
    table, pk = _table(), _s(_log(session_id))
    actions: list[dict[str, Any]] = []
    logged: list[LoggedMessage] = []
    for offset, (event_id, render) in enumerate(chunk):
        seq = first_seq + offset
        body = render(seq)
        logged.append(LoggedMessage(seq, body))
        actions.append(
            {
                "Put": {
                    "TableName": table,
                    "Item": {
                        "pk": pk,
                        "sk": _s(f"evt#{event_id}"),
                        "claimedAtMs": {"N": str(now_s * 1000)},
                        "fromSeq": {"N": str(first_seq - 1)},
                        "expiresAt": {"N": str(now_s + EVENT_CLAIM_TTL_S)},
                    },
                    "ConditionExpression": "attribute_not_exists(sk) OR expiresAt < :now",
                    "ExpressionAttributeValues": {":now": {"N": str(now_s)}},
                }
            }
        )
        actions.append(
            {
                "Put": {
                    "TableName": table,
                    "Item": {
                        "pk": pk,
                        "sk": _s(_msg_sk(seq)),
                        "body": _s(body),
                        "eventId": {"N": str(event_id)},
                        "expiresAt": {"N": str(now_s + MESSAGE_TTL_S)},
                    },
                    "ConditionExpression": "attribute_not_exists(sk)",
                }
            }
        )
    # The head moves past the new messages in the same transaction: if their puts succeed, no number
    # from first_seq on was written before, so the head was below them and this condition holds.
    last = first_seq + len(chunk) - 1
    head = turn or {
        "UpdateExpression": f"SET seq = :seq, {_SET_EPOCH}",
        "ConditionExpression": "attribute_not_exists(seq) OR seq < :seq",
        "ExpressionAttributeValues": {":epoch": _s(new_epoch())},
    }
    actions.append(
        {
            "Update": {
                "TableName": table,
                "Key": _key(f"room#{session_id}", "turn"),
                **head,
                "ExpressionAttributeValues": {**head["ExpressionAttributeValues"], ":seq": {"N": str(last)}},
            }
        }
    )
    try:
        with translated_errors("dynamodb"):
            client("dynamodb").transact_write_items(TransactItems=actions)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in (
            "TransactionCanceledException",
            "ConditionalCheckFailedException",
        ):
            return None
        raise
    return logged


def _claim_event(session_id: str, event_id: int, head: int) -> int | None:
    """Claim the event for logging (None), or the seq it was logged at before; RoomBusy while
    another live publisher holds it."""
    from botocore.exceptions import ClientError

    key = _key(_log(session_id), f"evt#{event_id}")
    now_ms = int(time.time() * 1000)
    claim = {
        **key,
        "claimedAtMs": {"N": str(now_ms)},
        "fromSeq": {"N": str(head)},
        "expiresAt": {"N": str(now_ms // 1000 + EVENT_CLAIM_TTL_S)},
    }
    try:
        with translated_errors("dynamodb"):
            client("dynamodb").put_item(
                TableName=_table(),
                Item=claim,
                ConditionExpression="attribute_not_exists(sk) OR expiresAt < :now",
                ExpressionAttributeValues={":now": {"N": str(now_ms // 1000)}},
            )
        return None
    except ClientError as exc:
        if not _condition_failed(exc):
            raise
    with translated_errors("dynamodb"):
        existing = client("dynamodb").get_item(TableName=_table(), Key=key, ConsistentRead=True).get("Item", {})
    found = _find_event(session_id, event_id, int(existing.get("fromSeq", {}).get("N", "0")) + 1)
    if found is not None:
        return found
    claimed_at_ms = existing.get("claimedAtMs", {}).get("N", "0")
    if int(claimed_at_ms) > now_ms - CLAIM_STALE_MS:
        raise RoomBusy(f"event {event_id} is being published by another process")
    try:  # its claimer died before logging it: take over (unless another sweeper just did)
        with translated_errors("dynamodb"):
            client("dynamodb").put_item(
                TableName=_table(),
                Item=claim,
                ConditionExpression="claimedAtMs = :then",
                ExpressionAttributeValues={":then": {"N": claimed_at_ms}},
            )
    except ClientError as exc:
        if _condition_failed(exc):
            raise RoomBusy(f"event {event_id} is being published by another process") from exc
        raise
    return None


def _find_event(session_id: str, event_id: int, first_seq: int) -> int | None:
    """The seq of the logged message of `event_id` at or after `first_seq`, if any."""
    kwargs: dict[str, Any] = {
        "TableName": _table(),
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
        "ExpressionAttributeValues": {
            ":pk": _s(_log(session_id)),
            ":first": _s(_msg_sk(max(first_seq, 0))),
            ":last": _s(_msg_sk(10**SEQ_DIGITS - 1)),
        },
        "ProjectionExpression": "sk, eventId",
        "ConsistentRead": True,
    }
    with translated_errors("dynamodb"):
        while True:
            answer = client("dynamodb").query(**kwargs)
            for item in answer.get("Items", []):
                if item.get("eventId", {}).get("N") == str(event_id):
                    return int(item["sk"]["S"].removeprefix("msg#"))
            if "LastEvaluatedKey" not in answer:
                return None
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


def _raise_head(session_id: str, seq: int) -> None:
    from botocore.exceptions import ClientError

    try:
        with translated_errors("dynamodb"):
            client("dynamodb").update_item(
                TableName=_table(),
                Key=_key(f"room#{session_id}", "turn"),
                UpdateExpression=f"SET seq = :seq, {_SET_EPOCH}",
                ConditionExpression="attribute_not_exists(seq) OR seq < :seq",
                ExpressionAttributeValues={":seq": {"N": str(seq)}, ":epoch": _s(new_epoch())},
            )
    except ClientError as exc:
        if not _condition_failed(exc):
            raise  # else: another publisher moved it further already


def last_seq(session_id: str) -> int:
    """The room's head: the last number logged (0 before its first message)."""
    return room_state(session_id).seq


def _state(item: dict[str, Any]) -> RoomState:
    return RoomState(
        seq=int(item.get("seq", {}).get("N", "0")),
        sent_seq=int(item.get("sentSeq", {}).get("N", "0")),
        holder=item.get("holder", {}).get("S"),
        lease_until_ms=int(item.get("leaseUntilMs", {}).get("N", "0")),
        epoch=item.get("epoch", {}).get("S"),
        roster=int(item["roster"]["N"]) if "roster" in item else None,
    )


def room_state(session_id: str) -> RoomState:
    """The room's head and fan-out turn, read consistently (one item, one round trip)."""
    with translated_errors("dynamodb"):
        item = (
            client("dynamodb")
            .get_item(TableName=_table(), Key=_key(f"room#{session_id}", "turn"), ConsistentRead=True)
            .get("Item", {})
        )
    return _state(item)


def room_epoch(session_id: str) -> str:
    """The room's epoch, given to it now if it has none yet (concurrent callers all get the first one)."""
    with translated_errors("dynamodb"):
        answer = client("dynamodb").update_item(
            TableName=_table(),
            Key=_key(f"room#{session_id}", "turn"),
            UpdateExpression=f"SET {_SET_EPOCH}",
            ExpressionAttributeValues={":epoch": _s(new_epoch())},
            ReturnValues="ALL_NEW",
        )
    return str(answer["Attributes"]["epoch"]["S"])


def take_turn(session_id: str, holder: str, lease_ms: int) -> RoomState | None:
    """Become the room's only sender until `lease_ms` from now (or `end_turn`); returns the room's
    state (how far it has been sent, how far it is logged), or None while another sender's lease runs."""
    taken, state = try_turn(session_id, holder, lease_ms)
    return state if taken else None


def try_turn(session_id: str, holder: str, lease_ms: int) -> tuple[bool, RoomState | None]:
    """`take_turn` that also says, when another sender's lease runs, the room's state as found
    (None if DynamoDB did not return it): (whether the turn is ours, the room's state)."""
    from botocore.exceptions import ClientError

    now_ms = int(time.time() * 1000)
    try:
        with translated_errors("dynamodb"):
            answer = client("dynamodb").update_item(
                TableName=_table(),
                Key=_key(f"room#{session_id}", "turn"),
                UpdateExpression=f"SET holder = :me, leaseUntilMs = :until, {_SET_EPOCH}",
                ConditionExpression="attribute_not_exists(holder) OR leaseUntilMs < :now",
                ExpressionAttributeValues={
                    ":me": _s(holder),
                    ":epoch": _s(new_epoch()),
                    ":until": {"N": str(now_ms + lease_ms)},
                    ":now": {"N": str(now_ms)},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
    except ClientError as exc:
        if _condition_failed(exc):
            found = exc.response.get("Item")
            return False, _state(found) if found else None
        raise
    return True, _state(answer["Attributes"])


def advance_turn(session_id: str, holder: str, sent_seq: int, lease_ms: int) -> bool:
    """Record that messages up to `sent_seq` went out and extend the lease; False if it was lost."""
    from botocore.exceptions import ClientError

    until_ms = int(time.time() * 1000) + lease_ms
    try:
        with translated_errors("dynamodb"):
            client("dynamodb").update_item(
                TableName=_table(),
                Key=_key(f"room#{session_id}", "turn"),
                UpdateExpression="SET sentSeq = :sent, leaseUntilMs = :until",
                ConditionExpression="holder = :me",
                ExpressionAttributeValues={
                    ":me": _s(holder),
                    ":sent": {"N": str(sent_seq)},
                    ":until": {"N": str(until_ms)},
                },
            )
    except ClientError as exc:
        if _condition_failed(exc):
            return False
        raise
    return True


def end_turn(session_id: str, holder: str, sent_seq: int | None = None) -> RoomState | None:
    """Give up the turn (if still ours), recording `sent_seq` when given; returns the room's state
    after (None if the turn was no longer ours): its head says whether more was logged meanwhile."""
    from botocore.exceptions import ClientError

    values: dict[str, Any] = {":me": _s(holder)}
    update = "REMOVE holder, leaseUntilMs"
    if sent_seq is not None:
        update = "SET sentSeq = :sent " + update
        values[":sent"] = {"N": str(sent_seq)}
    try:
        with translated_errors("dynamodb"):
            answer = client("dynamodb").update_item(
                TableName=_table(),
                Key=_key(f"room#{session_id}", "turn"),
                UpdateExpression=update,
                ConditionExpression="holder = :me",
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
    except ClientError as exc:
        if not _condition_failed(exc):
            raise
        return None
    return _state(answer["Attributes"])


def logged_messages(session_id: str, first_seq: int, last_seq: int, limit: int) -> list[LoggedMessage]:
    """Up to `limit` unexpired logged messages with first_seq <= seq <= last_seq, in seq order."""
    if first_seq > last_seq or limit <= 0:
        return []
    found: list[LoggedMessage] = []
    kwargs: dict[str, Any] = {
        "TableName": _table(),
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
        "ExpressionAttributeValues": {
            ":pk": _s(_log(session_id)),
            ":first": _s(_msg_sk(first_seq)),
            ":last": _s(_msg_sk(last_seq)),
        },
        "ConsistentRead": True,
        "Limit": limit,
    }
    now = time.time()
    with translated_errors("dynamodb"):
        while len(found) < limit:
            answer = client("dynamodb").query(**kwargs)
            found.extend(
                LoggedMessage(int(item["sk"]["S"].removeprefix("msg#")), item["body"]["S"])
                for item in answer.get("Items", [])
                if not is_expired(item, now)
            )
            if "LastEvaluatedKey" not in answer:
                break
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
    return found[:limit]
