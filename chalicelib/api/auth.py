"""POST /auth/login and GET /auth/me."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api import shapes
from chalicelib.api.routing import caller, json_body, route
from chalicelib.api.shapes import documented
from chalicelib.domain import auth
from chalicelib.domain.validation import Body

bp = Blueprint(__name__)


@route(bp, "/auth/login", methods=("POST",), public=True)
@documented(request=shapes.login_request(), answer=shapes.login_answer())
def login() -> Any:
    """Sign in with email and password; answers a JWT"""
    body = Body(json_body(bp), allowed={"email", "password", "accountId"})
    source_ip = bp.current_request.context.get("identity", {}).get("sourceIp") or "unknown"
    payload = body.payload
    return auth.login(payload.get("email"), payload.get("password"), source_ip, payload.get("accountId"))


@route(bp, "/auth/me")
@documented(answer=shapes.me_answer())
def me() -> Any:
    """Who is calling: user or API key, role and account"""
    return auth.describe(caller())
