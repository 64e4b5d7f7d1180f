"""List requests: filters, comparisons, sort, field selection, limits and opaque keyset cursors,
validated before any SQL runs.

Every resource lists with equality filters (`?runSheetId=...`) and keyset pagination. A resource
that opts in with a `Queryable` (laps, sessions) also takes, in the OpenF1 style:
- comparisons on whitelisted fields: `lapTimeMs<=95000`, `lapNumber>5`,
  `recordedAt>=2026-03-14T10:00:00Z`. The query string parser splits at the first `=`, so
  `lapTimeMs<=95000` arrives as the name `lapTimeMs<` with the value `95000`, and `lapNumber>5`
  as the name `lapNumber>5` with an empty value (a client that percent-encodes `<`, `>` and `=`
  sends the whole expression as the name): all three spellings are read the same way;
- `sort=-lapTimeMs` (comma-separated, `-` for descending, whitelisted fields; `id` breaks ties),
  whose cursor carries the sort keys of the last row and the sort itself;
- `fields=id,lapNumber,lapTimeMs` (answer only these fields, in this order).
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import io
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.records import Field, Resource, encode
from chalicelib.errors import Invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_SORT_KEYS = 3
OPERATORS = ("<=", ">=", "<", ">")
_COMPARISON = re.compile(r"^([A-Za-z][A-Za-z0-9]*)(<=|>=|<|>)(.*)$", re.DOTALL)
_SORT_KEY = re.compile(r"^-?[A-Za-z][A-Za-z0-9]*$")
_MALFORMED_CURSOR = "cursor is malformed; use nextCursor from the previous page"
_INT_MAX = 2**31 - 1


@dataclass(frozen=True)
class Queryable:
    """What a resource's list takes beyond equality filters (wire names)."""

    ranges: tuple[str, ...] = ()  # fields that take <, <=, >, >=
    sorts: tuple[str, ...] = ()  # fields ?sort= accepts (non-null columns only: keysets cannot skip NULLs)
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # text filters with a closed set
    patterns: Mapping[str, str] = field(default_factory=dict)  # text filters with a shape (regex)
    fields: bool = True  # ?fields= selection


@dataclass(frozen=True)
class ListRequest:
    filters: dict[str, Any]  # column -> value
    parent_filters: tuple[tuple[str, Any], ...]  # (SQL condition, value)
    after: tuple[Any, ...] | None
    limit: int
    ranges: tuple[tuple[str, str, Any], ...] = ()  # (column, operator, value), e.g. ("lap_time_ms", "<=", 95000)
    order: tuple[tuple[str, bool], ...] = ()  # (column, descending); empty: the resource's own order
    fields: tuple[str, ...] | None = None  # wire names to answer with, in this order; None: all
    sort: str | None = None  # the ?sort= text, carried in cursors so a page cannot continue another order

    def order_by(self, resource: Resource) -> tuple[tuple[str, bool], ...]:
        return self.order or tuple((column, False) for column in resource.order)


def parse_uuid(value: str, field: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError) as exc:
        raise Invalid(f"{field} must be a UUID", field=field) from exc


def _parse_int(raw: str, name: str) -> int:
    try:
        value = int(raw)
    except ValueError as exc:
        raise Invalid(f"{name} must be an integer", field=name) from exc
    if abs(value) > _INT_MAX:
        raise Invalid(f"{name} is out of range", field=name)
    return value


def _parse_value(spec: Field, raw: str, query: Queryable | None = None) -> Any:
    if spec.kind == "uuid":
        return parse_uuid(raw, spec.name)
    if spec.kind == "int":
        return _parse_int(raw, spec.name)
    if spec.kind == "bool":
        if raw not in ("true", "false"):
            raise Invalid(f"{spec.name} must be true or false", field=spec.name)
        return raw == "true"
    if spec.kind == "time":
        return _parse_time(raw, spec.name)
    if spec.kind == "decimal":
        try:
            number = float(raw)
        except ValueError as exc:
            raise Invalid(f"{spec.name} must be a number", field=spec.name) from exc
        if number != number or abs(number) > 1e9:
            raise Invalid(f"{spec.name} must be a number", field=spec.name)
        return number
    if len(raw) > 200 or "\x00" in raw:
        raise Invalid(f"{spec.name} is not a valid value", field=spec.name)
    if query is not None:
        choices = query.choices.get(spec.name)
        if choices is not None and raw not in choices:
            raise Invalid(f"{spec.name} must be one of {', '.join(choices)}", field=spec.name)
        pattern = query.patterns.get(spec.name)
        if pattern is not None and not re.fullmatch(pattern, raw):
            raise Invalid(f"{spec.name} is not a valid value", field=spec.name)
    return raw


def _parse_time(raw: str, name: str) -> dt.datetime:
    message = f"{name} must be an ISO-8601 time such as 2026-03-14T10:00:00Z (send a + as %2B in a query string)"
    if len(raw) > 40:
        raise Invalid(message, field=name)
    try:
        parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise Invalid(message, field=name) from exc
    if parsed.tzinfo is None:
        raise Invalid(f"{name} must include a time zone (e.g. Z for UTC)", field=name)
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError as exc:  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        raise Invalid(f"{name} is out of range (years 1 to 9999 in UTC)", field=name) from exc


def encode_cursor(values: tuple[Any, ...]) -> str:
    raw = json.dumps([encode(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, width: int) -> tuple[Any, ...]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise Invalid(_MALFORMED_CURSOR, field="cursor") from exc
    if not isinstance(values, list) or len(values) != width:
        raise Invalid(_MALFORMED_CURSOR, field="cursor")
    if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
        raise Invalid(_MALFORMED_CURSOR, field="cursor")
    return tuple(values)


def parse_limit(raw: str | None, maximum: int = MAX_LIMIT, default: int = DEFAULT_LIMIT) -> int:
    if raw is None:
        return default
    try:
        limit = int(raw)
    except ValueError as exc:
        raise Invalid(f"limit must be an integer from 1 to {maximum}", field="limit") from exc
    if not 1 <= limit <= maximum:
        raise Invalid(f"limit must be an integer from 1 to {maximum}", field="limit")
    return limit


def _comparison(resource: Resource, query: Queryable | None, name: str, raw: str) -> tuple[str, str, Any] | None:
    """(column, operator, value) when `name`/`raw` spell a comparison; None when they do not."""
    match = _COMPARISON.match(name)
    if match is None:
        return None
    wire, operator, rest = match.groups()
    if rest:
        if raw:  # e.g. "lapNumber>5=6"
            raise Invalid(f"{wire}: use one comparison such as {wire}{operator}{rest}", field=wire)
        value = rest
    else:
        if not raw:
            raise Invalid(f"{wire}{operator} needs a value, e.g. {wire}{operator}100", field=wire)
        if operator in ("<", ">") and raw.startswith("="):  # "lapNumber>==5": the "=" was doubled
            raise Invalid(f"{wire}: use one comparison such as {wire}{operator}={raw.lstrip('=')}", field=wire)
        operator = operator + "=" if operator in ("<", ">") else operator  # the parser ate the "=" of <= / >=
        value = raw
    spec = resource.field(wire)
    ranges = query.ranges if query else ()
    if spec is None or wire not in ranges:
        allowed = ", ".join(ranges) or "none"
        raise Invalid(f"{wire} cannot be compared with {operator}; fields that can: {allowed}", field=wire)
    if value == "":
        raise Invalid(f"{wire}{operator} needs a value, e.g. {wire}{operator}100", field=wire)
    return spec.column, operator, _parse_value(spec, value, query)


def _sort(resource: Resource, query: Queryable | None, raw: str) -> tuple[tuple[str, bool], ...]:
    sorts = query.sorts if query else ()
    keys = raw.split(",")
    if not raw or len(keys) > MAX_SORT_KEYS:
        raise Invalid(f"sort takes 1 to {MAX_SORT_KEYS} comma-separated fields, e.g. sort=-lapTimeMs", field="sort")
    order: list[tuple[str, bool]] = []
    for key in keys:
        name = key.lstrip("-")
        spec = resource.field(name)
        if not _SORT_KEY.match(key) or spec is None or name not in sorts:
            raise Invalid(
                f"cannot sort by {key[:40]!r}; sortable fields: {', '.join(sorts) or 'none'} (prefix - for descending)",
                field="sort",
            )
        if any(column == spec.column for column, _ in order):
            raise Invalid(f"sort names {name} twice", field="sort")
        order.append((spec.column, key.startswith("-")))
    if not any(column == "id" for column, _ in order):
        order.append(("id", order[-1][1]))  # a unique last key makes the keyset exact
    return tuple(order)


def _fields(resource: Resource, raw: str) -> tuple[str, ...]:
    names = [name.strip() for name in raw.split(",")]
    if not raw or len(names) > len(resource.fields):
        raise Invalid("fields takes comma-separated field names, e.g. fields=id,lapNumber", field="fields")
    for name in names:
        if resource.field(name) is None:
            allowed = ", ".join(f.name for f in resource.fields)
            raise Invalid(f"unknown field {name[:40]!r} in fields; allowed: {allowed}", field="fields")
    return tuple(dict.fromkeys(names))


def _cursor_values(resource: Resource, order: Sequence[tuple[str, bool]], values: Sequence[Any]) -> tuple[Any, ...]:
    """Cursor values checked against the kinds of their columns (a forged cursor is a 400, not SQL)."""
    kinds = {f.column: f.kind for f in resource.fields}
    checked = []
    for (column, _), value in zip(order, values, strict=True):
        kind = kinds.get(column)
        try:
            if kind == "uuid":
                value = str(uuid.UUID(value))
            elif kind == "int":
                if not isinstance(value, int) or abs(value) > _INT_MAX:
                    raise ValueError(column)
            elif kind == "time":
                value = _parse_time(value, "cursor")
            elif kind is not None and not isinstance(value, str):
                raise ValueError(column)
        except (ValueError, TypeError, AttributeError, Invalid) as exc:
            raise Invalid(_MALFORMED_CURSOR, field="cursor") from exc
        checked.append(value)
    return tuple(checked)


def parse(
    resource: Resource,
    params: Mapping[str, str],
    extra: frozenset[str] = frozenset(),
    query: Queryable | None = None,
    *,
    max_limit: int = MAX_LIMIT,
    default_limit: int = DEFAULT_LIMIT,
) -> ListRequest:
    """Validate list query parameters; unknown ones are refused, naming them.

    Without `query`, a list takes equality filters, limit and cursor only (as every resource
    always has); with it, also comparisons, sort and fields.
    """
    filters: dict[str, Any] = {}
    ranges: list[tuple[str, str, Any]] = []
    parents = dict(resource.parent_filters)
    parent_values: list[tuple[str, Any]] = []
    options = ("sort", "fields") if query is not None else ()
    for name, raw in params.items():
        if name in ("limit", "cursor") or name in options or name in extra:
            continue
        spec = resource.field(name)
        if spec is not None and spec.filter:
            filters[spec.column] = _parse_value(spec, raw, query)
        elif name in parents:
            parent_values.append((parents[name], parse_uuid(raw, name)))
        else:
            comparison = _comparison(resource, query, name, raw) if query is not None else None
            if comparison is None:
                allowed = sorted([f.name for f in resource.filters] + list(parents) + ["limit", "cursor", *options])
                raise Invalid(f"unknown query parameter {name[:60]!r}; allowed: {', '.join(allowed)}", field=name[:60])
            ranges.append(comparison)
    sort_text = params.get("sort") if query is not None else None
    order = _sort(resource, query, sort_text) if sort_text is not None else ()
    fields = None
    if query is not None and params.get("fields") is not None:
        if not query.fields:
            raise Invalid("this list does not take fields", field="fields")
        fields = _fields(resource, params["fields"])
    limit = parse_limit(params.get("limit"), max_limit, default_limit)
    request = ListRequest(filters, tuple(parent_values), None, limit, tuple(ranges), order, fields, sort_text)
    cursor = params.get("cursor")
    if cursor:
        request = ListRequest(
            request.filters,
            request.parent_filters,
            _after(resource, request, cursor),
            request.limit,
            request.ranges,
            request.order,
            request.fields,
            request.sort,
        )
    return request


def _after(resource: Resource, request: ListRequest, cursor: str) -> tuple[Any, ...]:
    order = request.order_by(resource)
    if request.sort is None:
        return _cursor_values(resource, order, decode_cursor(cursor, len(order)))
    values = decode_cursor(cursor, len(order) + 1)
    if values[-1] != _sort_tag(request.sort):
        raise Invalid("cursor belongs to another sort order; start again without cursor", field="cursor")
    return _cursor_values(resource, order, values[:-1])


def _sort_tag(sort: str) -> str:
    return f"sort:{sort}"


def cursor_after(resource: Resource, request: ListRequest | None, row: Mapping[str, Any]) -> str:
    """The cursor of the page that continues after `row`."""
    if request is None or request.sort is None:
        columns = [c for c, _ in request.order_by(resource)] if request else list(resource.order)
        return encode_cursor(tuple(row[c] for c in columns))
    return encode_cursor((*(row[c] for c, _ in request.order_by(resource)), _sort_tag(request.sort)))


def wire(resource: Resource, row: Mapping[str, Any], fields: Sequence[str] | None = None) -> dict[str, Any]:
    """A row as the wire shows it: every field, or only `fields` (in that order)."""
    if fields is None:
        return resource.to_wire(dict(row))
    specs = [resource.field(name) for name in fields]
    return {spec.name: encode(row[spec.column]) for spec in specs if spec is not None and spec.column in row}


def page(
    resource: Resource, rows: list[dict[str, Any]], limit: int, request: ListRequest | None = None
) -> dict[str, Any]:
    """The wire page: items plus the cursor of the last item when more rows exist."""
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = cursor_after(resource, request, rows[-1]) if more and rows else None
    fields = request.fields if request else None
    return {"items": [wire(resource, r, fields) for r in rows], "nextCursor": next_cursor}


# ---- CSV pages -----------------------------------------------------------------------------------

# Cells a spreadsheet would run as a formula; text starting with one is prefixed with ' (OWASP).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class CsvPage:
    text: str  # RFC 4180: a header row, CRLF line ends, fields quoted when needed
    rows: int
    next_cursor: str | None


def _cell(spec: Field, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if spec.kind in ("json", "int_array"):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    text = str(encode(value))
    if spec.kind == "text" and text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def csv_page(resource: Resource, rows: list[dict[str, Any]], request: ListRequest, max_bytes: int) -> CsvPage:
    """Rows as CSV, stopping before `max_bytes` (a Lambda answer is at most 6 MB); the cursor then
    continues after the last row written."""
    names = request.fields or tuple(f.name for f in resource.fields)
    specs = [spec for spec in (resource.field(name) for name in names) if spec is not None]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([spec.name for spec in specs])
    written = 0
    cut = False
    for row in rows[: request.limit]:
        before = out.tell()
        writer.writerow([_cell(spec, row.get(spec.column)) for spec in specs])
        if out.tell() > max_bytes and written:  # characters, not bytes: a close enough budget
            out.seek(before)
            out.truncate()
            cut = True
            break
        written += 1
    more = cut or len(rows) > request.limit
    next_cursor = cursor_after(resource, request, rows[written - 1]) if more and written else None
    return CsvPage(out.getvalue(), written, next_cursor)
