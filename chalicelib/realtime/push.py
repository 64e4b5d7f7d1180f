"""Sending to WebSocket connections through the API Gateway @connections management API."""

from __future__ import annotations

import functools
import json
from typing import Any

from chalicelib.config import settings
from chalicelib.observability import logger

# API Gateway refuses frames over 32 KB from the management API... and clients choke on them.
MAX_FRAME_BYTES = 32 * 1024


@functools.cache
def _client(endpoint_url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint_url,
        region_name=settings().aws_region,
        config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}, max_pool_connections=50),
    )


def management_url(domain_name: str | None = None, stage: str | None = None) -> str:
    """WS_MANAGEMENT_URL when set (local gateway, custom domains), else API Gateway's own endpoint."""
    configured = settings().ws_management_url
    if configured:
        return configured
    if not domain_name or not stage:
        raise RuntimeError("WS_MANAGEMENT_URL is required to push from outside a WebSocket event")
    return f"https://{domain_name}/{stage}"


def send(connection_id: str, message: dict[str, Any], endpoint_url: str | None = None) -> bool:
    """Post one JSON message; False when the connection is gone (410), True when delivered."""
    data = json.dumps(message, separators=(",", ":")).encode()
    try:
        _client(endpoint_url or management_url()).post_to_connection(ConnectionId=connection_id, Data=data)
    except Exception as exc:
        if type(exc).__name__ == "GoneException":
            return False
        logger().warning("push failed", extra={"connection_id": connection_id, "error": type(exc).__name__})
        return False
    return True
