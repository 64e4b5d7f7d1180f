-- Plugins and their versions; every query is scoped by account_id.

-- name: plugin_versions_for_invoke
-- Every version of one plugin with the account's grants: the caller picks the pinned or latest one.
SELECT v.version, v.interfaces, v.capabilities, v.timeout_ms, v.manifest, v.bundle_sha256, v.s3_key,
       p.grants
FROM plugin_versions v
JOIN plugins p ON p.account_id = v.account_id AND p.id = v.plugin_id
WHERE v.account_id = %(account_id)s AND v.plugin_id = %(plugin_id)s;

-- name: plugin_one
SELECT id, name, grants, created_by, grants_set_by, created_at, updated_at
FROM plugins
WHERE account_id = %(account_id)s AND id = %(plugin_id)s;

-- name: plugin_versions_of
SELECT version, name, interfaces, capabilities, timeout_ms, manifest, bundle_sha256, bundle_bytes, created_at
FROM plugin_versions
WHERE account_id = %(account_id)s AND plugin_id = %(plugin_id)s;

-- name: plugin_version_one
SELECT version, bundle_sha256
FROM plugin_versions
WHERE account_id = %(account_id)s AND plugin_id = %(plugin_id)s AND version = %(version)s;

-- name: plugin_page
-- One page of plugins in id order, each with its versions (few per plugin) to find the latest.
SELECT p.id, p.name, p.grants, p.created_at, p.updated_at,
       (SELECT jsonb_agg(jsonb_build_object('version', v.version, 'name', v.name, 'interfaces', v.interfaces,
                                            'capabilities', v.capabilities))
        FROM plugin_versions v
        WHERE v.account_id = p.account_id AND v.plugin_id = p.id) AS versions
FROM plugins p
WHERE p.account_id = %(account_id)s AND (%(after)s::text IS NULL OR p.id > %(after)s::text)
ORDER BY p.id
LIMIT %(limit)s;

-- name: plugin_upsert
-- The plugin row takes the name of the newest upload.
INSERT INTO plugins (account_id, id, name, created_by)
VALUES (%(account_id)s, %(plugin_id)s, %(name)s, %(created_by)s)
ON CONFLICT (account_id, id) DO UPDATE SET name = excluded.name, updated_at = now();

-- name: plugin_version_insert
INSERT INTO plugin_versions (account_id, plugin_id, version, name, interfaces, capabilities, timeout_ms,
                             manifest, bundle_sha256, bundle_bytes, s3_key, created_by)
VALUES (%(account_id)s, %(plugin_id)s, %(version)s, %(name)s, %(interfaces)s, %(capabilities)s,
        %(timeout_ms)s, %(manifest)s, %(bundle_sha256)s, %(bundle_bytes)s, %(s3_key)s, %(created_by)s)
ON CONFLICT (account_id, plugin_id, version) DO NOTHING
RETURNING version, name, interfaces, capabilities, timeout_ms, manifest, bundle_sha256, bundle_bytes, created_at;

-- name: plugin_set_grants
UPDATE plugins SET grants = %(grants)s, grants_set_by = %(set_by)s, updated_at = now()
WHERE account_id = %(account_id)s AND id = %(plugin_id)s
RETURNING id, grants, grants_set_by, updated_at;

-- name: plugin_bundle_keys
SELECT s3_key FROM plugin_versions WHERE account_id = %(account_id)s AND plugin_id = %(plugin_id)s;

-- name: plugin_delete
DELETE FROM plugins WHERE account_id = %(account_id)s AND id = %(plugin_id)s;

-- name: plugin_run_sheet_exists
SELECT 1 AS found FROM run_sheets WHERE account_id = %(account_id)s AND id = %(run_sheet_id)s;

-- name: plugin_run_sheet_laps
-- The laps a kpiProcessor receives, in lap order; one more than the cap to detect an oversized run sheet.
SELECT id, run_sheet_id, session_id, car_id, lap_number, lap_time_ms, sector_times_ms, is_in_lap, is_out_lap,
       is_valid, pit_time_ms, flag, driver_id, driver_number, stint, fuel_l, tyre_set, recorded_at, custom,
       source, created_at, updated_at
FROM laps
WHERE account_id = %(account_id)s AND run_sheet_id = %(run_sheet_id)s
ORDER BY lap_number
LIMIT %(limit)s;
