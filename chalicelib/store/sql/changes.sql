-- name: insert_domain_event
INSERT INTO domain_events (account_id, type, entity, op, entity_id, session_id, actor, data)
VALUES (%(account_id)s, %(type)s, %(entity)s, %(op)s, %(entity_id)s, %(session_id)s, %(actor)s, %(data)s)
RETURNING id, created_at;

-- name: mark_published
UPDATE domain_events SET published_at = now() WHERE id = ANY(%(ids)s) AND published_at IS NULL;

-- name: unpublished_events
-- Events a crash (or an unreachable emulator) left unpublished; oldest first, skipping rows
-- another sweeper holds.
SELECT id, account_id, type, entity, op, entity_id, session_id, actor, data, created_at
FROM domain_events
WHERE published_at IS NULL AND created_at < now() - make_interval(secs => %(min_age_s)s)
ORDER BY id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;
