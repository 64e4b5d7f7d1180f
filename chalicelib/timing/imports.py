"""Timing imports: accept an Al Kamel lap export for a session, then turn it into laps in the worker.

What the worker does with a file:
- cars are matched by number as text within the session's event; a car the event lacks becomes an
  entry (class and team from the file, isCompetitor) unless the import said onlyKnownCars;
- each car gets its session run sheet when missing;
- each row becomes the car's lap of the same number (`source='timing'`): lap time, sectors, pit
  flags (in-lap = crossed the line in the pit lane; out-lap = lap 1, the lap after an in-lap, or a
  lap carrying PIT_TIME), flag at the line, driver number. A lap already there is updated only when
  the file's values differ, so importing the same file again (or the longer one published as the
  session runs) adds what is new and changes what changed, nothing else;
- validity is left alone: these exports do not mark deleted laps, so every lap stays valid unless
  the team says otherwise; the officials' best lap is recorded instead, in `custom`:
  `officialBest` (true on the one lap per car that `alkamel.official_best` picks),
  `lapImprovement` (the file's LAP_IMPROVEMENT: 2 car's best, 3 overall best), plus `elapsedMs`,
  `hour`, `kph`, `topSpeedKph`, `driverName` and `intermediatesMs` when the file has them;
- malformed rows are reported (line, reason) and the rest imported.

The same route takes the official results export (`03_...Results...CSV`), told from its header
(POSITION, NUMBER, STATUS, LAPS, TOTAL_TIME and no LAP_TIME): `kind` is then `results` and the
file replaces the session's official results (see domain/standings), counted as results created,
updated and unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from chalicelib.domain import changes, listing, reads
from chalicelib.domain.caller import Caller
from chalicelib.domain.records import CARS, RUN_SHEETS, Field, Resource
from chalicelib.domain.validation import Body
from chalicelib.errors import Conflict, DependencyDown, Invalid, NotFound, PlatformError, TooLarge
from chalicelib.resources import TIMING_IMPORT_QUEUE
from chalicelib.store.postgres import execute, fetch_all, fetch_one, transaction
from chalicelib.timing import alkamel, queue, results, staging, uploads

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
HEADER_PEEK_BYTES = 64 * 1024
MAX_REJECTIONS_KEPT = 1000
ROOM_LAP_EVENTS_MAX = 500  # more changed laps than this: one summary push instead (see _record_lap_events)
ROOM_REJECTIONS = 20  # the room hears a few; GET .../timing-imports/{id} has them all
MAX_CLASS_CHARS = 40

Row = dict[str, Any]


def _f(name: str, column: str, kind: str = "text", filter: bool = False) -> Field:
    return Field(name, column, kind, filter)


TIMING_IMPORTS = Resource(
    "timing_import",
    "timing_imports",
    (
        _f("id", "id", "uuid"),
        _f("sessionId", "session_id", "uuid", filter=True),
        _f("status", "status", filter=True),
        _f("kind", "kind", filter=True),
        _f("s3Key", "s3_key"),
        _f("sourceBytes", "source_bytes", "int"),
        _f("onlyKnownCars", "only_known_cars", "bool"),
        _f("rowsRead", "rows_read", "int"),
        _f("lapsCreated", "laps_created", "int"),
        _f("lapsUpdated", "laps_updated", "int"),
        _f("lapsUnchanged", "laps_unchanged", "int"),
        _f("rowsSkipped", "rows_skipped", "int"),
        _f("carsCreated", "cars_created", "int"),
        _f("runSheetsCreated", "run_sheets_created", "int"),
        _f("resultsCreated", "results_created", "int"),
        _f("resultsUpdated", "results_updated", "int"),
        _f("resultsUnchanged", "results_unchanged", "int"),
        _f("carsSkipped", "cars_skipped", "json"),
        _f("rowsRejected", "rows_rejected", "json"),
        _f("rowsRejectedCount", "rows_rejected_count", "int"),
        _f("error", "error"),
        _f("createdAt", "created_at", "time"),
        _f("updatedAt", "updated_at", "time"),
        _f("finishedAt", "finished_at", "time"),
    ),
)


def room_summary(row: Row) -> dict[str, Any]:
    """What the session room hears about an import: its wire form with the first few rejections."""
    wire = TIMING_IMPORTS.to_wire(row)
    wire["rowsRejected"] = wire["rowsRejected"][:ROOM_REJECTIONS]
    return wire


# ---- the HTTP side -------------------------------------------------------------------------------


def _only_known_cars(params: Mapping[str, str]) -> bool:
    unknown = sorted(set(params) - {"onlyKnownCars"})
    if unknown:
        raise Invalid(f"unknown query parameter {unknown[0]!r}; allowed: onlyKnownCars", field=unknown[0])
    value = params.get("onlyKnownCars", "false")
    if value not in ("true", "false"):
        raise Invalid("onlyKnownCars must be true or false", field="onlyKnownCars")
    return value == "true"


def _session(caller: Caller, session_id: str) -> Row:
    with transaction() as conn:
        session = fetch_one(conn, "timing_session", {"session_id": session_id, "account_id": caller.account_id})
    if session is None:
        raise NotFound(f"session {session_id} not found")
    return session


def _too_large(session_id: str) -> TooLarge:
    return TooLarge(
        f"the CSV body is over {MAX_BODY_BYTES // (1024 * 1024)} MB; for a bigger file POST "
        f"/sessions/{session_id}/timing-imports/upload-url, PUT the file to the url it returns, then POST "
        f'{{"s3Key": "<its s3Key>"}} to /sessions/{session_id}/timing-imports'
    )


def export_kind(head: bytes) -> tuple[str, str | None]:
    """`laps` or `results` from the start of a file, and why it is neither (None when it is one)."""
    if results.is_results_header(results.header_names(head)):
        return "results", None
    problem = alkamel.header_problem(head)
    if problem:
        problem += "; or an official results export (03_...Results...CSV: POSITION;NUMBER;STATUS;LAPS;TOTAL_TIME)"
    return "laps", problem


def start(
    caller: Caller, session_id: str, *, csv_body: bytes | None, payload: Any, params: Mapping[str, str]
) -> dict[str, Any]:
    """Accept a file (the CSV body, or `{"s3Key"}` of a presigned upload) and queue its import."""
    caller.require("engineer")
    session_id = listing.parse_uuid(session_id, "id")
    only_known_cars = _only_known_cars(params)
    import_id = str(uuid.uuid4())
    if csv_body is not None:
        if len(csv_body) > MAX_BODY_BYTES:
            raise _too_large(session_id)
        if not csv_body.strip():
            raise Invalid("the CSV body is empty; send an Al Kamel lap export (23_Analysis...CSV)", field="body")
        kind, problem = export_kind(csv_body[:HEADER_PEEK_BYTES])
        if problem:
            raise Invalid(problem, field="body")
        _session(caller, session_id)
        key, size = uploads.import_key(caller.account_id, import_id), len(csv_body)
        uploads.put(key, csv_body)
    else:
        body = Body(payload, allowed={"s3Key"})
        key = uploads.check_key(caller.account_id, body.text("s3Key", max_len=500))
        _session(caller, session_id)
        found = uploads.size_bytes(key)
        if found is None:
            raise NotFound("s3Key not found: PUT the file to the upload url first")
        if found > MAX_UPLOAD_BYTES:
            raise TooLarge(f"the uploaded file is over {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
        kind, problem = export_kind(uploads.first_bytes(key, HEADER_PEEK_BYTES)) if found else ("laps", None)
        problem = problem if found else "the uploaded file is empty"
        if problem:
            raise Invalid(problem, field="s3Key")
        size = found
    with changes.write(caller) as (conn, recorder):
        if fetch_one(conn, "timing_session", {"session_id": session_id, "account_id": caller.account_id}) is None:
            raise NotFound(f"session {session_id} not found")
        row = fetch_one(
            conn,
            "timing_import_insert",
            {
                "id": import_id,
                "account_id": caller.account_id,
                "session_id": session_id,
                "kind": kind,
                "s3_key": key,
                "source_bytes": size,
                "only_known_cars": only_known_cars,
                "requested_role": caller.role,
                "user_id": caller.user_id,
                "api_key_id": caller.api_key_id,
            },
        )
        assert row is not None
        recorder.record("timing_import", "create", room_summary(row), session_id=session_id)
    try:
        queue.enqueue(import_id, caller.account_id)
    except PlatformError as exc:
        _fail(row, f"could not queue the import ({exc.message}); send the file again")
        raise DependencyDown("SQS", "the import queue is unavailable; send the file again shortly") from exc
    return TIMING_IMPORTS.to_wire(row)


def upload_url(caller: Caller, session_id: str) -> dict[str, Any]:
    """A presigned PUT for a file too big for a request body; then POST {"s3Key"} to import it."""
    caller.require("engineer")
    session_id = listing.parse_uuid(session_id, "id")
    _session(caller, session_id)
    key = uploads.upload_key(caller.account_id, session_id)
    return {
        "url": uploads.presigned_put(key),
        "method": "PUT",
        "s3Key": key,
        "expiresIn": uploads.UPLOAD_URL_TTL_S,
        "maxBytes": MAX_UPLOAD_BYTES,
    }


def get(caller: Caller, session_id: str, import_id: str) -> dict[str, Any]:
    session_id = listing.parse_uuid(session_id, "id")
    import_id = listing.parse_uuid(import_id, "importId")
    with transaction() as conn:
        row = fetch_one(conn, "timing_import_get", {"id": import_id, "account_id": caller.account_id})
    if row is None or str(row["session_id"]) != session_id:
        raise NotFound(f"timing import {import_id} not found")
    return TIMING_IMPORTS.to_wire(row)


def list_for_session(caller: Caller, session_id: str, params: Mapping[str, str]) -> dict[str, Any]:
    session_id = listing.parse_uuid(session_id, "id")
    _session(caller, session_id)
    return reads.list_page(caller, TIMING_IMPORTS, {**params, "sessionId": session_id})


# ---- the worker side -----------------------------------------------------------------------------


def _caller_of(row: Row) -> Caller:
    user_id, api_key_id = row["requested_by_user_id"], row["requested_by_api_key_id"]
    return Caller(
        str(row["account_id"]),
        row["requested_role"],
        str(user_id) if user_id else None,
        str(api_key_id) if api_key_id else None,
    )


def _rejections(parsed: alkamel.Parsed | results.ParsedResults | None) -> dict[str, Any]:
    from psycopg.types.json import Jsonb

    rejected = parsed.rejected if parsed else []
    return {
        "rows_read": parsed.rows_read if parsed else 0,
        "rows_rejected": Jsonb([r.to_wire() for r in rejected[:MAX_REJECTIONS_KEPT]]),
        "rows_rejected_count": len(rejected),
    }


def _fail(row: Row, error: str, parsed: alkamel.Parsed | results.ParsedResults | None = None) -> None:
    """Mark a running import failed and tell its session room."""
    with changes.write(_caller_of(row)) as (conn, recorder):
        failed = fetch_one(
            conn,
            "timing_import_fail",
            {"id": row["id"], "account_id": row["account_id"], "error": error[:1000], **_rejections(parsed)},
        )
        if failed is not None:
            recorder.record("timing_import", "update", room_summary(failed), session_id=str(failed["session_id"]))


def run(import_id: str, account_id: str, attempt: int = 1) -> None:
    """Run a queued import once; a message for a finished (or deleted) import does nothing.

    Errors in the file fail the import for good; a dependency that is down raises (the queue
    retries) until the last delivery, which fails the import saying why.
    """
    from chalicelib.observability import logger

    try:
        import_id, account_id = str(uuid.UUID(import_id)), str(uuid.UUID(account_id))
    except ValueError:
        logger().error("timing import message with malformed ids", extra={"import_id": import_id[:100]})
        return
    with transaction() as conn:
        row = fetch_one(conn, "timing_import_attempt", {"id": import_id, "account_id": account_id})
    if row is None:
        return
    parsed: alkamel.Parsed | results.ParsedResults | None = None
    try:
        if row["kind"] == "results":
            parsed = results.parse(uploads.read_chunks(row["s3_key"]))
            apply_results(row, parsed)
        else:
            parsed = alkamel.parse(uploads.read_chunks(row["s3_key"]))
            apply(row, parsed)
    except alkamel.NotAlKamel as exc:
        _fail(row, str(exc), parsed)
    except (DependencyDown, Conflict) as exc:  # down, or a row changed under us: worth another delivery
        if attempt < TIMING_IMPORT_QUEUE.max_receive_count:
            raise
        _fail(row, f"gave up after {attempt} attempts: {exc.message}", parsed)
    except PlatformError as exc:
        _fail(row, exc.message, parsed)
    except Exception:
        logger().exception("timing import failed", extra={"import_id": import_id, "attempt": attempt})
        if attempt < TIMING_IMPORT_QUEUE.max_receive_count:
            raise
        _fail(row, f"gave up after {attempt} attempts: internal error", parsed)


def _custom(lap: alkamel.TimingLap, official_best: bool) -> dict[str, Any]:
    custom: dict[str, Any] = {"officialBest": official_best}
    optional = {
        "lapImprovement": lap.lap_improvement,
        "elapsedMs": lap.elapsed_ms,
        "hour": lap.hour,
        "kph": lap.kph,
        "topSpeedKph": lap.top_speed_kph,
        "driverName": lap.driver_name,
        "intermediatesMs": lap.intermediates_ms or None,
    }
    custom.update((name, value) for name, value in optional.items() if value is not None)
    return custom


def _staged(laps: list[alkamel.TimingLap], car_ids: Mapping[str, Any]) -> Iterator[tuple[Any, ...]]:
    """Rows for staging.upsert_laps (STAGED_COLUMNS order)."""
    pits = alkamel.pit_laps(laps)
    best = {lap.key for lap in alkamel.official_best(laps).values()}
    for lap in laps:
        in_lap, out_lap = pits[lap.key]
        yield (
            car_ids[lap.car_number],
            lap.lap_number,
            lap.lap_time_ms,
            lap.sector_times_ms,
            in_lap,
            out_lap,
            lap.pit_time_ms,
            lap.flag,
            lap.driver_number,
            lap.elapsed_ms,
            _custom(lap, lap.key in best),
        )


def _locked_session(conn: Any, row: Row, ids: dict[str, str]) -> Row | None:
    """Hold the import (None when it finished meanwhile) and its session (one import at a time)."""
    current = fetch_one(conn, "timing_import_lock", {"id": row["id"], "account_id": ids["account_id"]})
    if current is None or current["status"] != "running":
        return None
    execute(conn, "timing_session_lock", ids)
    session = fetch_one(conn, "timing_session", ids)
    if session is None:
        raise NotFound(f"session {ids['session_id']} was deleted")
    return session


def apply(row: Row, parsed: alkamel.Parsed) -> Row | None:
    """Write a parsed file into the import's session in one transaction; returns the finished import."""
    from psycopg.types.json import Jsonb

    caller = _caller_of(row)
    account_id, session_id = caller.account_id, str(row["session_id"])
    ids = {"account_id": account_id, "session_id": session_id}
    with changes.write(caller) as (conn, recorder):
        session = _locked_session(conn, row, ids)
        if session is None:
            return None  # finished meanwhile by another delivery
        event = {"account_id": account_id, "event_id": session["event_id"]}
        car_ids = {car["number"]: car["id"] for car in fetch_all(conn, "timing_event_cars", event)}
        firsts: dict[str, alkamel.TimingLap] = {}
        for lap in parsed.laps:
            firsts.setdefault(lap.car_number, lap)
        unknown = [number for number in firsts if number not in car_ids]
        laps, cars_created, skipped = parsed.laps, 0, []
        if row["only_known_cars"]:
            skipped = unknown
            laps = [lap for lap in parsed.laps if lap.car_number in car_ids]
        elif unknown:
            created = fetch_all(
                conn,
                "timing_create_cars",
                {
                    **event,
                    "numbers": unknown,
                    "classes": [(firsts[n].car_class or "")[:MAX_CLASS_CHARS] or None for n in unknown],
                    "teams": [firsts[n].team for n in unknown],
                },
            )
            for car in created:
                recorder.record("car", "create", CARS.to_wire(car))
            cars_created = len(created)
            car_ids = {car["number"]: car["id"] for car in fetch_all(conn, "timing_event_cars", event)}
        sheets = {sheet["car_id"] for sheet in fetch_all(conn, "timing_session_run_sheets", ids)}
        missing = sorted({car_ids[lap.car_number] for lap in laps} - sheets, key=str)
        created_sheets = fetch_all(conn, "timing_create_run_sheets", {**ids, "car_ids": missing}) if missing else []
        for sheet in created_sheets:
            recorder.record("run_sheet", "create", RUN_SHEETS.to_wire(sheet), session_id=session_id)
        written = staging.upsert_laps(
            conn, _staged(laps, car_ids), account_id=account_id, session_id=session_id, starts_at=session["starts_at"]
        )
        pushed = _record_lap_events(recorder, written, session_id)
        laps_created = sum(1 for lap_row in written if lap_row["created"])
        finished = fetch_one(
            conn,
            "timing_import_finish",
            {
                "id": row["id"],
                "account_id": account_id,
                **_rejections(parsed),
                "laps_created": laps_created,
                "laps_updated": len(written) - laps_created,
                "laps_unchanged": len(laps) - len(written),
                "rows_skipped": len(parsed.laps) - len(laps),
                "cars_created": cars_created,
                "run_sheets_created": len(created_sheets),
                "cars_skipped": Jsonb(skipped),
            },
        )
        assert finished is not None
        recorder.record(
            "timing_import", "update", {**room_summary(finished), "lapEventsPushed": pushed}, session_id=session_id
        )
    return finished


def _record_lap_events(recorder: changes.Recorder, written: list[dict[str, Any]], session_id: str) -> bool:
    """Record a lap.create/lap.update per written lap (two statements, however many); returns whether
    the room hears them one by one.

    A live re-import adds a few laps and the room hears each, like any other write. A whole race
    at once (Le Mans: 15,593 laps) would be thousands of pushes per member, minutes of work for the
    worker and a flood for the clients: those events are recorded as published (webhooks still get
    each), and the room hears the one `timing_import.update` (lapEventsPushed=false) telling clients
    to reload.
    """
    pushed = len(written) <= ROOM_LAP_EVENTS_MAX
    for op, created in (("create", True), ("update", False)):
        recorder.record_many(
            "lap",
            op,
            [(_lap_wire(row["wire"]), session_id) for row in written if bool(row["created"]) == created],
            push=pushed,
        )
    return pushed


def _lap_wire(wire: dict[str, Any]) -> dict[str, Any]:
    """The upsert's rendering of a lap (see timing_upsert_laps) as LAPS.to_wire gives it: fuelL a float."""
    if wire["fuelL"] is not None:
        wire["fuelL"] = float(wire["fuelL"])  # JSON reads a numeric 45.00 as the int 45
    return wire


def apply_results(row: Row, parsed: results.ParsedResults) -> Row | None:
    """Replace the session's official results with a parsed results file; returns the finished import."""
    caller = _caller_of(row)
    account_id, session_id = caller.account_id, str(row["session_id"])
    ids = {"account_id": account_id, "session_id": session_id}
    rows = parsed.rows
    with changes.write(caller) as (conn, recorder):
        if _locked_session(conn, row, ids) is None:
            return None
        numbers = [r.car_number for r in rows]
        written = fetch_all(
            conn,
            "results_upsert",
            {
                **ids,
                "import_id": row["id"],
                "car_numbers": numbers,
                "positions": [r.position for r in rows],
                "statuses": [r.status for r in rows],
                "laps": [r.laps for r in rows],
                "total_times_ms": [r.total_time_ms for r in rows],
                "gaps_first": [r.gap_first for r in rows],
                "gaps_previous": [r.gap_previous for r in rows],
                "best_lap_numbers": [r.best_lap_number for r in rows],
                "best_laps_ms": [r.best_lap_ms for r in rows],
                "classes": [r.car_class for r in rows],
                "teams": [r.team for r in rows],
                "lines": [r.line for r in rows],
            },
        )
        removed = execute(conn, "results_delete_missing", {**ids, "car_numbers": numbers})
        created = sum(1 for written_row in written if written_row["created"])
        finished = fetch_one(
            conn,
            "timing_import_finish_results",
            {
                "id": row["id"],
                "account_id": account_id,
                **_rejections(parsed),
                "results_created": created,
                "results_updated": len(written) - created + removed,
                "results_unchanged": len(rows) - len(written),
            },
        )
        assert finished is not None
        recorder.record("timing_import", "update", room_summary(finished), session_id=session_id)
    return finished
