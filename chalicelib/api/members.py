"""/members and the account routes of /auth: sign-up, invitations, roles, password changes."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api import shapes
from chalicelib.api.routing import authenticated_caller, caller, json_body, query_params, route
from chalicelib.api.shapes import documented
from chalicelib.domain import members

bp = Blueprint(__name__)


def _source_ip() -> str:
    return str(bp.current_request.context.get("identity", {}).get("sourceIp") or "unknown")


@route(bp, "/auth/signup", methods=("POST",), public=True, status=202)
@documented(request=shapes.signup_request(), answer=shapes.signup_answer())
def signup() -> Any:
    """Sign up: emails a confirmation link; the account exists once it is confirmed (403 when switched off)"""
    return members.signup(json_body(bp), _source_ip())


@route(bp, "/auth/confirm", methods=("POST",), public=True, status=201)
@documented(request=shapes.confirm_request(), answer=shapes.login_answer())
def confirm_signup() -> Any:
    """Confirm a sign-up with the emailed token and its password: creates the account; answers like /auth/login"""
    return members.confirm_signup(json_body(bp), _source_ip())


@route(bp, "/auth/accept-invite", methods=("POST",), public=True)
@documented(request=shapes.accept_invite_request(), answer=shapes.login_answer())
def accept_invite() -> Any:
    """Join an account with the emailed invite token: signed in as the invited email, or new with a password"""
    return members.accept_invite(json_body(bp), _source_ip(), authenticated_caller(bp))


@route(bp, "/auth/password", methods=("POST",))
@documented(request=shapes.password_request())
def change_password() -> None:
    """Change your own password (JWTs issued before stay valid until they expire)"""
    members.change_password(caller(), json_body(bp))


@route(bp, "/members")
@documented(resource=members.MEMBERS, listing=True)
def list_members() -> Any:
    """List the account's members and pending invites"""
    return members.list_members(caller(), query_params(bp))


@route(bp, "/members", methods=("POST",), status=201, applied_once=True)
@documented(request=shapes.member_request(creating=True), resource=members.MEMBERS)
def add_member() -> Any:
    """Invite an email (admin+): the invitation goes by email; one answer whether it has a login or not"""
    return members.add_member(caller(), json_body(bp))


@route(bp, "/members/{userId}", methods=("PATCH",))
@documented(request=shapes.member_request(creating=False), resource=members.MEMBERS)
def change_role(userId: str) -> Any:
    """Change a member's (or pending invite's) role (admin+; owners only by an owner)"""
    return members.change_role(caller(), userId, json_body(bp))


@route(bp, "/members/{userId}", methods=("DELETE",))
@documented(answer=shapes.member_removed())
def remove_member(userId: str) -> Any:
    """Remove a member (next request 401; their keys revoked, invites withdrawn) or an invite; never the last owner"""
    return members.remove_member(caller(), userId)
