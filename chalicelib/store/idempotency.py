"""Idempotency records in the DynamoDB KV table, kept by Powertools' idempotency utility.

One item per (account, route, key): `pk = idempotency#<account id>`, `sk = <route>#<md5 of the
key>`, with Powertools' status (INPROGRESS / COMPLETED), the hash of the request it was made for
(the caller's fingerprint: it covers who sent it), the answer once there is one with the role it
was given under, and `expiresAt` (the table's TTL attribute). Powertools does the
conditional writes: the first request takes the key, a concurrent one finds it in progress, a
retry finds the stored answer, and a failed run deletes the record so a retry runs again.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.config import settings
from chalicelib.errors import DependencyDown
from chalicelib.store.aws import client

# A DynamoDB item is at most 400 KB: bigger answers are kept compressed, and one still too big is
# kept as "applied, answer not kept" (see `Stored.too_large`).
COMPRESS_FROM_BYTES = 4 * 1024
MAX_KEPT_BYTES = 300 * 1024


class KeyInProgress(Exception):
    """Another request with the same key has not finished."""


class KeyReused(Exception):
    """The key was first used for a different request."""


class KeyNotTaken(DependencyDown):
    """DynamoDB failed before the key was taken: nothing ran."""


@dataclass(frozen=True)
class Stored:
    """An answer as kept with its key."""

    status: int
    body: str
    content_type: str
    replayed: bool = False
    too_large: bool = False
    role: str | None = None  # the caller's role when it was first answered
    kept_body: str | None = None  # what is kept for a replay, when not `body` (one-time secrets withheld)


def _pack(answer: Stored) -> dict[str, Any]:
    packed: dict[str, Any] = {"status": answer.status, "contentType": answer.content_type}
    if answer.role is not None:
        packed["role"] = answer.role
    kept = answer.body if answer.kept_body is None else answer.kept_body
    raw = kept.encode()
    if len(raw) < COMPRESS_FROM_BYTES:
        packed["body"] = kept
        return packed
    squeezed = base64.b64encode(gzip.compress(raw, compresslevel=5)).decode()
    if len(squeezed) > MAX_KEPT_BYTES:
        packed["tooLarge"] = True
    else:
        packed["bodyGz"] = squeezed
    return packed


def _unpack(packed: dict[str, Any]) -> Stored:
    if "bodyGz" in packed:
        body = gzip.decompress(base64.b64decode(packed["bodyGz"])).decode()
    else:
        body = packed.get("body", "")
    return Stored(
        int(packed["status"]),
        body,
        str(packed.get("contentType", "application/json")),
        replayed=True,
        too_large=bool(packed.get("tooLarge")),
        role=str(packed["role"]) if "role" in packed else None,
    )


class _Deadline:
    """What Powertools reads from a Lambda context: how long this invocation may still run, which
    bounds how long an INPROGRESS record blocks the key if the function dies mid-request."""

    def __init__(self, remaining_ms: Callable[[], int]) -> None:
        self.get_remaining_time_in_millis = remaining_ms


def once(
    account_id: str,
    route: str,
    key: str,
    fingerprint: str,
    run: Callable[[], Stored],
    *,
    expires_after_s: int,
    remaining_ms: Callable[[], int],
) -> Stored:
    """Run `run` once per (account, route, key); later calls get its stored answer (replayed=True).

    Raises KeyInProgress, KeyReused, KeyNotTaken (DynamoDB failed before `run`), DependencyDown
    (DynamoDB failed after a `run` that raised), or whatever `run` raised (its record is then
    deleted: only answers are kept, so a retry after an error runs again).
    """
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyInconsistentStateError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )

    # A persistence layer per call: Powertools configures it per decorated function, and the
    # account is its partition key (one partition per team, not one for the whole platform).
    persistence = DynamoDBPersistenceLayer(
        table_name=settings().kv_table,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value=f"idempotency#{account_id}",
        expiry_attr="expiresAt",
        boto3_client=client("dynamodb"),
    )
    config = IdempotencyConfig(
        event_key_jmespath="key",
        payload_validation_jmespath="fingerprint",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=expires_after_s,
        lambda_context=_Deadline(remaining_ms),  # type: ignore[arg-type]
    )
    fresh: list[Stored] = []  # set when this call ran `run` (rather than finding a stored answer)
    started: list[bool] = []  # set when `run` began (the key was taken)

    @idempotent_function(
        data_keyword_argument="request", persistence_store=persistence, config=config, key_prefix=route
    )
    def answer(request: dict[str, str]) -> dict[str, Any]:
        started.append(True)
        fresh.append(run())
        return _pack(fresh[0])

    try:
        packed = answer(request={"key": key, "fingerprint": fingerprint})
    except IdempotencyAlreadyInProgressError as exc:
        raise KeyInProgress() from exc
    except IdempotencyInconsistentStateError as exc:  # the record changed under us several times: still busy
        raise KeyInProgress() from exc
    except IdempotencyValidationError as exc:
        raise KeyReused() from exc
    except IdempotencyPersistenceLayerError as exc:
        if fresh:  # it ran (and committed) but its answer could not be kept: answer it, never a 503 to retry
            from chalicelib.observability import logger

            logger().warning(
                "idempotency answer not kept (DynamoDB); the key stays in progress until it expires",
                extra={"route": route},
            )
            return fresh[0]
        if not started:
            raise KeyNotTaken(
                "DynamoDB",
                "the idempotency store (DynamoDB) is unavailable; retry shortly, "
                "or send the request without Idempotency-Key",
            ) from exc
        raise DependencyDown(
            "DynamoDB",
            "the idempotency store (DynamoDB) is unavailable; retry shortly, "
            "or send the request without Idempotency-Key",
        ) from exc
    return fresh[0] if fresh else _unpack(packed)
