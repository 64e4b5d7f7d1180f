"""Accounts and their members: sign-up, invitations, roles, removal and password changes.

Nobody joins an account without proving they own the email: a sign-up creates nothing until its
emailed link is opened with its password; adding a member only sends an invitation by email, which
its recipient accepts signed in as that email, or, new to the platform, by choosing a password.
No answer tells an admin or a stranger whether an email has a login.

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
from chalicelib.domain import access, auth, changes, emails, listing, passwords, rate_limits, tokens
from chalicelib.domain.caller import Caller
from chalicelib.domain.records import API_KEYS, Field, Resource
from chalicelib.domain.roles import ROLES, at_least
from chalicelib.domain.validation import Body
from chalicelib.errors import Conflict, Forbidden, NotFound
from chalicelib.store.postgres import Row, execute, fetch_all, fetch_one, transaction

PASSWORD_MIN_CHARS = 10
PASSWORD_MAX_CHARS = 1024
INVITE_TTL_S = 7 * 24 * 3600
SIGNUP_TTL_S = 24 * 3600
# Sliding windows like login's (rate_limits.py): per email (or link) and per source address; password changes per user.
SIGNUP_LIMITS = (("email", 10, 300), ("ip", 50, 300))
LINK_LIMITS = (("token", 10, 300), ("ip", 50, 300))
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
    """POST /auth/signup: emails a confirmation link; nothing exists until it is opened (confirm_signup).

    The answer is the same whether or not the email has a login (the email's owner is told instead).
    """
    if not settings().signup_enabled:
        raise Forbidden("sign-up is switched off here; ask an owner or admin of your team to invite you")
    body = Body(payload, allowed={"email", "password", "name", "accountName"})
    email = _email(body)
    password = _password(body, "password", new=True)
    name = body.text("name")
    account_name = body.text("accountName")
    rate_limits.check("sign-up", SIGNUP_LIMITS, {"email": email.lower(), "ip": source_ip})
    password_hash = passwords.hash_password(password)  # hashed either way: the answer's timing tells nothing
    token = secrets.token_urlsafe(32)
    with transaction() as conn:
        existing = fetch_one(conn, "user_for_membership", {"email": email})
        if existing is not None and existing["memberships"]:
            emails.already_registered(email)
        else:
            fetch_one(
                conn,
                "upsert_pending_signup",
                {
                    "email": email,
                    "name": name,
                    "account_name": account_name,
                    "password_hash": password_hash,
                    "token_hash": _token_hash(token),
                    "ttl_s": SIGNUP_TTL_S,
                },
            )
            emails.signup_confirmation(email, account_name, token, SIGNUP_TTL_S // 3600)  # fails: nothing kept
    return {"status": "confirmation_sent", "email": email}


def confirm_signup(payload: Any, source_ip: str) -> dict[str, Any]:
    """POST /auth/confirm: the emailed link's token and the sign-up's password create the user, the
    account and its owner membership; answers like a login. Both are needed: a stranger's sign-up with
    your address cannot be confirmed by you clicking its link, nor by them without your mailbox."""
    body = Body(payload, allowed={"token", "password"})
    token = body.text("token", max_len=200)
    password = _password(body, "password", new=False)
    rate_limits.check("confirmation", LINK_LIMITS, {"token": _token_hash(token), "ip": source_ip})
    account_id = str(uuid.uuid4())
    with transaction() as conn:
        pending = fetch_one(conn, "pending_signup_by_token_hash", {"token_hash": _token_hash(token)})
        if pending is None:
            body.fail("this confirmation link is invalid or was already used; sign up again", "token")
        if pending["expired"]:
            body.fail("this confirmation link has expired; sign up again", "token")
        if not passwords.verify_password(pending["password_hash"], password):
            body.fail("password is not the one chosen at sign-up", "password")
        existing = fetch_one(conn, "user_for_membership", {"email": pending["email"]})
        if existing is not None and existing["memberships"]:
            execute(conn, "delete_pending_signup", {"id": pending["id"]})
            raise Conflict("this email joined an account since signing up; sign in instead")
        user_id = str(existing["id"]) if existing else str(uuid.uuid4())
        name, account_name = pending["name"], pending["account_name"]
        user = {"id": user_id, "email": pending["email"], "name": name, "password_hash": pending["password_hash"]}
        recorder = changes.Recorder(conn, Caller(account_id=account_id, role="owner", user_id=user_id))
        fetch_one(conn, "insert_signup_account", {"id": account_id, "name": account_name, "slug": _slug(account_name)})
        if existing is None:
            fetch_one(conn, "insert_user", user)
        else:  # someone removed from every account starts afresh under their old user id
            execute(conn, "reclaim_user", user)
        execute(conn, "insert_membership", {"account_id": account_id, "user_id": user_id, "role": "owner"})
        execute(conn, "delete_pending_signup", {"id": pending["id"]})
        recorder.record("member", "create", _wire(conn, account_id, user_id))
    changes.after_commit(recorder)
    return _signed_in(user_id, pending["email"], name, "owner", account_id, account_name)


def list_members(caller: Caller, params: Mapping[str, str]) -> dict[str, Any]:
    """GET /members: every member and pending invite (any role may read the team)."""
    from chalicelib.domain.reads import list_page

    return list_page(caller, MEMBERS, params)


def _may_touch(caller: Caller, *roles: str) -> None:
    if "owner" in roles and caller.role != "owner":
        raise Forbidden("only an owner may add, change or remove an owner")


def add_member(caller: Caller, payload: Any) -> dict[str, Any]:
    """POST /members: a pending invitation, emailed to the address, whether or not it has a login.

    The answer has one shape either way (no user id, no name, no token): the token goes only into
    the email, so only the mailbox's owner can accept it.
    """
    caller.require("admin")
    body = Body(payload, allowed={"email", "role"})
    email = _email(body)
    role = body.choice("role", ROLES, required=True)
    _may_touch(caller, role)
    with changes.write(caller) as (conn, recorder):
        account = fetch_one(conn, "lock_account_members", {"account_id": caller.account_id})
        assert account is not None
        if fetch_one(conn, "member_by_email", {"account_id": caller.account_id, "email": email}) is not None:
            raise Conflict(f"{email} is already a member of this account")  # the admin can list them anyway
        pending = fetch_one(conn, "invite_by_email", {"account_id": caller.account_id, "email": email})
        if pending is not None:
            _may_touch(caller, pending["role"])
        token = secrets.token_urlsafe(32)
        inviter_id = caller.acting_user_id  # sent with a key: its creator answers for it
        invite = fetch_one(
            conn,
            "upsert_invite",
            {
                "account_id": caller.account_id,
                "email": email,
                "role": role,
                "token_hash": _token_hash(token),
                "invited_by": inviter_id,
                "ttl_s": INVITE_TTL_S,
            },
        )
        assert invite is not None
        member = _wire(conn, caller.account_id, str(invite["id"]))
        recorder.record("member", "create" if invite["inserted"] else "update", member)
        inviter = fetch_one(conn, "inviter_name", {"id": inviter_id}) if inviter_id else None
        # Sent before the commit: if SES refuses, nothing was written (inviting again re-sends).
        emails.invitation(
            email, account["name"], role, inviter["name"] if inviter else None, token, INVITE_TTL_S // 86400
        )
    return member


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


def accept_invite(payload: Any, source_ip: str, signed_in: Caller | None) -> dict[str, Any]:
    """POST /auth/accept-invite: the emailed token's holder agrees to join (once); answers like a login.

    Someone with a login accepts signed in as the invited email (the token alone never joins a login
    to an account, nor changes its password). Anyone else proves the email by the token and chooses
    their password and name here.
    """
    body = Body(payload, allowed={"token", "password", "name"})
    token = body.text("token", max_len=200)
    rate_limits.check("invite acceptance", LINK_LIMITS, {"token": _token_hash(token), "ip": source_ip})
    if signed_in is not None and signed_in.user_id is None:
        raise Forbidden("an API key cannot accept an invitation; sign in as the invited person")
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
        if signed_in is not None:
            if user is None or str(user["id"]) != signed_in.user_id:
                raise Forbidden(f"this invitation is for {invite['email']}; sign in as that email to accept it")
            if body.has("password") or body.has("name"):
                body.fail("signed in, you accept with the token alone", "password" if body.has("password") else "name")
            user_id, name = str(user["id"]), user["name"]
        elif user is not None and user["memberships"]:
            raise Conflict(f"{invite['email']} already has a login: sign in with it, then accept the invitation")
        else:
            password = _password(body, "password", new=True)
            name = body.text("name")
            details = {"email": invite["email"], "name": name, "password_hash": passwords.hash_password(password)}
            if user is None:
                user_id = str(uuid.uuid4())
                fetch_one(conn, "insert_user", {"id": user_id, **details})
            else:  # removed from every account: the emailed link proves the address again
                user_id = str(user["id"])
                execute(conn, "reclaim_user", {"id": user_id, **details})
        execute(conn, "insert_membership", {"account_id": account_id, "user_id": user_id, "role": invite["role"]})
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
