"""The authenticated caller of a request: a user (JWT) or an API key, always within one account."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.roles import at_least
from chalicelib.errors import Forbidden


@dataclass(frozen=True)
class Caller:
    account_id: str
    role: str
    user_id: str | None = None
    api_key_id: str | None = None
    # For an API key: the user who created it (what it makes is recorded as theirs).
    key_creator_id: str | None = None

    @property
    def kind(self) -> str:
        return "api_key" if self.api_key_id else "user"

    @property
    def principal(self) -> str:
        """Who exactly is calling: one user, or one API key (never just "someone of the account")."""
        return f"api_key:{self.api_key_id}" if self.api_key_id else f"user:{self.user_id}"

    @property
    def acting_user_id(self) -> str | None:
        """The person answerable for what this caller creates: the user, or the key's creator."""
        return self.user_id or self.key_creator_id

    def require(self, role: str) -> None:
        if not at_least(self.role, role):
            raise Forbidden(f"this needs the {role} role; you have {self.role}")
