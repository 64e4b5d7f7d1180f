-- name: claim_applied_request
-- No row back: the key was applied before (its answer was lost; see domain/idempotency.py).
INSERT INTO applied_requests (account_id, route, key_sha256)
VALUES (%(account_id)s, %(route)s, %(key_sha256)s)
ON CONFLICT DO NOTHING
RETURNING applied_at;

-- name: forget_applied_requests
-- Keys older than their answers' lifetime in DynamoDB; a bounded batch per run.
DELETE FROM applied_requests
WHERE ctid IN (SELECT ctid FROM applied_requests WHERE applied_at < now() - make_interval(secs => %(age_s)s)
               LIMIT %(limit)s);
