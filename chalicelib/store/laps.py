"""PostgreSQL side of laps: the run sheets and drivers a batch refers to, the batch itself (COPY),
and what run-sheet statistics read."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from chalicelib.errors import Conflict
from chalicelib.store.postgres import fetch_all, fetch_one

if TYPE_CHECKING:
    import psycopg

Row = dict[str, Any]

COPIED_COLUMNS = (
    "id",
    "account_id",
    "run_sheet_id",
    "session_id",
    "car_id",
    "lap_number",
    "lap_time_ms",
    "sector_times_ms",
    "is_in_lap",
    "is_out_lap",
    "is_valid",
    "pit_time_ms",
    "flag",
    "driver_id",
    "driver_number",
    "stint",
    "fuel_l",
    "tyre_set",
    "recorded_at",
    "custom",
    "source",
    "created_at",
    "updated_at",
)
_SECTORS = COPIED_COLUMNS.index("sector_times_ms")
_CUSTOM = COPIED_COLUMNS.index("custom")
INSERT_MAX_ROWS = 10  # up to this many laps go in as INSERTs (one round trip), more as a COPY (two, faster per row)
_INSERT_LAP = f"INSERT INTO laps ({', '.join(COPIED_COLUMNS)}) VALUES ({', '.join(['%s'] * len(COPIED_COLUMNS))})"
# PostgreSQL's detail of a unique violation on laps (run_sheet_id, lap_number).
_TAKEN = re.compile(r"\(run_sheet_id, lap_number\)=\(([0-9a-f-]{36}), (\d+)\)")


def run_sheets(conn: psycopg.Connection[Row], account_id: str, ids: Sequence[str]) -> dict[str, Row]:
    """The caller's run sheets among `ids` (by id, with session and car ids as text), each with the
    transaction's `now`."""
    rows = fetch_all(conn, "lap_run_sheets", {"ids": list(ids), "account_id": account_id})
    return {str(row["id"]): {**row, "session_id": str(row["session_id"]), "car_id": str(row["car_id"])} for row in rows}


def driver_numbers(conn: psycopg.Connection[Row], account_id: str, ids: Sequence[str]) -> dict[str, str | None]:
    """The caller's drivers among `ids`: id -> their number."""
    rows = fetch_all(conn, "lap_driver_numbers", {"ids": list(ids), "account_id": account_id})
    return {str(row["id"]): row["number"] for row in rows}


def insert_laps(conn: psycopg.Connection[Row], rows: Sequence[Row]) -> None:
    """COPY new laps into `laps` (rows hold every COPIED_COLUMNS key).

    Rows go in (run sheet, lap number) order, so two batches writing the same run sheet take their
    unique-index locks in the same order: the later one waits, then 409s, and never deadlocks.
    A lap number already stored (or committed meanwhile) is a Conflict naming it; sent in a pipeline
    (`changes.Recorder.record_many(along=...)`), it is raised where the pipeline ends.
    """
    from psycopg.pq import PipelineStatus
    from psycopg.types.json import Jsonb

    ordered = sorted(rows, key=lambda row: (row["run_sheet_id"], row["lap_number"]))
    with taken_lap_numbers_refused():
        if len(ordered) == 1 or (len(ordered) <= INSERT_MAX_ROWS and conn.pgconn.pipeline_status != PipelineStatus.OFF):
            # In the caller's pipeline each INSERT is only queued (executemany would sync a pipeline of
            # its own, and a refusal raised inside the caller's makes psycopg warn as it ends it).
            for row in ordered:
                conn.execute(_INSERT_LAP, _inserted(row, Jsonb))
            return
        if len(ordered) <= INSERT_MAX_ROWS:
            # A few laps (a single lap is the common write): one pipelined INSERT per lap is one round
            # trip, where a COPY is two (start, then data and end).
            conn.cursor().executemany(_INSERT_LAP, [_inserted(row, Jsonb) for row in ordered])
            return
        with conn.cursor().copy(f"COPY laps ({', '.join(COPIED_COLUMNS)}) FROM STDIN") as copy:
            for row in ordered:
                values = [row[c] for c in COPIED_COLUMNS]
                values[_SECTORS] = "{" + ",".join(map(str, values[_SECTORS])) + "}"  # validated ints, as text
                values[_CUSTOM] = Jsonb(values[_CUSTOM])
                copy.write_row(values)


@contextmanager
def taken_lap_numbers_refused() -> Iterator[None]:
    """A lap number already stored (or committed meanwhile) as a Conflict naming it. Around
    `insert_laps`, and around whatever reads its result when it was sent in a pipeline."""
    import psycopg

    try:
        yield
    except psycopg.errors.UniqueViolation as exc:
        if getattr(exc.diag, "table_name", None) != "laps":
            raise
        found = _TAKEN.search(getattr(exc.diag, "message_detail", None) or "")
        if found is None:
            raise Conflict("one of these laps already exists") from exc
        raise Conflict(f"lap {found.group(2)} of run sheet {found.group(1)} already exists") from exc
    except psycopg.errors.DeadlockDetected as exc:  # belt and braces: the order above prevents it
        raise Conflict("another write to the same laps ran at the same time; retry") from exc


def _inserted(row: Row, jsonb: Any) -> list[Any]:
    values = [row[c] for c in COPIED_COLUMNS]
    values[_CUSTOM] = jsonb(values[_CUSTOM])
    return values


def stats_run_sheet(conn: psycopg.Connection[Row], account_id: str, run_sheet_id: str) -> Row | None:
    return fetch_one(conn, "lap_stats_run_sheet", {"run_sheet_id": run_sheet_id, "account_id": account_id})


def stats_laps(conn: psycopg.Connection[Row], account_id: str, run_sheet_id: str) -> list[Row]:
    return fetch_all(conn, "lap_stats_laps", {"run_sheet_id": run_sheet_id, "account_id": account_id})
