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

    @property
    def kind(self) -> str:
        return "api_key" if self.api_key_id else "user"

    def require(self, role: str) -> None:
        if not at_least(self.role, role):
            raise Forbidden(f"this needs the {role} role; you have {self.role}")
