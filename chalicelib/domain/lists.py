"""Account-scoped lists that take comparisons, sort and field selection, as JSON pages or CSV.

A resource opts in with a `listing.Queryable` (what may be compared and sorted); the CSV form is
for spreadsheets and scripts: up to CSV_MAX_ROWS rows per answer, cut before CSV_MAX_BYTES (a
Lambda answer is at most 6 MB; API Gateway cannot stream), the next page's cursor in a header.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.domain import listing
from chalicelib.domain.caller import Caller
from chalicelib.domain.race_data import SESSION_TYPES
from chalicelib.domain.records import Resource
from chalicelib.store import records
from chalicelib.store.postgres import transaction

CSV_MAX_ROWS = 50_000
CSV_MAX_BYTES = 5 * 1024 * 1024
FORMAT = "format"

SESSION_QUERY = listing.Queryable(
    ranges=("startsAt", "endsAt", "createdAt", "updatedAt"),
    sorts=("name", "createdAt", "updatedAt"),
    choices={"type": SESSION_TYPES},
)


def _rows(caller: Caller, resource: Resource, request: listing.ListRequest) -> list[dict[str, Any]]:
    with transaction() as conn:
        return records.list_rows(conn, resource, caller.account_id, request)


def json_page(
    caller: Caller, resource: Resource, params: Mapping[str, str], query: listing.Queryable
) -> dict[str, Any]:
    """`{"items", "nextCursor"}` (limit up to 500)."""
    request = listing.parse(resource, params, frozenset({FORMAT}), query)
    return listing.page(resource, _rows(caller, resource, request), request.limit, request)


def csv_page(
    caller: Caller, resource: Resource, params: Mapping[str, str], query: listing.Queryable
) -> listing.CsvPage:
    """The rows as CSV: limit defaults to (and may be up to) CSV_MAX_ROWS."""
    request = listing.parse(
        resource, params, frozenset({FORMAT}), query, max_limit=CSV_MAX_ROWS, default_limit=CSV_MAX_ROWS
    )
    return listing.csv_page(resource, _rows(caller, resource, request), request, CSV_MAX_BYTES)
