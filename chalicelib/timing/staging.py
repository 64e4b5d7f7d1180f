"""PostgreSQL side of a timing import: laps staged with COPY, then one upsert into `laps`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from chalicelib.store.postgres import execute, fetch_all

if TYPE_CHECKING:
    import psycopg

Row = dict[str, Any]

STAGED_COLUMNS = (
    "car_id",
    "lap_number",
    "lap_time_ms",
    "sector_times_ms",
    "is_in_lap",
    "is_out_lap",
    "pit_time_ms",
    "flag",
    "driver_number",
    "elapsed_ms",
    "custom",
)


def upsert_laps(
    conn: psycopg.Connection[Row],
    staged: Iterable[tuple[Any, ...]],
    *,
    account_id: str,
    session_id: str,
    starts_at: Any,
) -> list[Row]:
    """Stage rows (in STAGED_COLUMNS order) with COPY, then insert/update the session's laps.

    Returns the laps inserted or changed, each as `created` (True for an insert) and `wire` (the lap
    rendered by the query, see timing_upsert_laps); laps whose values are unchanged are not returned.
    """
    execute(conn, "timing_staging_table")
    with conn.cursor().copy(f"COPY timing_lap_rows ({', '.join(STAGED_COLUMNS)}) FROM STDIN") as copy:
        for row in staged:
            # custom as JSON text: the COPY parses it into the same jsonb, a third cheaper than Jsonb().
            copy.write_row((*row[:-1], json.dumps(row[-1])))
    rows = fetch_all(
        conn, "timing_upsert_laps", {"account_id": account_id, "session_id": session_id, "starts_at": starts_at}
    )
    conn.execute("DROP TABLE timing_lap_rows")  # a second import in the same transaction starts clean
    return rows
