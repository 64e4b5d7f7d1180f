"""The emails the platform sends: what they say and where their links point (the web client, WEB_URL)."""

from __future__ import annotations

from urllib.parse import quote

from chalicelib.config import settings
from chalicelib.store import mail

INVITE_ROUTE = "#/accept-invite"
CONFIRM_ROUTE = "#/confirm"


def link(route: str, token: str) -> str:
    """A web client link carrying a one-time token (the fragment never reaches a server's logs)."""
    return f"{settings().web_url}/{route}?token={quote(token)}"


def invitation(to: str, account_name: str, role: str, inviter_name: str | None, token: str, ttl_days: int) -> None:
    """One message whether or not `to` already has a login: the page tells them what to do."""
    who = inviter_name or "An admin"
    mail.send(
        to,
        f"{who} invited you to {account_name} on Race Platform",
        f"{who} invited you to join {account_name} as {role}.\n\n"
        f"Accept the invitation: {link(INVITE_ROUTE, token)}\n\n"
        f"The link works once, for {ttl_days} days. If you already have a login, sign in with it to accept;\n"
        "if not, you choose your password there. If you did not expect this, ignore this email.\n",
    )


def signup_confirmation(to: str, account_name: str, token: str, ttl_hours: int) -> None:
    mail.send(
        to,
        "Confirm your email for Race Platform",
        f"Someone (we hope you) signed up to Race Platform with this address to create {account_name}.\n\n"
        f"Confirm it: {link(CONFIRM_ROUTE, token)}\n\n"
        f"You will be asked for the password you chose. The link works once, for {ttl_hours} hours.\n"
        "If this was not you, ignore this email: nothing is created without it.\n",
    )


def already_registered(to: str) -> None:
    """A sign-up for an address that has a login: tell its owner, never the person signing up."""
    mail.send(
        to,
        "Sign-up attempt for your Race Platform login",
        "Someone tried to sign up to Race Platform with this address, which already has a login.\n\n"
        f"Sign in instead: {settings().web_url}/#/login\n\n"
        "If this was not you, nothing changed; you can ignore this email.\n",
    )
