"""Account-scoped reads of any resource: one page of a list, or one row by id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.domain import listing
from chalicelib.domain.caller import Caller
from chalicelib.domain.records import Resource
from chalicelib.errors import NotFound
from chalicelib.store import records
from chalicelib.store.postgres import transaction


def list_page(caller: Caller, resource: Resource, params: Mapping[str, str]) -> dict[str, Any]:
    request = listing.parse(resource, params)
    with transaction() as conn:
        rows = records.list_rows(conn, resource, caller.account_id, request)
    return listing.page(resource, rows, request.limit)


def get_one(caller: Caller, resource: Resource, row_id: str) -> dict[str, Any]:
    row_id = listing.parse_uuid(row_id, "id")
    with transaction() as conn:
        row = records.get_row(conn, resource, caller.account_id, row_id)
    if row is None:
        # Another account's row answers exactly like a missing one.
        raise NotFound(f"{resource.name.replace('_', ' ')} {row_id} not found")
    return resource.to_wire(row)
