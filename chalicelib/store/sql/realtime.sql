-- name: recently_published_sessions
-- Session rooms that published lately (only the newest events are looked at, through the primary
-- key), so the sweep can finish a fan-out whose sender died.
SELECT DISTINCT session_id
FROM (SELECT session_id, published_at FROM domain_events ORDER BY id DESC LIMIT %(recent)s) AS recent
WHERE session_id IS NOT NULL AND published_at > now() - make_interval(secs => %(window_s)s);
