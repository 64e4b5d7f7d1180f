"""GET /health: liveness without touching dependencies; ?deep=1 checks each one and names the down."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response

from chalicelib.api import shapes
from chalicelib.api.routing import query_params, route
from chalicelib.api.shapes import documented

bp = Blueprint(__name__)


@route(bp, "/health", public=True)
@documented(
    answer=shapes.health_answer(),
    query={"deep": {"type": "string"}},
    errors={"503": "?deep=1: a dependency is down (the report names it)"},
)
def health() -> Any:
    """Liveness; ?deep=1 checks PostgreSQL, DynamoDB, SQS and S3 and names the one down"""
    params = query_params(bp)
    if params.get("deep") not in ("1", "true"):
        return {"status": "ok"}
    from chalicelib.domain.health import deep_check

    report = deep_check()
    return Response(
        body=report, status_code=200 if report["status"] == "ok" else 503, headers={"Content-Type": "application/json"}
    )
