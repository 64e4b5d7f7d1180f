"""Generic account-scoped insert, update and delete of a resource's rows (psycopg.sql composition)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.domain.records import Resource
from chalicelib.store.postgres import translated_errors

if TYPE_CHECKING:
    import psycopg

Row = dict[str, Any]


def _adapt(resource: Resource, values: dict[str, Any]) -> dict[str, Any]:
    from psycopg.types.json import Jsonb

    kinds = {f.column: f.kind for f in resource.fields}
    return {c: Jsonb(v) if kinds.get(c) == "json" else v for c, v in values.items()}


def _returning(resource: Resource) -> Any:
    from psycopg import sql

    return sql.SQL(", ").join(sql.Identifier(f.column) for f in resource.fields)


def insert(conn: psycopg.Connection[Row], resource: Resource, account_id: str, values: dict[str, Any]) -> Row:
    from psycopg import sql

    columns = {"account_id": account_id, **_adapt(resource, values)}
    query = sql.SQL("INSERT INTO {table} ({cols}) VALUES ({vals}) RETURNING {ret}").format(
        table=sql.Identifier(resource.table),
        cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
        vals=sql.SQL(", ").join(sql.Placeholder() for _ in columns),
        ret=_returning(resource),
    )
    with translated_errors():
        row = conn.execute(query, list(columns.values())).fetchone()
    assert row is not None
    return row


def update(
    conn: psycopg.Connection[Row], resource: Resource, account_id: str, row_id: str, values: dict[str, Any]
) -> Row | None:
    from psycopg import sql

    adapted = _adapt(resource, values)
    assignments: list[sql.Composable] = [sql.SQL("{} = %s").format(sql.Identifier(c)) for c in adapted]
    assignments.append(sql.SQL("updated_at = now()"))
    query = sql.SQL("UPDATE {table} SET {sets} WHERE id = %s AND account_id = %s RETURNING {ret}").format(
        table=sql.Identifier(resource.table), sets=sql.SQL(", ").join(assignments), ret=_returning(resource)
    )
    with translated_errors():
        return conn.execute(query, [*adapted.values(), row_id, account_id]).fetchone()


def lock(conn: psycopg.Connection[Row], resource: Resource, account_id: str, row_id: str) -> Row | None:
    """The row, locked for the rest of the transaction (so a concurrent delete or update waits)."""
    from psycopg import sql

    query = sql.SQL("SELECT {ret} FROM {table} WHERE id = %s AND account_id = %s FOR UPDATE").format(
        table=sql.Identifier(resource.table), ret=_returning(resource)
    )
    return conn.execute(query, [row_id, account_id]).fetchone()


def count_where(conn: psycopg.Connection[Row], table: str, column: str, ids: list[str], account_id: str) -> int:
    from psycopg import sql

    query = sql.SQL("SELECT count(*) AS n FROM {t} WHERE {c} = ANY(%s) AND account_id = %s").format(
        t=sql.Identifier(table), c=sql.Identifier(column)
    )
    row = conn.execute(query, [ids, account_id]).fetchone()
    return int(row["n"]) if row else 0


def delete_where(conn: psycopg.Connection[Row], table: str, column: str, ids: list[str], account_id: str) -> list[str]:
    from psycopg import sql

    query = sql.SQL("DELETE FROM {t} WHERE {c} = ANY(%s) AND account_id = %s RETURNING id").format(
        t=sql.Identifier(table), c=sql.Identifier(column)
    )
    return [str(r["id"]) for r in conn.execute(query, [ids, account_id]).fetchall()]


def detach_where(conn: psycopg.Connection[Row], table: str, column: str, ids: list[str], account_id: str) -> int:
    from psycopg import sql

    query = sql.SQL("UPDATE {t} SET {c} = NULL WHERE {c} = ANY(%s) AND account_id = %s").format(
        t=sql.Identifier(table), c=sql.Identifier(column)
    )
    return conn.execute(query, [ids, account_id]).rowcount
