"""Lists with ?format=csv: the same list as JSON, or a CSV file a spreadsheet opens.

`register_reads` is `routing.register_reads` for resources whose lists also take comparisons,
sort and fields (laps, sessions). The CSV answer is RFC 4180 (header row, CRLF, quoted fields),
`text/csv; charset=utf-8`, as an attachment; when rows remain, `X-Next-Cursor` holds the cursor
of the next page (pass it as ?cursor=).
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response

from chalicelib.api.routing import caller, query_params, route
from chalicelib.domain import lists, reads
from chalicelib.domain.listing import CsvPage, Queryable
from chalicelib.domain.records import Resource
from chalicelib.errors import Invalid


def csv_response(page: CsvPage, filename: str) -> Response:
    headers: dict[str, str | list[str]] = {
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Row-Count": str(page.rows),
    }
    if page.next_cursor:
        headers["X-Next-Cursor"] = page.next_cursor
    return Response(body=page.text, status_code=200, headers=headers)


def list_answer(bp: Blueprint, resource: Resource, query: Queryable) -> Any:
    """GET list: JSON by default, CSV with ?format=csv."""
    params = query_params(bp)
    wanted = params.get(lists.FORMAT, "json")
    if wanted == "json":
        return lists.json_page(caller(), resource, params, query)
    if wanted == "csv":
        return csv_response(lists.csv_page(caller(), resource, params, query), f"{resource.table}.csv")
    raise Invalid("format must be json or csv", field=lists.FORMAT)


def register_reads(bp: Blueprint, path: str, resource: Resource, query: Queryable) -> None:
    """GET {path} (JSON or CSV: filters, comparisons, sort, fields, cursor) and GET {path}/{id}."""

    @route(bp, path)
    def list_resource() -> Any:
        return list_answer(bp, resource, query)

    label = resource.name.replace("_", " ")
    list_resource.__doc__ = (
        f"List {label}s of your account (filters and comparisons such as {query.ranges[0]}>=..., "
        "sort, fields, cursor pagination; ?format=csv for a spreadsheet)"
    )
    list_resource.race_resource = resource  # type: ignore[attr-defined]  # read by the OpenAPI generator
    list_resource.race_list = True  # type: ignore[attr-defined]

    @route(bp, path + "/{id}")
    def get_resource(id: str) -> Any:
        return reads.get_one(caller(), resource, id)

    get_resource.__doc__ = f"One {label} by id"
    get_resource.race_resource = resource  # type: ignore[attr-defined]
