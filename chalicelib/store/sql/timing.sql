-- name: timing_session
-- The session a timing import writes to, with its event (cars are entries of the event).
SELECT id, event_id, starts_at FROM sessions WHERE id = %(session_id)s AND account_id = %(account_id)s;

-- name: timing_import_insert
INSERT INTO timing_imports (id, account_id, session_id, kind, s3_key, source_bytes, only_known_cars, requested_role,
                            requested_by_user_id, requested_by_api_key_id)
VALUES (%(id)s, %(account_id)s, %(session_id)s, %(kind)s, %(s3_key)s, %(source_bytes)s, %(only_known_cars)s,
        %(requested_role)s, %(user_id)s, %(api_key_id)s)
RETURNING *;

-- name: timing_import_get
SELECT * FROM timing_imports WHERE id = %(id)s AND account_id = %(account_id)s;

-- name: timing_import_lock
-- The worker holds the import row for the whole import: a redelivered message waits, then finds it done.
SELECT * FROM timing_imports WHERE id = %(id)s AND account_id = %(account_id)s FOR UPDATE;

-- name: timing_import_attempt
UPDATE timing_imports SET attempts = attempts + 1, updated_at = now()
WHERE id = %(id)s AND account_id = %(account_id)s AND status = 'running'
RETURNING *;

-- name: timing_import_finish
UPDATE timing_imports
SET status = 'done', rows_read = %(rows_read)s, laps_created = %(laps_created)s, laps_updated = %(laps_updated)s,
    laps_unchanged = %(laps_unchanged)s, rows_skipped = %(rows_skipped)s, cars_created = %(cars_created)s,
    run_sheets_created = %(run_sheets_created)s, cars_skipped = %(cars_skipped)s,
    rows_rejected = %(rows_rejected)s, rows_rejected_count = %(rows_rejected_count)s, error = NULL,
    finished_at = now(), updated_at = now()
WHERE id = %(id)s AND account_id = %(account_id)s
RETURNING *;

-- name: timing_import_fail
UPDATE timing_imports
SET status = 'failed', error = %(error)s, rows_read = %(rows_read)s, rows_rejected = %(rows_rejected)s,
    rows_rejected_count = %(rows_rejected_count)s, finished_at = now(), updated_at = now()
WHERE id = %(id)s AND account_id = %(account_id)s AND status = 'running'
RETURNING *;

-- name: timing_event_cars
SELECT id, number FROM cars WHERE event_id = %(event_id)s AND account_id = %(account_id)s;

-- name: timing_create_cars
-- Entries for the file's cars the event lacks; a car created meanwhile by someone else is kept as is.
INSERT INTO cars (account_id, event_id, number, class, team, is_competitor)
SELECT %(account_id)s, %(event_id)s, entry.number, entry.class, entry.team, true
FROM unnest(%(numbers)s::text[], %(classes)s::text[], %(teams)s::text[]) AS entry (number, class, team)
ORDER BY entry.number
ON CONFLICT (event_id, number) DO NOTHING
RETURNING *;

-- name: timing_create_run_sheets
INSERT INTO run_sheets (account_id, session_id, car_id)
SELECT %(account_id)s, %(session_id)s, car_id FROM unnest(%(car_ids)s::uuid[]) AS car_id
ORDER BY car_id
ON CONFLICT (session_id, car_id) DO NOTHING
RETURNING *;

-- name: timing_session_run_sheets
SELECT id, car_id FROM run_sheets WHERE session_id = %(session_id)s AND account_id = %(account_id)s;

-- name: timing_staging_table
CREATE TEMP TABLE timing_lap_rows (
    car_id           uuid NOT NULL,
    lap_number       integer NOT NULL,
    lap_time_ms      integer NOT NULL,
    sector_times_ms  integer[] NOT NULL,
    is_in_lap        boolean NOT NULL,
    is_out_lap       boolean NOT NULL,
    pit_time_ms      integer,
    flag             text,
    driver_number    text,
    elapsed_ms       bigint,
    custom           jsonb NOT NULL
) ON COMMIT DROP;

-- name: timing_upsert_laps
-- New laps are inserted; a lap whose timing values changed is updated (keeping what the team
-- added: validity, stint, fuel, tyres, driver, its own custom keys); an unchanged lap is left
-- alone and not returned. `created` tells inserts (xmax = 0) from updates. `wire` is the lap as
-- records.LAPS.to_wire renders it (same keys in the same order, UTC times with a Z and microseconds
-- only when there are some), built here because decoding 23 columns per lap and rendering them in
-- Python cost more than the upsert itself; fuelL comes back as a JSON number that the caller turns
-- into a float (45.00 reads as 45). tests/integration/test_timing_import.py checks it against the API.
INSERT INTO laps AS l (account_id, run_sheet_id, session_id, car_id, lap_number, lap_time_ms, sector_times_ms,
                       is_in_lap, is_out_lap, pit_time_ms, flag, driver_number, custom, source, recorded_at)
SELECT %(account_id)s, rs.id, rs.session_id, rs.car_id, t.lap_number, t.lap_time_ms, t.sector_times_ms,
       t.is_in_lap, t.is_out_lap, t.pit_time_ms, t.flag, t.driver_number, t.custom, 'timing',
       COALESCE(%(starts_at)s::timestamptz + make_interval(secs => t.elapsed_ms / 1000.0), now())
FROM timing_lap_rows t
JOIN run_sheets rs ON rs.session_id = %(session_id)s AND rs.car_id = t.car_id AND rs.account_id = %(account_id)s
ORDER BY rs.id, t.lap_number
ON CONFLICT (run_sheet_id, lap_number) DO UPDATE
SET lap_time_ms = EXCLUDED.lap_time_ms, sector_times_ms = EXCLUDED.sector_times_ms,
    is_in_lap = EXCLUDED.is_in_lap, is_out_lap = EXCLUDED.is_out_lap, pit_time_ms = EXCLUDED.pit_time_ms,
    flag = EXCLUDED.flag, driver_number = EXCLUDED.driver_number, custom = l.custom || EXCLUDED.custom,
    source = 'timing', updated_at = now()
WHERE (l.lap_time_ms, l.sector_times_ms, l.is_in_lap, l.is_out_lap, l.pit_time_ms, l.flag, l.driver_number,
       l.source, l.custom || EXCLUDED.custom)
      IS DISTINCT FROM
      (EXCLUDED.lap_time_ms, EXCLUDED.sector_times_ms, EXCLUDED.is_in_lap, EXCLUDED.is_out_lap,
       EXCLUDED.pit_time_ms, EXCLUDED.flag, EXCLUDED.driver_number, 'timing', l.custom)
RETURNING (l.xmax = 0) AS created, json_build_object(
    'id', l.id, 'runSheetId', l.run_sheet_id, 'sessionId', l.session_id, 'carId', l.car_id,
    'lapNumber', l.lap_number, 'lapTimeMs', l.lap_time_ms, 'sectorTimesMs', l.sector_times_ms,
    'isInLap', l.is_in_lap, 'isOutLap', l.is_out_lap, 'isValid', l.is_valid, 'pitTimeMs', l.pit_time_ms,
    'flag', l.flag, 'driverId', l.driver_id, 'driverNumber', l.driver_number, 'stint', l.stint,
    'fuelL', l.fuel_l::float8, 'tyreSet', l.tyre_set,
    'recordedAt', replace(to_char(l.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), '.000000Z', 'Z'),
    'custom', l.custom, 'source', l.source,
    'createdAt', replace(to_char(l.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), '.000000Z', 'Z'),
    'updatedAt', replace(to_char(l.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), '.000000Z', 'Z')
) AS wire;

-- name: timing_session_lock
-- One import at a time per session, so two files never race to create the same laps.
SELECT pg_advisory_xact_lock(hashtextextended('timing:' || %(session_id)s::text, 0));
