"""Where the app is wired: the consumers of domain events register as sinks (called from app.py).

Each factory imports its package only when a write opens it, so wiring costs nothing at cold start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

    from chalicelib.domain.sinks import SinkTransaction


def _rooms(conn: psycopg.Connection[dict[str, Any]]) -> SinkTransaction:
    from chalicelib.realtime.sink import RoomSink

    return RoomSink(conn)


def _webhooks(conn: psycopg.Connection[dict[str, Any]]) -> SinkTransaction:
    from chalicelib.webhooks.outbox import WebhookSink

    return WebhookSink(conn)


def _access(conn: psycopg.Connection[dict[str, Any]]) -> SinkTransaction:
    from chalicelib.realtime.access import AccessSink

    return AccessSink(conn)


def install() -> None:
    """Register the sinks (idempotent): access, rooms, webhooks. Their after-commit parts run at once:
    a push never reaches a socket that lost access anyway, because the publisher re-checks access
    before each page it sends."""
    from chalicelib.domain import sinks

    sinks.register("access", _access)
    sinks.register("rooms", _rooms)
    sinks.register("webhooks", _webhooks)
