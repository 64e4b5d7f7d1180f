"""Ending live access: the sockets of principals that lost it are closed, and no push reaches them.

- `AccessSink` (wired in chalicelib/wiring.py) hears, inside a write's transaction, who loses access
  (a removed member and their keys, a revoked key) and, once it has committed, closes their
  connections through the management API (`DELETE @connections/{id}`).
- `close_stale_secret` closes the JWT connections whose token a rotated secret signed: the rotation
  trigger (the `close_stale_connections` function, docs/runbook.md) and the minute sweep call it.
- `reachable` is the fan-out's filter: of a room's members, those whose principal holds access now
  (re-read from PostgreSQL before each page is sent); the others are closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chalicelib.domain import access
from chalicelib.observability import logger
from chalicelib.realtime import push
from chalicelib.store import connections

if TYPE_CHECKING:
    import psycopg

    from chalicelib.domain.changes import DomainEvent


class AccessSink:
    """One write transaction's part: collects the access it ends, closes the sockets after commit."""

    def __init__(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        self.losses: list[access.AccessLoss] = []

    def recorded(self, events: Sequence[DomainEvent], *, live: bool) -> None:
        """Events change no one's access (losses come through `lost`)."""

    def lost(self, loss: access.AccessLoss) -> None:
        self.losses.append(loss)

    def pending(self) -> bool:
        return bool(self.losses)

    def committed(self) -> None:
        if not self.losses:
            return
        try:
            close_lost(self.losses)
        except Exception:
            # The fan-out filter and the re-check of every room action still refuse these sockets.
            logger().exception("closing the connections of a lost access failed")


def connections_of(loss: access.AccessLoss) -> list[str]:
    found = [c for user_id in loss.user_ids for c in connections.member_connections(loss.account_id, user_id)]
    found += [c for key_id in loss.api_key_ids for c in connections.key_connections(key_id)]
    return list(dict.fromkeys(found))


def close_lost(losses: Sequence[access.AccessLoss], endpoint_url: str | None = None) -> int:
    """Close every connection of the principals in `losses`; returns how many were found."""
    found = [c for loss in losses for c in connections_of(loss)]
    close(found, endpoint_url)
    return len(found)


def close(connection_ids: Sequence[str], endpoint_url: str | None = None) -> None:
    """Take each connection out of its rooms at once (its room hears it leave), then have the
    gateway close the socket (its $disconnect then finds nothing left to do)."""
    from chalicelib.realtime.rooms import disconnect

    url = endpoint_url or push.management_url()
    for connection_id in connection_ids:
        disconnect(connection_id, url)
        push.close(connection_id, url)


def close_stale_secret(endpoint_url: str | None = None) -> int:
    """Close the JWT connections whose token was signed by a secret other than the current one
    (after a rotation); returns how many were closed."""
    closed = 0
    for secret_fp, ids in connections.stale_fingerprint_connections(access.current_fingerprint()).items():
        close(ids, endpoint_url)
        connections.forget_fingerprint(secret_fp)
        closed += len(ids)
    if closed:
        logger().warning("closed connections opened with a rotated JWT secret", extra={"closed": closed})
    return closed


def reachable(
    members: Sequence[dict[str, Any]], endpoint_url: str | None = None, *, close_others: bool = True
) -> list[str]:
    """The connection ids of `members` (connections.member_principals) whose principal holds room
    access now; the others are closed unless `close_others` is False. The fan-out calls this right
    before each page it sends, so no message of a write committed after a revocation reaches the
    revoked connection."""
    if not members:
        return []
    principals = {m["connectionId"]: access.Principal.of(m) for m in members}
    held = access.holding(principals.values())
    allowed = [cid for cid, p in principals.items() if p in held]
    refused = [cid for cid, p in principals.items() if p not in held]
    if refused:
        logger().warning("fan-out skipped connections that lost access", extra={"connections": len(refused)})
        if close_others:
            close(refused, endpoint_url)
    return allowed
