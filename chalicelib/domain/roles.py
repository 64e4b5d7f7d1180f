"""Who may do what: roles are ordered, each includes the ones below it."""

from __future__ import annotations

ROLES = ("viewer", "engineer", "admin", "owner")
_RANK = {role: rank for rank, role in enumerate(ROLES)}


def at_least(role: str, required: str) -> bool:
    return _RANK.get(role, -1) >= _RANK[required]


def lower(role: str, other: str) -> str:
    """The lesser of two roles (an API key acts with the lower of its own and its creator's)."""
    return role if _RANK.get(role, -1) <= _RANK.get(other, -1) else other
