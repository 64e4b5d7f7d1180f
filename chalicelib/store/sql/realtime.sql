-- name: recently_published_sessions
-- Session rooms that published lately (only the newest events are looked at, through the primary
-- key), so the sweep can finish a fan-out whose sender died.
SELECT DISTINCT session_id
FROM (SELECT session_id, published_at FROM domain_events ORDER BY id DESC LIMIT %(recent)s) AS recent
WHERE session_id IS NOT NULL AND published_at > now() - make_interval(secs => %(window_s)s);

-- name: room_events_waiting
-- Committed, unpublished events of a session room, oldest first: a round reads ahead so a burst of
-- writes to one session shares it instead of queueing behind it. Not locked here: the publisher
-- keeps those of the room, then locks them with the message's own (room_events_to_publish). Only
-- the account of the message's own first event: a session id never leads into another account.
SELECT id, account_id, type, entity, op, entity_id, session_id, actor, data, created_at
FROM domain_events
WHERE published_at IS NULL AND session_id = %(session_id)s
  AND account_id = (SELECT account_id FROM domain_events WHERE id = %(own_id)s)
ORDER BY id
LIMIT %(limit)s;

-- name: room_events_to_publish
-- The events of one room queue message that are still unpublished (a sweep may have published some),
-- in id order; rows another publisher or sweeper holds are skipped (they are being published). The
-- publisher keeps only those of the message's room (a room key is not a column: realtime/room_keys.py).
SELECT id, account_id, type, entity, op, entity_id, session_id, actor, data, created_at
FROM domain_events
WHERE id = ANY(%(ids)s) AND published_at IS NULL
ORDER BY id
FOR UPDATE SKIP LOCKED;
