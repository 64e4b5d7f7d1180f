-- name: lap_run_sheets
-- The run sheets a batch of laps goes to (the caller's only), with the transaction's time: every
-- lap of the batch is created "now", the same now() the column defaults would give.
SELECT rs.*, now() AS now
FROM run_sheets rs
WHERE rs.id = ANY(%(ids)s::uuid[]) AND rs.account_id = %(account_id)s;

-- name: lap_driver_numbers
SELECT id, number FROM drivers WHERE id = ANY(%(ids)s::uuid[]) AND account_id = %(account_id)s;

-- name: lap_stats_run_sheet
SELECT rs.id, rs.session_id, rs.car_id, s.type AS session_type
FROM run_sheets rs
JOIN sessions s ON s.id = rs.session_id
WHERE rs.id = %(run_sheet_id)s AND rs.account_id = %(account_id)s;

-- name: lap_stats_laps
-- What the statistics read of each lap of a run sheet, in lap order.
SELECT id, lap_number, lap_time_ms, sector_times_ms, is_in_lap, is_out_lap, is_valid, flag, driver_id,
       driver_number, stint, coalesce((custom ->> 'officialBest')::boolean, false) AS official_best
FROM laps
WHERE run_sheet_id = %(run_sheet_id)s AND account_id = %(account_id)s
ORDER BY lap_number;
