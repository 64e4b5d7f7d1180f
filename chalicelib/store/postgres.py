"""The PostgreSQL pool (one per container, created lazily) and transactions that speak platform errors."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from chalicelib.config import settings
from chalicelib.errors import Conflict, DependencyDown, Invalid, MigrationsMissing
from chalicelib.store.sql import query

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

Row = dict[str, Any]


_POOL_LOCK = threading.Lock()


def pool() -> ConnectionPool:
    """The container's connection pool; connections are checked before use so a restarted
    PostgreSQL is picked up without restarting the function."""
    # A lock, not just a cache: threaded local gateways would otherwise race to build several pools.
    with _POOL_LOCK:
        return _make_pool()


@functools.cache
def _make_pool() -> ConnectionPool:
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    return ConnectionPool(
        settings().database_url,
        min_size=1,
        max_size=settings().db_pool_max,
        kwargs={"row_factory": dict_row, "connect_timeout": 3},
        check=ConnectionPool.check_connection,
        timeout=3.0,
        open=True,
        name="race",
    )


def close_pool() -> None:
    """Close and forget the pool (tests and shutdown); the next call to `pool()` makes a new one."""
    with _POOL_LOCK:
        if _make_pool.cache_info().currsize:
            _make_pool().close()
            _make_pool.cache_clear()


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn driver errors into platform errors at the adapter boundary."""
    import psycopg
    from psycopg_pool import PoolTimeout

    try:
        yield
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:  # a migration not applied
        raise MigrationsMissing(str(exc).splitlines()[0]) from exc
    except psycopg.errors.UniqueViolation as exc:
        constraint = getattr(exc.diag, "constraint_name", None) or "unique constraint"
        raise Conflict(f"already exists ({constraint})") from exc
    except psycopg.errors.ForeignKeyViolation as exc:
        raise Conflict("a row this refers to was changed or deleted meanwhile; retry") from exc
    except (
        psycopg.errors.CheckViolation,
        psycopg.errors.NumericValueOutOfRange,
        psycopg.errors.StringDataRightTruncation,
    ) as exc:
        raise Invalid(f"value out of range ({getattr(exc.diag, 'constraint_name', None) or 'check'})") from exc
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise DependencyDown("PostgreSQL", _unavailable_message(exc)) from exc


def _unavailable_message(exc: Exception) -> str:
    """What an operator should do, from the driver's connection error.

    The pool only says it timed out; one direct connection attempt (on this failure path only)
    recovers the real reason, e.g. a DNS failure.
    """
    import psycopg
    from psycopg_pool import PoolTimeout

    detail = str(exc)
    if isinstance(exc, PoolTimeout):
        try:
            psycopg.connect(settings().database_url, connect_timeout=2).close()
        except psycopg.OperationalError as direct:
            detail = str(direct)
    if (
        "could not translate host name" in detail
        or "Name or service not known" in detail
        or "nodename nor servname" in detail
        or "failed to resolve host" in detail
    ):
        return (
            "PostgreSQL host name does not resolve (DNS): check the host in DATABASE_URL and the function's network/DNS"
        )
    if "password authentication failed" in detail:
        return "PostgreSQL refused the credentials in DATABASE_URL"
    return "PostgreSQL is unavailable; try again shortly"


@contextmanager
def transaction() -> Iterator[psycopg.Connection[Row]]:
    """A connection in a transaction: committed when the block ends, rolled back on any error."""
    with translated_errors(), pool().connection() as conn:
        yield conn  # type: ignore[misc]  # the pool's connections use dict_row


def fetch_all(conn: psycopg.Connection[Row], name: str, params: dict[str, Any] | None = None) -> list[Row]:
    return conn.execute(query(name), params or {}).fetchall()


def fetch_one(conn: psycopg.Connection[Row], name: str, params: dict[str, Any] | None = None) -> Row | None:
    return conn.execute(query(name), params or {}).fetchone()


def execute(conn: psycopg.Connection[Row], name: str, params: dict[str, Any] | None = None) -> int:
    return conn.execute(query(name), params or {}).rowcount
