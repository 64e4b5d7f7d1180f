"""Generic account-scoped reads of a resource's table, composed safely with psycopg.sql."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.domain.listing import ListRequest
from chalicelib.domain.records import Resource

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

Row = dict[str, Any]


def _columns(resource: Resource) -> sql.Composable:
    from psycopg import sql

    return sql.SQL(", ").join(sql.Identifier(f.column) for f in resource.fields)


def list_rows(conn: psycopg.Connection[Row], resource: Resource, account_id: str, request: ListRequest) -> list[Row]:
    """One page plus one row (to know whether another page exists), in keyset order."""
    from psycopg import sql

    where: list[sql.Composable] = [sql.SQL("account_id = %s")]
    params: list[Any] = [account_id]
    for column, value in request.filters.items():
        where.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
        params.append(value)
    for condition, value in request.parent_filters:
        where.append(sql.SQL(condition))  # constant text from domain.records
        params.append(value)
    order = sql.SQL(", ").join(sql.Identifier(c) for c in resource.order)
    if request.after is not None:
        placeholders = sql.SQL(", ").join(sql.Placeholder() for _ in resource.order)
        where.append(sql.SQL("({}) > ({})").format(order, placeholders))
        params.extend(request.after)
    query = sql.SQL("SELECT {cols} FROM {table} WHERE {where} ORDER BY {order} LIMIT {limit}").format(
        cols=_columns(resource),
        table=sql.Identifier(resource.table),
        where=sql.SQL(" AND ").join(where),
        order=order,
        limit=sql.Literal(request.limit + 1),
    )
    return conn.execute(query, params).fetchall()


def get_row(conn: psycopg.Connection[Row], resource: Resource, account_id: str, row_id: str) -> Row | None:
    from psycopg import sql

    query = sql.SQL("SELECT {cols} FROM {table} WHERE id = %s AND account_id = %s").format(
        cols=_columns(resource), table=sql.Identifier(resource.table)
    )
    return conn.execute(query, (row_id, account_id)).fetchone()
