"""GET /health: liveness without touching dependencies; ?deep=1 checks each one and names the down."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response

from chalicelib.api import shapes
from chalicelib.api.routing import authenticated_caller, query_params, route
from chalicelib.api.shapes import documented
from chalicelib.domain.roles import at_least

bp = Blueprint(__name__)
OPERATOR_ROLE = "admin"


@route(bp, "/health", public=True)
@documented(
    answer=shapes.health_answer(),
    query={"deep": {"type": "string"}},
    errors={"503": "?deep=1: a dependency is down (an admin's report names it)"},
)
def health() -> Any:
    """Liveness; ?deep=1 checks PostgreSQL, DynamoDB, SQS and S3; only an admin's answer names the one down"""
    params = query_params(bp)
    if params.get("deep") not in ("1", "true"):
        return {"status": "ok"}
    from chalicelib.domain.health import deep_check

    report = deep_check()
    status_code = 200 if report["status"] == "ok" else 503
    caller = authenticated_caller(bp)
    if caller is None or not at_least(caller.role, OPERATOR_ROLE):
        report = {"status": report["status"]}  # dependency names, errors and timings are for operators
    return Response(body=report, status_code=status_code, headers={"Content-Type": "application/json"})
