"""PostgreSQL side of a timing import: laps staged with COPY, then one upsert into `laps`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from chalicelib.store.postgres import execute, fetch_all

if TYPE_CHECKING:
    import psycopg

Row = dict[str, Any]

STAGED_COLUMNS = ("car_id", "lap_number", "lap_time_ms", "sector_times_ms", "is_in_lap", "is_out_lap",
                  "pit_time_ms", "flag", "driver_number", "elapsed_ms", "custom")


def upsert_laps(conn: psycopg.Connection[Row], staged: Iterable[tuple[Any, ...]], *, account_id: str,
                session_id: str, starts_at: Any) -> list[Row]:
    """Stage rows (in STAGED_COLUMNS order) with COPY, then insert/update the session's laps.

    Returns the laps inserted or changed, each with `created` (True for an insert); laps whose
    values are unchanged are not returned.
    """
    from psycopg.types.json import Jsonb

    execute(conn, "timing_staging_table")
    with conn.cursor().copy(f"COPY timing_lap_rows ({', '.join(STAGED_COLUMNS)}) FROM STDIN") as copy:
        for row in staged:
            copy.write_row((*row[:-1], Jsonb(row[-1])))
    rows = fetch_all(conn, "timing_upsert_laps",
                     {"account_id": account_id, "session_id": session_id, "starts_at": starts_at})
    conn.execute("DROP TABLE timing_lap_rows")  # a second import in the same transaction starts clean
    return rows

