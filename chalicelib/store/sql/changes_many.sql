-- name: insert_domain_events
-- Many events of one type in one statement (changes.Recorder.record_many): `data` is a JSON array,
-- session_ids and entity_ids are arrays of the same length. Rows are inserted in array order, so
-- their ids are too. published: stored as already published (kept from the session rooms).
INSERT INTO domain_events (account_id, type, entity, op, entity_id, session_id, actor, data, published_at)
SELECT %(account_id)s, %(type)s, %(entity)s, %(op)s, (%(entity_ids)s::uuid[])[d.n], (%(session_ids)s::uuid[])[d.n],
       %(actor)s, d.data, CASE WHEN %(published)s THEN now() END
FROM jsonb_array_elements(%(data)s::jsonb) WITH ORDINALITY AS d (data, n)
ORDER BY d.n
RETURNING id, created_at;
