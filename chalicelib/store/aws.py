"""boto3 clients created lazily once per container, honouring AWS_ENDPOINT_URL (moto or LocalStack)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chalicelib.config import settings
from chalicelib.errors import DependencyDown

SERVICE_NAMES = {
    "dynamodb": "DynamoDB",
    "sqs": "SQS",
    "s3": "S3",
    "apigatewaymanagementapi": "WebSocket API",
    "ses": "Email (SES)",
}


_creating = threading.Lock()


def client(service: str) -> Any:
    """The service's client, created once even when many threads ask at once (a threaded cold room
    fan-out once asked from 48 threads, and 48 concurrent creations, each loading the service model,
    stalled its first push for seconds)."""
    with _creating:
        return _new_client(service)


@functools.cache
def _new_client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=2,
        read_timeout=5,
        retries={"max_attempts": 2, "mode": "standard"},
        # Keep-alive pool sized for concurrent room fan-out.
        max_pool_connections=50,
        s3={"addressing_style": "path"} if settings().aws_endpoint_url else None,
        # Presigned URLs must be SigV4 (S3 refuses SigV2 on new buckets; only V4 signs Content-Length).
        signature_version="s3v4" if service == "s3" else None,
    )
    return boto3.session.Session().client(
        service,
        region_name=settings().aws_region,
        endpoint_url=settings().aws_endpoint_url,
        config=config,
    )


@contextmanager
def translated_errors(service: str) -> Iterator[None]:
    """Turn unreachable-endpoint errors into DependencyDown naming the service."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

    try:
        yield
    except (BotoConnectionError, ConnectTimeoutError, ReadTimeoutError) as exc:
        name = SERVICE_NAMES.get(service, service)
        detail = f"{exc} {getattr(exc, 'kwargs', {}).get('error', '')}"
        if "Name or service not known" in detail or "getaddrinfo" in detail or "nodename nor servname" in detail:
            message = f"{name} endpoint does not resolve (DNS): check the network/VPC DNS (AWS_ENDPOINT_URL locally)"
        else:
            message = f"{name} is unavailable; try again shortly"
        raise DependencyDown(name, message) from exc
