"""List requests: filters, limits and opaque keyset cursors, validated before any SQL runs."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.records import Field, Resource, encode
from chalicelib.errors import Invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True)
class ListRequest:
    filters: dict[str, Any]  # column -> value
    parent_filters: tuple[tuple[str, Any], ...]  # (SQL condition, value)
    after: tuple[Any, ...] | None
    limit: int


def parse_uuid(value: str, field: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError) as exc:
        raise Invalid(f"{field} must be a UUID", field=field) from exc


def _parse_filter(field: Field, raw: str) -> Any:
    if field.kind == "uuid":
        return parse_uuid(raw, field.name)
    if field.kind == "int":
        try:
            value = int(raw)
        except ValueError as exc:
            raise Invalid(f"{field.name} must be an integer", field=field.name) from exc
        if abs(value) > 2**31 - 1:
            raise Invalid(f"{field.name} is out of range", field=field.name)
        return value
    if field.kind == "bool":
        if raw not in ("true", "false"):
            raise Invalid(f"{field.name} must be true or false", field=field.name)
        return raw == "true"
    if len(raw) > 200 or "\x00" in raw:
        raise Invalid(f"{field.name} is not a valid value", field=field.name)
    return raw


def encode_cursor(values: tuple[Any, ...]) -> str:
    raw = json.dumps([encode(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, width: int) -> tuple[Any, ...]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise Invalid("cursor is malformed; use nextCursor from the previous page", field="cursor") from exc
    if not isinstance(values, list) or len(values) != width:
        raise Invalid("cursor is malformed; use nextCursor from the previous page", field="cursor")
    if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
        raise Invalid("cursor is malformed; use nextCursor from the previous page", field="cursor")
    return tuple(values)


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError as exc:
        raise Invalid(f"limit must be an integer from 1 to {MAX_LIMIT}", field="limit") from exc
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be an integer from 1 to {MAX_LIMIT}", field="limit")
    return limit


def parse(resource: Resource, params: Mapping[str, str], extra: frozenset[str] = frozenset()) -> ListRequest:
    """Validate list query parameters; unknown ones are refused, naming them."""
    filters: dict[str, Any] = {}
    parents = dict(resource.parent_filters)
    parent_values: list[tuple[str, Any]] = []
    for name, raw in params.items():
        if name in ("limit", "cursor") or name in extra:
            continue
        field = resource.field(name)
        if field is not None and field.filter:
            filters[field.column] = _parse_filter(field, raw)
        elif name in parents:
            parent_values.append((parents[name], parse_uuid(raw, name)))
        else:
            allowed = sorted([f.name for f in resource.filters] + list(parents) + ["limit", "cursor"])
            raise Invalid(f"unknown query parameter {name!r}; allowed: {', '.join(allowed)}", field=name)
    cursor = params.get("cursor")
    after = decode_cursor(cursor, len(resource.order)) if cursor else None
    return ListRequest(filters, tuple(parent_values), after, parse_limit(params.get("limit")))


def page(resource: Resource, rows: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """The wire page: items plus the cursor of the last item when more rows exist."""
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(tuple(rows[-1][c] for c in resource.order)) if more and rows else None
    return {"items": [resource.to_wire(r) for r in rows], "nextCursor": next_cursor}
