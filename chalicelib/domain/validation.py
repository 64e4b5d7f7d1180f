"""Typed reading of JSON request bodies: every error names its field; unknown fields are refused."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any, NoReturn

from chalicelib.errors import Invalid

_MISSING = object()
MAX_NESTING = 16


def nesting_depth(value: Any) -> int:
    """How deeply lists and objects nest inside `value` (iterative: no recursion limit to hit)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in item)
    return deepest


def contains_nul(value: Any) -> bool:
    """Whether a NUL character is in any key or text inside `value` (PostgreSQL cannot store one)."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_time(value: Any, field: str) -> dt.datetime:
    """An ISO-8601 time with an offset (or Z), as an aware UTC datetime."""
    if not isinstance(value, str) or len(value) > 40:
        raise Invalid(f"{field} must be an ISO-8601 time such as 2026-03-14T10:00:00Z", field=field)
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise Invalid(f"{field} must be an ISO-8601 time such as 2026-03-14T10:00:00Z", field=field) from exc
    if parsed.tzinfo is None:
        raise Invalid(f"{field} must include a time zone (e.g. Z for UTC)", field=field)
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError as exc:  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        raise Invalid(f"{field} is out of range (years 1 to 9999 in UTC)", field=field) from exc


class Body:
    """A JSON object from a request, read field by field."""

    def __init__(self, payload: Any, allowed: Iterable[str], prefix: str = "") -> None:
        if not isinstance(payload, dict):
            where = prefix.rstrip(".") or "body"
            raise Invalid(f"{where} must be a JSON object", field=where)
        self.payload = payload
        self.prefix = prefix
        unknown = sorted(set(payload) - set(allowed))
        if unknown:
            raise Invalid(
                f"unknown field {self.prefix}{unknown[0]}; allowed: {', '.join(sorted(allowed))}",
                field=f"{self.prefix}{unknown[0]}",
            )

    def fail(self, message: str, field: str) -> NoReturn:
        raise Invalid(message, field=f"{self.prefix}{field}")

    def has(self, name: str) -> bool:
        return name in self.payload

    def _get(self, name: str, required: bool, default: Any) -> Any:
        value = self.payload.get(name, _MISSING)
        if value is _MISSING or (value is None and not required):
            if required:
                self.fail(f"{self.prefix}{name} is required", name)
            return default
        if value is None:
            self.fail(f"{self.prefix}{name} must not be null", name)
        return value

    def text(
        self, name: str, *, required: bool = True, max_len: int = 200, default: str | None = None, min_len: int = 1
    ) -> Any:
        value = self._get(name, required, default)
        if value is default and not required:
            return value
        if not isinstance(value, str):
            self.fail(f"{self.prefix}{name} must be a string", name)
        value = value.strip()
        if not min_len <= len(value) <= max_len:
            self.fail(f"{self.prefix}{name} must be {min_len} to {max_len} characters", name)
        if "\x00" in value:
            self.fail(f"{self.prefix}{name} must not contain NUL characters", name)
        return value

    def choice(self, name: str, choices: Iterable[str], *, required: bool = False, default: str | None = None) -> Any:
        options = tuple(choices)
        value = self._get(name, required, default)
        if not self.has(name) and not required:
            return value
        if value not in options:
            self.fail(f"{self.prefix}{name} must be one of {', '.join(options)}", name)
        return value

    def integer(
        self,
        name: str,
        *,
        required: bool = True,
        minimum: int | None = None,
        maximum: int | None = None,
        default: int | None = None,
    ) -> Any:
        value = self._get(name, required, default)
        if value is default and not required:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"{self.prefix}{name} must be an integer", name)
        if minimum is not None and value < minimum:
            self.fail(f"{self.prefix}{name} must be at least {minimum}", name)
        if maximum is not None and value > maximum:
            self.fail(f"{self.prefix}{name} must be at most {maximum}", name)
        return value

    def number(
        self,
        name: str,
        *,
        required: bool = True,
        minimum: float | None = None,
        maximum: float | None = None,
        default: float | None = None,
    ) -> Any:
        value = self._get(name, required, default)
        if value is default and not required:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            self.fail(f"{self.prefix}{name} must be a number", name)
        if minimum is not None and value < minimum:
            self.fail(f"{self.prefix}{name} must be at least {minimum}", name)
        if maximum is not None and value > maximum:
            self.fail(f"{self.prefix}{name} must be at most {maximum}", name)
        return value

    def boolean(self, name: str, *, required: bool = False, default: bool | None = None) -> Any:
        value = self._get(name, required, default)
        if value is default and not required:
            return value
        if not isinstance(value, bool):
            self.fail(f"{self.prefix}{name} must be true or false", name)
        return value

    def time(self, name: str, *, required: bool = True) -> dt.datetime | None:
        value = self._get(name, required, None)
        if value is None:
            return None
        return parse_time(value, f"{self.prefix}{name}")

    def uuid(self, name: str, *, required: bool = True) -> Any:
        value = self._get(name, required, None)
        if value is None:
            return None
        try:
            return str(uuid.UUID(value))
        except (ValueError, TypeError, AttributeError):
            self.fail(f"{self.prefix}{name} must be a UUID", name)

    def obj(self, name: str, *, required: bool = False, max_keys: int = 200) -> Any:
        value = self._get(name, required, {})
        if not isinstance(value, dict):
            self.fail(f"{self.prefix}{name} must be a JSON object", name)
        if len(value) > max_keys:
            self.fail(f"{self.prefix}{name} has more than {max_keys} keys", name)
        if nesting_depth(value) > MAX_NESTING:
            self.fail(f"{self.prefix}{name} is nested more than {MAX_NESTING} levels deep", name)
        if contains_nul(value):
            self.fail(f"{self.prefix}{name} must not contain NUL characters", name)
        return value
