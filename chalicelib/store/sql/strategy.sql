-- name: strategy_laps
-- Laps of one session for every car of the event, in running order, for deriving actual stints.
SELECT l.car_id, l.lap_number, l.lap_time_ms, l.is_in_lap, l.is_out_lap, l.is_valid, l.driver_id,
       l.driver_number, l.fuel_l
FROM laps l
WHERE l.account_id = %(account_id)s AND l.session_id = %(session_id)s
ORDER BY l.car_id, l.lap_number;

-- name: strategy_race_session
SELECT id FROM sessions
WHERE account_id = %(account_id)s AND event_id = %(event_id)s AND type = 'race'
ORDER BY starts_at DESC NULLS LAST, created_at DESC
LIMIT 1;

-- name: strategy_plan
SELECT id, event_id, car_id, stint, driver_id, planned_laps, tyre_set, fuel_l, created_at, updated_at
FROM planned_stints
WHERE account_id = %(account_id)s AND event_id = %(event_id)s
ORDER BY car_id, stint;

-- name: strategy_clear_plan
DELETE FROM planned_stints WHERE account_id = %(account_id)s AND event_id = %(event_id)s;

-- name: strategy_insert_stint
INSERT INTO planned_stints (account_id, event_id, car_id, stint, driver_id, planned_laps, tyre_set, fuel_l)
VALUES (%(account_id)s, %(event_id)s, %(car_id)s, %(stint)s, %(driver_id)s, %(planned_laps)s, %(tyre_set)s,
        %(fuel_l)s)
RETURNING id, event_id, car_id, stint, driver_id, planned_laps, tyre_set, fuel_l, created_at, updated_at;
