"""Accounts and their members: sign-up, invitations, roles, removal and password changes.

Membership is re-read on every request (domain.auth.authenticate_jwt), so each change here takes
effect on the member's next request. A password change does not revoke JWTs already issued: they
keep working until they expire (JWT_TTL_S); see docs/decisions.md.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from chalicelib.config import settings
from chalicelib.domain import access, auth, changes, listing, passwords, rate_limits, tokens
from chalicelib.domain.caller import Caller
from chalicelib.domain.records import API_KEYS, Field, Resource
from chalicelib.domain.roles import ROLES, at_least
from chalicelib.domain.validation import Body
from chalicelib.errors import Conflict, Forbidden, NotFound
from chalicelib.store.postgres import Row, execute, fetch_all, fetch_one, transaction

PASSWORD_MIN_CHARS = 10
PASSWORD_MAX_CHARS = 1024
INVITE_TTL_S = 7 * 24 * 3600
INVITE_PATH = "/#/accept-invite?token="
# Sliding windows like login's (rate_limits.py): per email and per source address; password changes per user.
SIGNUP_LIMITS = (("email", 10, 300), ("ip", 50, 300))
PASSWORD_CHANGE_LIMITS = (("user", 10, 300),)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

MEMBERS = Resource(
    "member",
    "account_members",  # a view: memberships and pending invites (migration 0007)
    (
        Field("id", "id", "uuid"),
        Field("userId", "user_id", "uuid"),
        Field("email", "email"),
        Field("name", "name"),
        Field("role", "role", filter=True),
        Field("status", "status", filter=True),
        Field("joinedAt", "joined_at", "time"),
        Field("inviteExpiresAt", "expires_at", "time"),
        Field("createdAt", "created_at", "time"),
    ),
)


def _email(body: Body, name: str = "email") -> str:
    email: str = body.text(name, max_len=320, min_len=3)
    if not _EMAIL.match(email):
        body.fail(f"{name} must be an email address", name)
    return email


def _password(body: Body, name: str, *, new: bool) -> str:
    """A password exactly as sent (never stripped); new ones must meet the length policy."""
    value = body.payload.get(name)
    if not isinstance(value, str) or not value:
        body.fail(f"{name} is required", name)
    if len(value) > PASSWORD_MAX_CHARS:
        body.fail(f"{name} must be at most {PASSWORD_MAX_CHARS} characters", name)
    if new and len(value) < PASSWORD_MIN_CHARS:
        body.fail(f"{name} must be at least {PASSWORD_MIN_CHARS} characters", name)
    return value


def _slug(account_name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", account_name.lower()).strip("-")[:40] or "team"
    return f"{base}-{secrets.token_hex(3)}"


def _signed_in(user_id: str, email: str, name: str, role: str, account_id: str, account_name: str) -> dict[str, Any]:
    """The same answer as POST /auth/login."""
    ttl_s = settings().jwt_ttl_s
    token = tokens.issue_jwt(settings().jwt_secret, user_id=user_id, account_id=account_id, role=role, ttl_s=ttl_s)
    with transaction() as conn:
        accounts = fetch_all(conn, "accounts_of_user", {"user_id": user_id})
    return {
        "token": token,
        "expiresIn": ttl_s,
        "user": {
            "id": user_id,
            "email": email,
            "name": name,
            "role": role,
            "accountId": account_id,
            "accountName": account_name,
        },
        "accounts": auth.accounts_wire(accounts),
    }


def _member(conn: Any, account_id: str, member_id: str) -> Row | None:
    return fetch_one(conn, "account_member", {"account_id": account_id, "id": member_id})


def _wire(conn: Any, account_id: str, member_id: str) -> dict[str, Any]:
    row = _member(conn, account_id, member_id)
    assert row is not None
    return MEMBERS.to_wire(row)


def signup(payload: Any, source_ip: str) -> dict[str, Any]:
    """POST /auth/signup: a new account with its first user as owner; answers like a login."""
    if not settings().signup_enabled:
        raise Forbidden("sign-up is switched off here; ask an owner or admin of your team to invite you")
    body = Body(payload, allowed={"email", "password", "name", "accountName"})
    email = _email(body)
    password = _password(body, "password", new=True)
    name = body.text("name")
    account_name = body.text("accountName")
    rate_limits.check("sign-up", SIGNUP_LIMITS, {"email": email.lower(), "ip": source_ip})
    with transaction() as conn:
        existing = fetch_one(conn, "user_for_membership", {"email": email})
    if existing is not None and existing["memberships"]:
        raise Conflict("an account with this email already exists; sign in instead")
    password_hash = passwords.hash_password(password)
    # Someone removed from every account starts afresh under their old user id.
    account_id, user_id = str(uuid.uuid4()), str(existing["id"]) if existing else str(uuid.uuid4())
    with changes.write(Caller(account_id=account_id, role="owner", user_id=user_id)) as (conn, recorder):
        fetch_one(conn, "insert_signup_account", {"id": account_id, "name": account_name, "slug": _slug(account_name)})
        user = {"id": user_id, "email": email, "name": name, "password_hash": password_hash}
        if existing is None:
            fetch_one(conn, "insert_user", user)  # a concurrent sign-up with this email: 409 (unique index)
        elif execute(conn, "reclaim_user", user) == 0:
            raise Conflict("an account with this email already exists; sign in instead")
        execute(conn, "insert_membership", {"account_id": account_id, "user_id": user_id, "role": "owner"})
        recorder.record("member", "create", _wire(conn, account_id, user_id))
    return _signed_in(user_id, email, name, "owner", account_id, account_name)


def list_members(caller: Caller, params: Mapping[str, str]) -> dict[str, Any]:
    """GET /members: every member and pending invite (any role may read the team)."""
    from chalicelib.domain.reads import list_page

    return list_page(caller, MEMBERS, params)


def _may_touch(caller: Caller, *roles: str) -> None:
    if "owner" in roles and caller.role != "owner":
        raise Forbidden("only an owner may add, change or remove an owner")


def add_member(caller: Caller, payload: Any) -> dict[str, Any]:
    """POST /members: an existing user joins at once; anyone else gets a one-time invite token."""
    caller.require("admin")
    body = Body(payload, allowed={"email", "role"})
    email = _email(body)
    role = body.choice("role", ROLES, required=True)
    _may_touch(caller, role)
    with changes.write(caller) as (conn, recorder):
        fetch_one(conn, "lock_account_members", {"account_id": caller.account_id})
        user = fetch_one(conn, "user_for_membership", {"email": email})
        if user is not None and user["memberships"]:
            user_id = str(user["id"])
            if _member(conn, caller.account_id, user_id) is not None:
                raise Conflict(f"{email} is already a member of this account")
            execute(conn, "insert_membership", {"account_id": caller.account_id, "user_id": user_id, "role": role})
            execute(conn, "delete_invite_for_email", {"account_id": caller.account_id, "email": email})
            member = _wire(conn, caller.account_id, user_id)
            recorder.record("member", "create", member)
            return member
        pending = fetch_one(conn, "invite_by_email", {"account_id": caller.account_id, "email": email})
        if pending is not None:
            _may_touch(caller, pending["role"])
        token = secrets.token_urlsafe(32)
        invite = fetch_one(
            conn,
            "upsert_invite",
            {
                "account_id": caller.account_id,
                "email": email,
                "role": role,
                "token_hash": _token_hash(token),
                "invited_by": caller.acting_user_id,  # sent with a key: its creator answers for it
                "ttl_s": INVITE_TTL_S,
            },
        )
        assert invite is not None
        member = _wire(conn, caller.account_id, str(invite["id"]))
        recorder.record("member", "create" if invite["inserted"] else "update", member)
    # The token is in this answer only; the database keeps its SHA-256.
    return {**member, "inviteToken": token, "inviteUrl": INVITE_PATH + token}


def _inviter_may_send(inviter_role: str | None, role: str) -> bool:
    """An invite stands only while its inviter could send it now (an admin; an owner for owners)."""
    return inviter_role is not None and at_least(inviter_role, "admin") and (role != "owner" or inviter_role == "owner")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def change_role(caller: Caller, member_id: str, payload: Any) -> dict[str, Any]:
    """PATCH /members/{userId}: a member's (or a pending invite's) role."""
    caller.require("admin")
    member_id = listing.parse_uuid(member_id, "userId")
    body = Body(payload, allowed={"role"})
    role = body.choice("role", ROLES, required=True)
    with changes.write(caller) as (conn, recorder):
        fetch_one(conn, "lock_account_members", {"account_id": caller.account_id})
        current = _member(conn, caller.account_id, member_id)
        if current is None:
            raise NotFound(f"member {member_id} not found")
        _may_touch(caller, current["role"], role)
        if current["role"] == role:
            return MEMBERS.to_wire(current)
        if current["user_id"] is None:
            execute(conn, "update_invite_role", {"account_id": caller.account_id, "id": member_id, "role": role})
        else:
            if current["role"] == "owner" and _owners(conn, caller.account_id) <= 1:
                raise Conflict("the account's last owner cannot be demoted; make another member owner first")
            execute(
                conn, "update_membership_role", {"account_id": caller.account_id, "user_id": member_id, "role": role}
            )
            _withdraw_invites(recorder, member_id, role)
        member = _wire(conn, caller.account_id, member_id)
        recorder.record("member", "update", member)
    return member


def _owners(conn: Any, account_id: str) -> int:
    row = fetch_one(conn, "count_owners", {"account_id": account_id})
    return int(row["owners"]) if row else 0


def remove_member(caller: Caller, member_id: str) -> dict[str, Any]:
    """DELETE /members/{userId}: the member's next request answers 401, the API keys they created are
    revoked and the invites they sent withdrawn (the answer lists both); a pending invite is revoked."""
    caller.require("admin")
    member_id = listing.parse_uuid(member_id, "userId")
    revoked: list[dict[str, Any]] = []
    withdrawn: list[dict[str, Any]] = []
    with changes.write(caller) as (conn, recorder):
        fetch_one(conn, "lock_account_members", {"account_id": caller.account_id})
        current = _member(conn, caller.account_id, member_id)
        if current is None:
            raise NotFound(f"member {member_id} not found")
        _may_touch(caller, current["role"])
        if current["user_id"] is None:
            execute(conn, "delete_invite", {"account_id": caller.account_id, "id": member_id})
        else:
            if current["role"] == "owner" and _owners(conn, caller.account_id) <= 1:
                raise Conflict("the account's last owner cannot be removed; make another member owner first")
            execute(conn, "delete_membership", {"account_id": caller.account_id, "user_id": member_id})
            access.member_removed(recorder, caller.account_id, member_id)  # their sockets and keys' close
            revoked = _revoke_keys(recorder, member_id)
            withdrawn = _withdraw_invites(recorder, member_id, None)
        recorder.record("member", "delete", MEMBERS.to_wire(current))
    return {"id": member_id, "revokedApiKeys": revoked, "withdrawnInvites": withdrawn}


def _revoke_keys(recorder: changes.Recorder, user_id: str) -> list[dict[str, Any]]:
    """The API keys `user_id` created in the account, deleted, each with an `api_key.delete` event."""
    rows = fetch_all(
        recorder.conn, "revoke_keys_created_by", {"account_id": recorder.caller.account_id, "user_id": user_id}
    )
    keys = [API_KEYS.to_wire(row) for row in rows]
    for key in keys:
        recorder.record("api_key", "delete", {**key, "reason": "creator_removed"})
    return keys


def _withdraw_invites(recorder: changes.Recorder, user_id: str, role: str | None) -> list[dict[str, Any]]:
    """Pending invites `user_id` sent that their role (None: no longer a member) may no longer send,
    deleted, each with a `member.delete` event."""
    params = {
        "account_id": recorder.caller.account_id,
        "user_id": user_id,
        "may_invite": role is not None and at_least(role, "admin"),
        "may_invite_owners": role == "owner",
    }
    invites = [MEMBERS.to_wire(row) for row in fetch_all(recorder.conn, "withdraw_invites_sent_by", params)]
    reason = "inviter_removed" if role is None else "inviter_demoted"
    for invite in invites:
        recorder.record("member", "delete", {**invite, "reason": reason})
    return invites


def accept_invite(payload: Any) -> dict[str, Any]:
    """POST /auth/accept-invite: the token's holder joins the account (once); answers like a login.

    A new person sets their password here. Someone who already belongs to another account proves
    it is them with their current password instead (the token alone never changes a password
    that protects another account).
    """
    body = Body(payload, allowed={"token", "password", "name"})
    token = body.text("token", max_len=200)
    password = _password(body, "password", new=False)
    name = body.text("name", required=False)
    with transaction() as conn:
        invite = fetch_one(conn, "invite_by_token_hash", {"token_hash": _token_hash(token)})
        if invite is None:
            body.fail("this invite link is invalid or was already used; ask for a new one", "token")
        if invite["expired"]:
            body.fail("this invite link has expired; ask an owner or admin for a new one", "token")
        if not _inviter_may_send(invite["inviter_role"], invite["role"]):  # withdrawal's backstop
            body.fail("this invite link was withdrawn; ask an owner or admin for a new one", "token")
        account_id = str(invite["account_id"])
        user = fetch_one(conn, "user_for_membership", {"email": invite["email"]})
        if user is not None and user["memberships"]:
            if not passwords.verify_password(user["password_hash"], password):
                body.fail("this email already has a login: send its current password", "password")
            user_id, name = str(user["id"]), user["name"]
        else:
            _password(body, "password", new=True)
            if name is None:
                body.fail("name is required", "name")
            password_hash = passwords.hash_password(password)
            if user is None:
                user_id = str(uuid.uuid4())
                fetch_one(
                    conn,
                    "insert_user",
                    {"id": user_id, "email": invite["email"], "name": name, "password_hash": password_hash},
                )
            else:
                user_id = str(user["id"])
                execute(conn, "reclaim_user", {"id": user_id, "name": name, "password_hash": password_hash})
        role = invite["role"]
        execute(conn, "insert_membership", {"account_id": account_id, "user_id": user_id, "role": role})
        execute(conn, "delete_invite", {"account_id": account_id, "id": invite["id"]})
        member = _member(conn, account_id, user_id)
        assert member is not None
        recorder = changes.Recorder(conn, Caller(account_id=account_id, role=member["role"], user_id=user_id))
        recorder.record("member", "update", {**MEMBERS.to_wire(member), "inviteId": str(invite["id"])})
        email, role = member["email"], member["role"]
    changes.after_commit(recorder)
    return _signed_in(user_id, email, name, role, account_id, invite["account_name"])


def change_password(caller: Caller, payload: Any) -> None:
    """POST /auth/password: the signed-in user's own password. JWTs issued before stay valid until
    they expire (they carry no password version); API keys are unaffected."""
    if caller.user_id is None:
        raise Forbidden("an API key has no password; sign in as a user to change yours")
    body = Body(payload, allowed={"currentPassword", "newPassword"})
    current = _password(body, "currentPassword", new=False)
    new = _password(body, "newPassword", new=True)
    rate_limits.check("password change", PASSWORD_CHANGE_LIMITS, {"user": caller.user_id})
    with transaction() as conn:
        user = fetch_one(conn, "user_password", {"id": caller.user_id})
        if user is None or not passwords.verify_password(user["password_hash"], current):
            body.fail("currentPassword is not your current password", "currentPassword")
        execute(conn, "set_user_password", {"id": caller.user_id, "password_hash": passwords.hash_password(new)})
