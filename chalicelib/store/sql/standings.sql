-- name: results_upsert
-- The official results of a session, one row per car number; a row whose values did not change is
-- left alone and not returned, so importing the same file again reports nothing new.
INSERT INTO session_results AS r (account_id, session_id, car_number, position, status, laps, total_time_ms,
                                  gap_first, gap_previous, best_lap_number, best_lap_ms, class, team, line, import_id)
SELECT %(account_id)s, %(session_id)s, x.car_number, x.position, x.status, x.laps, x.total_time_ms, x.gap_first,
       x.gap_previous, x.best_lap_number, x.best_lap_ms, x.class, x.team, x.line, %(import_id)s
FROM unnest(%(car_numbers)s::text[], %(positions)s::int[], %(statuses)s::text[], %(laps)s::int[],
            %(total_times_ms)s::bigint[], %(gaps_first)s::text[], %(gaps_previous)s::text[],
            %(best_lap_numbers)s::int[], %(best_laps_ms)s::int[], %(classes)s::text[], %(teams)s::text[],
            %(lines)s::int[])
     AS x (car_number, position, status, laps, total_time_ms, gap_first, gap_previous, best_lap_number, best_lap_ms,
           class, team, line)
ORDER BY x.car_number
ON CONFLICT (session_id, car_number) DO UPDATE
SET position = EXCLUDED.position, status = EXCLUDED.status, laps = EXCLUDED.laps,
    total_time_ms = EXCLUDED.total_time_ms, gap_first = EXCLUDED.gap_first, gap_previous = EXCLUDED.gap_previous,
    best_lap_number = EXCLUDED.best_lap_number, best_lap_ms = EXCLUDED.best_lap_ms, class = EXCLUDED.class,
    team = EXCLUDED.team, line = EXCLUDED.line, import_id = EXCLUDED.import_id, updated_at = now()
WHERE (r.position, r.status, r.laps, r.total_time_ms, r.gap_first, r.gap_previous, r.best_lap_number,
       r.best_lap_ms, r.class, r.team)
      IS DISTINCT FROM
      (EXCLUDED.position, EXCLUDED.status, EXCLUDED.laps, EXCLUDED.total_time_ms, EXCLUDED.gap_first,
       EXCLUDED.gap_previous, EXCLUDED.best_lap_number, EXCLUDED.best_lap_ms, EXCLUDED.class, EXCLUDED.team)
RETURNING (r.xmax = 0) AS created;

-- name: results_delete_missing
-- A newer results file is the whole classification: a car it no longer lists leaves it.
DELETE FROM session_results
WHERE session_id = %(session_id)s AND account_id = %(account_id)s AND NOT (car_number = ANY(%(car_numbers)s::text[]));

-- name: timing_import_finish_results
UPDATE timing_imports
SET status = 'done', rows_read = %(rows_read)s, rows_rejected = %(rows_rejected)s,
    rows_rejected_count = %(rows_rejected_count)s, results_created = %(results_created)s,
    results_updated = %(results_updated)s, results_unchanged = %(results_unchanged)s, error = NULL,
    finished_at = now(), updated_at = now()
WHERE id = %(id)s AND account_id = %(account_id)s
RETURNING *;

-- name: standings_session
SELECT id, event_id, type, name FROM sessions WHERE id = %(session_id)s AND account_id = %(account_id)s;

-- name: standings_cars
-- The cars of the session: those with a run sheet in it, with their entry details.
SELECT c.id, c.number, c.class, c.team, c.is_competitor
FROM run_sheets rs JOIN cars c ON c.id = rs.car_id AND c.account_id = rs.account_id
WHERE rs.session_id = %(session_id)s AND rs.account_id = %(account_id)s;

-- name: standings_laps
-- Only the columns standings and charts read (Le Mans: 15,593 laps), in car then lap order. `custom`
-- is free-form (the team may write it): a value of the wrong type reads as absent, never as an error.
SELECT car_id, lap_number, lap_time_ms, is_in_lap, is_out_lap, is_valid, pit_time_ms, flag, driver_number, stint,
       CASE WHEN jsonb_typeof(custom -> 'elapsedMs') = 'number' AND (custom ->> 'elapsedMs')::numeric >= 0
            AND (custom ->> 'elapsedMs')::numeric < 1e15 THEN (custom ->> 'elapsedMs')::numeric::bigint END AS elapsed_ms,
       (custom -> 'officialBest') = 'true'::jsonb AS official_best,
       CASE WHEN jsonb_typeof(custom -> 'driverName') = 'string' THEN left(custom ->> 'driverName', 200) END
       AS driver_name
FROM laps
WHERE session_id = %(session_id)s AND account_id = %(account_id)s
ORDER BY car_id, lap_number;

-- name: standings_results
SELECT car_number, position, status, laps, total_time_ms, gap_first, gap_previous, best_lap_number, best_lap_ms,
       class, team
FROM session_results
WHERE session_id = %(session_id)s AND account_id = %(account_id)s;
