"""Idempotency-Key on POST: a retried request gets the first answer and never applies twice.

The rules (the store keeps the records, store/idempotency.py):
- a key is 1 to 255 printable ASCII characters, scoped to the caller's account and the route
  (the same key on another route, or in another account, is another key);
- the first request with a key runs; its answer (status and body) is kept for 24 hours and a
  retry with the same key and the same request (path, query and body) gets that answer again,
  marked `Idempotent-Replayed: true`, without running;
- a stored answer is its caller's own: only the same principal (that user, or that API key) gets
  it, and only while its role now is at least the role it was answered under; anyone else, or
  the same caller demoted since, gets 409 `idempotency_key_reused` and nothing of the answer;
- one-time secrets (`race_` keys, `whsec_` secrets, invite tokens) are never kept: a replay
  answers the row with them null and `secretShownOnce` naming them (docs/decisions.md);
- the same key with a different request is a 409 `idempotency_key_reused`; the same key while
  the first request still runs is a 409 `idempotency_in_progress` (retry after it finishes);
- only answers are kept: a request that failed (4xx or 5xx) leaves the key free, so its retry
  runs again (and gets the same 4xx if the input was bad);
- the write's transaction also records the key as applied (PostgreSQL, `claim_in`): if the
  process dies after the commit but before the answer is kept, a retry is not applied a second
  time; it gets 409 `idempotency_key_applied` (read the result with GET);
- if the idempotency store (DynamoDB) is down, a route whose write records its key that way
  (`applied_once`: race data, laps, attachments, API keys, webhooks, invites) runs anyway: it still never
  applies twice, only its answer is not kept (a retry gets 409 `idempotency_key_applied`). Any
  other route is refused with 503 rather than run without the guarantee the client asked for.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from chalicelib.domain.caller import Caller
from chalicelib.domain.roles import at_least
from chalicelib.errors import Conflict, Invalid
from chalicelib.store import idempotency as store
from chalicelib.store.idempotency import Stored

if TYPE_CHECKING:
    import psycopg

HEADER = "Idempotency-Key"
EXPIRES_AFTER_S = 24 * 3600
MAX_KEY_CHARS = 255
_KEY = re.compile(r"^[\x20-\x7e]+$")
# Top-level answer fields that carry a secret shown once (API keys, webhook secrets, invite links):
# never kept with an idempotency record, on any route.
ONE_TIME_SECRETS = ("key", "secret", "inviteToken", "inviteUrl", "token")

__all__ = [
    "EXPIRES_AFTER_S",
    "HEADER",
    "AlreadyApplied",
    "InProgress",
    "KeyReused",
    "Stored",
    "claim_in",
    "fingerprint",
    "forget_expired",
    "once",
    "withhold_secrets",
]


class KeyReused(Conflict):
    code = "idempotency_key_reused"


class InProgress(Conflict):
    code = "idempotency_in_progress"


class AlreadyApplied(Conflict):
    code = "idempotency_key_applied"


@dataclass
class _Pending:
    """The key of the request being run, until its write transaction records it."""

    account_id: str
    route: str
    key_sha256: str
    claimed: bool = False


_pending: ContextVar[_Pending | None] = ContextVar("idempotency_pending", default=None)


@contextmanager
def _running(account_id: str, route: str, key: str) -> Iterator[_Pending]:
    pending = _Pending(account_id, route, hashlib.sha256(key.encode()).hexdigest())
    token = _pending.set(pending)
    try:
        yield pending
    finally:
        _pending.reset(token)


def claim_in(conn: psycopg.Connection[dict[str, Any]]) -> None:
    """In a write's transaction: record the running request's key as applied (once per request).

    Raises AlreadyApplied when an earlier run of the same key committed (its answer was lost):
    the transaction rolls back and nothing is applied twice. Outside a keyed request: nothing.
    """
    pending = _pending.get()
    if pending is None or pending.claimed:
        return
    from chalicelib.store.postgres import fetch_one

    row = fetch_one(
        conn,
        "claim_applied_request",
        {"account_id": pending.account_id, "route": pending.route, "key_sha256": pending.key_sha256},
    )
    if row is None:
        raise AlreadyApplied(
            f"this request was already applied, but its answer was lost in a failure; read the "
            f"result with GET (a new {HEADER} applies it again)"
        )
    pending.claimed = True


def forget_expired(limit: int = 10_000) -> int:
    """Drop applied keys older than their answers (EXPIRES_AFTER_S); returns how many went."""
    from chalicelib.store.postgres import execute, transaction

    with transaction() as conn:
        return execute(conn, "forget_applied_requests", {"age_s": EXPIRES_AFTER_S, "limit": limit})


def check_key(key: str) -> str:
    key = key.strip()
    if not 1 <= len(key) <= MAX_KEY_CHARS or not _KEY.match(key):
        raise Invalid(
            f"{HEADER} must be 1 to {MAX_KEY_CHARS} printable ASCII characters (a UUID is a good key)", field=HEADER
        )
    return key


def fingerprint(method: str, path: str, path_params: Mapping[str, str], query: Mapping[str, str], body: bytes) -> str:
    """What makes two requests "the same request": route, path parameters, query and body bytes."""
    head = json.dumps([method, path, sorted(path_params.items()), sorted(query.items())], separators=(",", ":"))
    digest = hashlib.sha256(head.encode())
    digest.update(b"\n")
    digest.update(body)
    return digest.hexdigest()


def withhold_secrets(answer: Stored) -> str | None:
    """The body a replay gets when `answer` carries one-time secrets (them null, `secretShownOnce`
    naming them); None when there is nothing to withhold."""
    if not answer.content_type.startswith("application/json") or not answer.body.startswith("{"):
        return None
    try:
        body = json.loads(answer.body)
    except ValueError:
        return None
    withheld = [name for name in ONE_TIME_SECRETS if isinstance(body.get(name), str)]
    if not withheld:
        return None
    kept = {name: (None if name in withheld else value) for name, value in body.items()}
    kept["secretShownOnce"] = withheld
    return json.dumps(kept, separators=(",", ":"))


def _for_the_caller(caller: Caller, request_fingerprint: str) -> str:
    """The request's fingerprint bound to its principal: a stored answer validates only for them."""
    return hashlib.sha256(f"{caller.principal}\n{request_fingerprint}".encode()).hexdigest()


def once(
    caller: Caller,
    route: str,
    key: str,
    request_fingerprint: str,
    run: Callable[[], Stored],
    *,
    remaining_ms: Callable[[], int],
    applied_once: bool = False,
) -> Stored:
    """`run` once for (account, route, key); a retry gets the stored answer (`replayed`).

    applied_once: `run`'s write records the key in its own transaction (`claim_in`), so it may run
    while the idempotency store is down.
    """
    key = check_key(key)

    def run_recording_the_key() -> Stored:
        with _running(caller.account_id, route, key):
            answer = run()
        return replace(answer, role=caller.role, kept_body=withhold_secrets(answer))

    try:
        answer = store.once(
            caller.account_id,
            route,
            key,
            _for_the_caller(caller, request_fingerprint),
            run_recording_the_key,
            expires_after_s=EXPIRES_AFTER_S,
            remaining_ms=remaining_ms,
        )
    except store.KeyNotTaken:
        if not applied_once:
            raise
        return _run_without_the_store(caller.account_id, route, key, run)
    except store.KeyInProgress as exc:
        raise InProgress(f"a request with this {HEADER} is still in progress; retry once it has finished") from exc
    except store.KeyReused as exc:
        raise KeyReused(
            f"this {HEADER} was already used for a different request (path, query, body or caller); "
            "use a new key for a new request"
        ) from exc
    if answer.replayed and (answer.role is None or not at_least(caller.role, answer.role)):
        raise KeyReused(f"this {HEADER} was answered under a role you no longer hold; use a new key for a new request")
    if answer.too_large:
        body = json.dumps(
            {
                "message": "this request was already applied; its answer was too large to keep, "
                "read the result with GET",
                HEADER.lower(): key,
            }
        )
        return Stored(answer.status, body, "application/json", replayed=True)
    return answer


def _run_without_the_store(account_id: str, route: str, key: str, run: Callable[[], Stored]) -> Stored:
    """DynamoDB is down: run anyway, guarded by the key's claim in PostgreSQL alone (a second run with
    this key is AlreadyApplied; concurrent ones wait on the claim's row). Only the answer is not kept."""
    from chalicelib.observability import logger

    with _running(account_id, route, key) as pending:
        answer = run()
    log = logger()
    if pending.claimed:
        log.warning(
            "idempotency store down: request run on its PostgreSQL claim alone; its answer is not kept",
            extra={"route": route},
        )
    elif answer.status < 300:  # a route marked applied_once whose write did not claim: a bug to fix
        log.error("applied_once route ran without claiming its Idempotency-Key", extra={"route": route})
    return answer
