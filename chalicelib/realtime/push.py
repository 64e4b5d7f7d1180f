"""Sending to WebSocket connections through the API Gateway @connections management API."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.config import settings
from chalicelib.observability import logger

# API Gateway splits WebSocket messages into 32 KB frames, and a room message over it is replaced
# by a pointer (broadcast.py) so clients never reassemble or choke on a huge push.
MAX_FRAME_BYTES = 32 * 1024
# Concurrent POSTs per fan-out (in AWS each waits on the network), over as many kept-alive
# connections of one event loop (fan_out_loop.py). A room up to this size is sent in one wave: a
# member beyond it waits for a free connection, and a push's lag is its last member's (48, under 50
# members, cost bench_load's push lag p50 ~40 ms).
FANOUT_WORKERS = 100

SENT, GONE, FAILED = "sent", "gone", "failed"


_creating = threading.Lock()


def _client(endpoint_url: str) -> Any:
    # Under a lock: closing many connections at once may ask from several threads, and concurrent
    # creations (each loads the service model) once cost a cold publisher 3-4.5 s (bench_load).
    with _creating:
        return _new_client(endpoint_url)


@functools.cache
def _new_client(endpoint_url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint_url,
        region_name=settings().aws_region,
        config=Config(
            connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}, max_pool_connections=FANOUT_WORKERS + 2
        ),
    )


def management_url(domain_name: str | None = None, stage: str | None = None) -> str:
    """WS_MANAGEMENT_URL when set (local gateway, custom domains), else API Gateway's own endpoint."""
    configured = settings().ws_management_url
    if configured:
        return configured
    if not domain_name or not stage:
        raise RuntimeError("WS_MANAGEMENT_URL is required to push from outside a WebSocket event")
    return f"https://{domain_name}/{stage}"


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


def post(connection_id: str, data: bytes, endpoint_url: str | None = None) -> str:
    """POST one frame: SENT, GONE (410: the connection no longer exists) or FAILED (anything else)."""
    from chalicelib.realtime.poster import poster

    try:
        status: int | BaseException = poster(endpoint_url or management_url(), settings().aws_region).post(
            connection_id, data
        )
    except Exception as exc:
        status = exc
    return outcome_of(connection_id, status)


def outcome_of(connection_id: str, answer: int | BaseException) -> str:
    """SENT for a 2xx status, GONE for 410, else FAILED (logged: the status or the error's type)."""
    if isinstance(answer, BaseException):
        logger().warning("push failed", extra={"connection_id": connection_id, "error": type(answer).__name__})
        return FAILED
    if answer == 410:
        return GONE
    if not 200 <= answer < 300:
        logger().warning("push failed", extra={"connection_id": connection_id, "status": answer})
        return FAILED
    return SENT


def close(connection_id: str, endpoint_url: str | None = None) -> str:
    """DELETE @connections/{id}: the gateway closes the socket (and runs $disconnect). SENT, GONE
    (it was closed already) or FAILED."""
    try:
        _client(endpoint_url or management_url()).delete_connection(ConnectionId=connection_id)
    except Exception as exc:
        if type(exc).__name__ == "GoneException":
            return GONE
        logger().warning("closing a connection failed", extra={"connection_id": connection_id, "error": repr(exc)})
        return FAILED
    return SENT


def send(connection_id: str, message: dict[str, Any], endpoint_url: str | None = None) -> bool:
    """Post one JSON message; True when delivered."""
    return post(connection_id, encode(message), endpoint_url) == SENT


@dataclass
class FanOut:
    """What happened to one fan-out: connections that are gone (410) and those that failed otherwise."""

    gone: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)


def fan_out(connection_ids: Iterable[str], frames: Sequence[bytes], endpoint_url: str | None = None) -> FanOut:
    """Send `frames`, in order, to every connection; connections are served concurrently.

    Each connection gets the frames one after another, so it never sees them out of order. A frame
    that fails (not 410) is retried once; if it fails again the connection is skipped for the rest
    of `frames` (its next message shows it a gap, and it resumes).
    """
    ids = list(dict.fromkeys(connection_ids))
    result = FanOut()
    if not ids or not frames:
        return result
    from chalicelib.realtime.fan_out_loop import fan_out_loop

    try:
        loop = fan_out_loop(endpoint_url or management_url(), settings().aws_region, FANOUT_WORKERS)
    except Exception as exc:  # e.g. no endpoint configured: every member failed, as each POST would have
        outcomes = [outcome_of(connection_id, exc) for connection_id in ids]
    else:
        outcomes = loop.send(ids, frames, outcome_of)
    for connection_id, outcome in zip(ids, outcomes, strict=True):
        if outcome == GONE:
            result.gone.add(connection_id)
        elif outcome == FAILED:
            result.failed.add(connection_id)
    return result
