"""Create, update and delete for account-scoped resources, each write recording its domain event.

A resource's `Editable` says which wire fields a client may send, how to read them, which parents
they point at (checked to belong to the caller's account), which children block a delete unless
the client asks for a cascade, and which session room hears about the change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.domain import changes, listing
from chalicelib.domain.caller import Caller
from chalicelib.domain.records import Resource
from chalicelib.domain.validation import Body
from chalicelib.errors import Conflict, Invalid, NotFound
from chalicelib.store import records, writes

Row = dict[str, Any]


@dataclass(frozen=True)
class Parent:
    """A wire field holding the id of a row the new row belongs to."""

    field: str
    resource: Resource
    required: bool = True


@dataclass(frozen=True)
class Child:
    """Rows of `table` whose `column` points at this resource: deleted with it, or detached (NULLed)."""

    label: str
    table: str
    column: str
    detach: bool = False
    collect: str | None = None  # a column of deleted rows to hand back (e.g. S3 keys to remove after commit)


@dataclass(frozen=True)
class Editable:
    resource: Resource
    read: Callable[[Body, bool], dict[str, Any]]  # (body, creating) -> wire field -> value
    allowed: frozenset[str]
    create_only: frozenset[str] = frozenset()
    parents: tuple[Parent, ...] = ()
    role: str = "engineer"
    check: Callable[[Any, Row, str], None] | None = None  # (conn, row-to-be, account) -> raise Invalid
    session_of: Callable[[Any, Row], str | None] | None = None
    conflict: Callable[[Row], str] | None = None  # message for a unique violation
    clearable: frozenset[str] = frozenset()  # fields a PATCH may set to null (their columns are nullable)
    stamp: Callable[[Caller], dict[str, Any]] | None = None  # columns the server sets on create (never the client)

    @property
    def entity(self) -> str:
        return self.resource.name


Tree = Mapping[str, tuple[Child, ...]]  # table -> what points at its rows


def _columns(resource: Resource, wire: Mapping[str, Any]) -> dict[str, Any]:
    columns = {}
    for name, value in wire.items():
        spec = resource.field(name)
        assert spec is not None, name
        columns[spec.column] = value
    return columns


def _check_parents(conn: Any, editable: Editable, wire: Mapping[str, Any], account_id: str) -> None:
    for parent in editable.parents:
        value = wire.get(parent.field)
        if value is None:
            continue
        if records.get_row(conn, parent.resource, account_id, value) is None:
            # Another account's parent looks exactly like a missing one.
            raise NotFound(f"{parent.field} {value}: no such {parent.resource.name.replace('_', ' ')}")


def _session_of(editable: Editable, conn: Any, row: Row) -> str | None:
    if editable.session_of is not None:
        return editable.session_of(conn, row)
    value = row.get("session_id")
    return str(value) if value else None


def create(caller: Caller, editable: Editable, payload: Any) -> dict[str, Any]:
    caller.require(editable.role)
    body = Body(payload, allowed=editable.allowed)
    # null on create means "not sent": the column's default (a NOT NULL column would refuse it with a 500)
    wire = {name: value for name, value in editable.read(body, True).items() if value is not None}
    columns = _columns(editable.resource, wire)
    if editable.stamp:
        columns.update(editable.stamp(caller))
    with changes.write(caller) as (conn, recorder):
        _check_parents(conn, editable, wire, caller.account_id)
        if editable.check:
            editable.check(conn, columns, caller.account_id)
        row = _guarded(editable, columns, lambda: writes.insert(conn, editable.resource, caller.account_id, columns))
        assert row is not None
        data = editable.resource.to_wire(row)
        recorder.record(editable.entity, "create", data, session_id=_session_of(editable, conn, row))
    return data


def update(caller: Caller, editable: Editable, row_id: str, payload: Any) -> dict[str, Any]:
    caller.require(editable.role)
    row_id = listing.parse_uuid(row_id, "id")
    body = Body(payload, allowed=editable.allowed)
    for name in editable.create_only & set(body.payload):
        body.fail(f"{name} cannot be changed; create a new {editable.entity.replace('_', ' ')} instead", name)
    wire = editable.read(body, False)
    if not wire:
        raise Invalid("nothing to update: send at least one field", field="body")
    for name, value in wire.items():
        if value is None and name not in editable.clearable:
            body.fail(f"{name} must not be null", name)
    columns = _columns(editable.resource, wire)
    with changes.write(caller) as (conn, recorder):
        current = writes.lock(conn, editable.resource, caller.account_id, row_id)
        if current is None:
            raise NotFound(f"{editable.entity.replace('_', ' ')} {row_id} not found")
        _check_parents(conn, editable, wire, caller.account_id)
        if editable.check:
            editable.check(conn, {**current, **columns}, caller.account_id)
        row = _guarded(
            editable,
            {**current, **columns},
            lambda: writes.update(conn, editable.resource, caller.account_id, row_id, columns),
        )
        assert row is not None
        data = editable.resource.to_wire(row)
        recorder.record(editable.entity, "update", data, session_id=_session_of(editable, conn, row))
    return data


def delete(
    caller: Caller,
    editable: Editable,
    row_id: str,
    cascade: bool,
    tree: Tree,
    after_commit: Callable[[dict[str, list[Any]]], None] | None = None,
) -> dict[str, Any]:
    """Delete a row (and with `cascade` everything under it); `after_commit` gets the collected values."""
    caller.require(editable.role)
    collected: dict[str, list[Any]] = {}
    row_id = listing.parse_uuid(row_id, "id")
    with changes.write(caller) as (conn, recorder):
        current = writes.lock(conn, editable.resource, caller.account_id, row_id)
        if current is None:
            raise NotFound(f"{editable.entity.replace('_', ' ')} {row_id} not found")
        blocking = _blocking_children(conn, tree, editable.resource.table, row_id, caller.account_id)
        if blocking and not cascade:
            listed = ", ".join(f"{n} {label}" for label, n in blocking.items())
            raise Conflict(
                f"{editable.entity.replace('_', ' ')} still has {listed}; "
                "delete them first or send ?cascade=true to delete them too"
            )
        removed = _delete_tree(conn, tree, editable.resource.table, [row_id], caller.account_id, collected)
        data = {"id": row_id, "deleted": {k: v for k, v in removed.items() if v}}
        recorder.record(
            editable.entity,
            "delete",
            {**editable.resource.to_wire(current), **data},
            session_id=_session_of(editable, conn, current),
        )
    if after_commit and collected:
        after_commit(collected)
    return data


def _blocking_children(conn: Any, tree: Tree, table: str, row_id: str, account_id: str) -> dict[str, int]:
    found = {}
    for child in tree.get(table, ()):
        if not child.detach:
            n = writes.count_where(conn, child.table, child.column, [row_id], account_id)
            if n:
                found[child.label] = n
    return found


def _delete_tree(
    conn: Any, tree: Tree, table: str, ids: list[str], account_id: str, collected: dict[str, list[Any]]
) -> dict[str, int]:
    """Delete rows and, depth first, everything that points at them; returns counts per table."""
    removed: dict[str, int] = {}
    for child in tree.get(table, ()):
        if child.detach:
            writes.detach_where(conn, child.table, child.column, ids, account_id)
            continue
        rows = _ids_where(conn, child.table, child.column, ids, account_id, child.collect)
        if child.collect:
            collected.setdefault(child.table, []).extend(r[child.collect] for r in rows)
        child_ids = [str(r["id"]) for r in rows]
        if child_ids:
            for name, n in _delete_tree(conn, tree, child.table, child_ids, account_id, collected).items():
                removed[name] = removed.get(name, 0) + n
    deleted = writes.delete_where(conn, table, "id", ids, account_id)
    removed[table] = removed.get(table, 0) + len(deleted)
    return removed


def _ids_where(
    conn: Any, table: str, column: str, ids: list[str], account_id: str, also: str | None = None
) -> list[Row]:
    from psycopg import sql

    columns = [sql.Identifier("id")] + ([sql.Identifier(also)] if also else [])
    query = sql.SQL("SELECT {cols} FROM {t} WHERE {c} = ANY(%s) AND account_id = %s").format(
        cols=sql.SQL(", ").join(columns), t=sql.Identifier(table), c=sql.Identifier(column)
    )
    return list(conn.execute(query, [ids, account_id]).fetchall())


def _guarded(editable: Editable, row: Row, write: Callable[[], Row | None]) -> Row | None:
    try:
        return write()
    except Conflict as exc:
        if editable.conflict is None:
            raise
        raise Conflict(editable.conflict(row)) from exc
