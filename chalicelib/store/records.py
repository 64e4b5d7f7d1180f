"""Generic account-scoped reads of a resource's table, composed safely with psycopg.sql."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.domain.listing import OPERATORS, ListRequest
from chalicelib.domain.records import Resource

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

Row = dict[str, Any]


def _columns(resource: Resource, request: ListRequest | None = None) -> sql.Composable:
    from psycopg import sql

    names = [f.column for f in resource.fields]
    if request is not None and request.fields is not None:
        # The fields asked for, plus the sort keys the next cursor is made of.
        wanted = {spec.column for spec in map(resource.field, request.fields) if spec is not None}
        wanted |= {column for column, _ in request.order_by(resource)}
        names = [name for name in names if name in wanted]
    return sql.SQL(", ").join(sql.Identifier(name) for name in names)


def _after(order: tuple[tuple[str, bool], ...], values: tuple[Any, ...]) -> tuple[sql.Composable, list[Any]]:
    """The keyset condition "comes after `values` in `order`"."""
    from psycopg import sql

    columns = [sql.Identifier(column) for column, _ in order]
    if len({descending for _, descending in order}) == 1:  # one direction: a row comparison (uses the index)
        operator = sql.SQL("<" if order[0][1] else ">")
        return sql.SQL("({}) {} ({})").format(
            sql.SQL(", ").join(columns), operator, sql.SQL(", ").join(sql.Placeholder() for _ in columns)
        ), list(values)
    # Mixed directions: (a > x) OR (a = x AND b < y) OR (a = x AND b = y AND c > z) ...
    branches: list[sql.Composable] = []
    params: list[Any] = []
    for i, (_, descending) in enumerate(order):
        terms = [sql.SQL("{} = %s").format(columns[j]) for j in range(i)]
        terms.append(sql.SQL("{} {} %s").format(columns[i], sql.SQL("<" if descending else ">")))
        branches.append(sql.SQL("({})").format(sql.SQL(" AND ").join(terms)))
        params.extend(values[: i + 1])
    return sql.SQL("({})").format(sql.SQL(" OR ").join(branches)), params


def list_rows(conn: psycopg.Connection[Row], resource: Resource, account_id: str, request: ListRequest) -> list[Row]:
    """One page plus one row (to know whether another page exists), in keyset order."""
    from psycopg import sql

    where: list[sql.Composable] = [sql.SQL("account_id = %s")]
    params: list[Any] = [account_id]
    for column, value in request.filters.items():
        where.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
        params.append(value)
    for column, operator, value in request.ranges:
        assert operator in OPERATORS, operator  # validated by listing.parse; never text from the client
        where.append(sql.SQL("{} {} %s").format(sql.Identifier(column), sql.SQL(operator)))
        params.append(value)
    for condition, value in request.parent_filters:
        where.append(sql.SQL(condition))  # constant text from domain.records
        params.append(value)
    order = request.order_by(resource)
    if request.after is not None:
        keyset, values = _after(order, request.after)
        where.append(keyset)
        params.extend(values)
    query = sql.SQL("SELECT {cols} FROM {table} WHERE {where} ORDER BY {order} LIMIT {limit}").format(
        cols=_columns(resource, request),
        table=sql.Identifier(resource.table),
        where=sql.SQL(" AND ").join(where),
        order=sql.SQL(", ").join(
            sql.SQL("{} DESC").format(sql.Identifier(c)) if descending else sql.Identifier(c) for c, descending in order
        ),
        limit=sql.Literal(request.limit + 1),
    )
    return conn.execute(query, params).fetchall()


def get_row(conn: psycopg.Connection[Row], resource: Resource, account_id: str, row_id: str) -> Row | None:
    from psycopg import sql

    query = sql.SQL("SELECT {cols} FROM {table} WHERE id = %s AND account_id = %s").format(
        cols=_columns(resource), table=sql.Identifier(resource.table)
    )
    return conn.execute(query, (row_id, account_id)).fetchone()
