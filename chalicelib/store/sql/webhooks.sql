-- name: insert_webhook
-- The id is chosen by the caller: the sealed secret is bound to it (webhooks/sealing.py).
INSERT INTO webhooks (id, account_id, url, description, entity_types, operations, enabled, secret, created_by)
VALUES (%(id)s, %(account_id)s, %(url)s, %(description)s, %(entity_types)s, %(operations)s, %(enabled)s, %(secret)s,
        %(created_by)s)
RETURNING id, url, description, entity_types, operations, enabled, disabled_reason, previous_secret_expires_at,
          created_by, created_at, updated_at;

-- name: count_webhooks
SELECT count(*) AS n FROM webhooks WHERE account_id = %(account_id)s;

-- name: update_webhook
-- Only the fields given (non-null) change; enabling again clears the reason it was disabled.
UPDATE webhooks SET
    url = coalesce(%(url)s::text, url),
    description = coalesce(%(description)s::text, description),
    entity_types = coalesce(%(entity_types)s::text[], entity_types),
    operations = coalesce(%(operations)s::text[], operations),
    enabled = coalesce(%(enabled)s::boolean, enabled),
    disabled_reason = CASE WHEN %(enabled)s::boolean IS NOT NULL THEN NULL ELSE disabled_reason END,
    updated_at = now()
WHERE id = %(id)s AND account_id = %(account_id)s
RETURNING id, url, description, entity_types, operations, enabled, disabled_reason, previous_secret_expires_at,
          created_by, created_at, updated_at;

-- name: delete_webhook
DELETE FROM webhooks WHERE id = %(id)s AND account_id = %(account_id)s;

-- name: rotate_webhook_secret
-- The current secret keeps signing (as the previous one) for the overlap; a rotation during a
-- rotation drops the oldest secret.
UPDATE webhooks SET
    previous_secret = secret,
    previous_secret_expires_at = now() + make_interval(secs => %(overlap_s)s),
    secret = %(secret)s,
    updated_at = now()
WHERE id = %(id)s AND account_id = %(account_id)s
RETURNING id, url, description, entity_types, operations, enabled, disabled_reason, previous_secret_expires_at,
          created_by, created_at, updated_at;

-- name: webhook_state
SELECT id, enabled FROM webhooks WHERE id = %(id)s AND account_id = %(account_id)s;

-- name: insert_matching_webhook_deliveries
-- The outbox, one statement per recorded batch of a write: a delivery per (domain event, enabled
-- subscription of the account whose filter takes it), in the writer's transaction. Matching here,
-- not in Python, spares the write a round trip (the subscriptions no longer read first). The body
-- is composed once, in a fixed field order, from the stored event, and sent as is on every attempt.
-- Always one row at least: `subscriptions` is how many the account has enabled (0: the rest of
-- the transaction need not ask again), then one row per delivery inserted (id null: none).
WITH subscriptions AS (
    SELECT id, entity_types, operations FROM webhooks WHERE account_id = %(account_id)s AND enabled
), events AS (
    -- (account_id, id) is an index: only the batch's rows are read, and none without a subscription
    -- (the EXISTS is evaluated once, first).
    SELECT id, account_id, type, entity, op, data, created_at
    FROM domain_events
    WHERE account_id = %(account_id)s AND id = ANY(%(event_ids)s::bigint[]) AND EXISTS (SELECT FROM subscriptions)
), inserted AS (
    INSERT INTO webhook_deliveries (account_id, webhook_id, event_id, event_type, payload, enqueued_at)
    SELECT e.account_id, w.id, e.id, e.type,
           '{"type":' || to_json(e.type)::text
           || ',"timestamp":' || to_json(to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text
           || ',"data":' || e.data::text
           || ',"accountId":' || to_json(e.account_id)::text
           || ',"eventId":' || e.id::text || '}',
           now()
    FROM events e
    JOIN subscriptions w ON e.op = ANY(w.operations) AND (cardinality(w.entity_types) = 0 OR e.entity = ANY(w.entity_types))
    ORDER BY e.id, w.id
    RETURNING id, account_id
)
SELECT (SELECT count(*) FROM subscriptions) AS subscriptions, inserted.id, inserted.account_id
FROM (SELECT) AS one
LEFT JOIN inserted ON true;

-- name: insert_test_delivery
INSERT INTO webhook_deliveries (account_id, webhook_id, event_type, payload, enqueued_at)
VALUES (%(account_id)s, %(webhook_id)s, %(event_type)s, %(payload)s, now())
RETURNING id, account_id, webhook_id, event_id, event_type, status, attempts, created_at, next_attempt_at,
          succeeded_at, failed_at, last_status_code, last_error;

-- name: forget_enqueued
-- Their queue message could not be sent: the next sweep sends one without waiting for the grace.
UPDATE webhook_deliveries SET enqueued_at = NULL
WHERE id = ANY(%(ids)s::uuid[]) AND status IN ('pending', 'retrying');

-- name: claim_webhook_deliveries
-- Claims the given deliveries that are due (or whose previous worker's lock ran out) for one
-- attempt each: two workers never hold the same delivery (row locks + the status/lock recheck),
-- a finished one (succeeded, failed) is never claimed. Deliveries of a disabled webhook fail
-- without an attempt. Opens the attempt record; an attempt left open by a worker that died
-- before recording its outcome is closed with a note.
WITH target AS (
    SELECT d.id, w.enabled, d.status AS previous_status
    FROM webhook_deliveries d
    JOIN webhooks w ON w.id = d.webhook_id
    WHERE d.id = ANY(%(ids)s::uuid[])
      AND ((d.status IN ('pending', 'retrying') AND d.next_attempt_at <= now() + make_interval(secs => %(early_s)s))
           OR (d.status = 'sending' AND d.locked_until < now()))
    FOR UPDATE OF d SKIP LOCKED
), claimed AS (
    UPDATE webhook_deliveries d SET
        status = CASE WHEN t.enabled THEN 'sending' ELSE 'failed' END,
        locked_until = CASE WHEN t.enabled THEN now() + make_interval(secs => %(lock_s)s) END,
        attempts = d.attempts + CASE WHEN t.enabled THEN 1 ELSE 0 END,
        cycle_attempts = d.cycle_attempts + CASE WHEN t.enabled THEN 1 ELSE 0 END,
        next_attempt_at = CASE WHEN t.enabled THEN d.next_attempt_at END,
        failed_at = CASE WHEN t.enabled THEN d.failed_at ELSE now() END,
        last_error = CASE WHEN t.enabled THEN d.last_error ELSE 'not sent: the webhook is disabled' END,
        updated_at = now()
    FROM target t
    WHERE d.id = t.id
    RETURNING d.id, d.account_id, d.webhook_id, d.event_type, d.payload, d.attempts, d.cycle, d.cycle_attempts,
              t.enabled, t.previous_status
), abandoned AS (
    UPDATE webhook_attempts a SET
        finished_at = now(),
        error = 'the worker stopped before recording the outcome; the receiver may have received it'
    FROM claimed c
    WHERE a.delivery_id = c.id AND c.previous_status = 'sending' AND a.finished_at IS NULL
), opened AS (
    INSERT INTO webhook_attempts (delivery_id, attempt, account_id, cycle)
    SELECT id, attempts, account_id, cycle FROM claimed WHERE enabled
)
SELECT c.id, c.account_id, c.webhook_id, c.event_type, c.payload, c.attempts, c.cycle_attempts, c.enabled,
       w.url, w.secret,
       CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret END AS previous_secret
FROM claimed c
JOIN webhooks w ON w.id = c.webhook_id;

-- name: settle_webhook_deliveries
-- Records the outcome of claimed attempts: the attempt rows always; the delivery only while this
-- worker still holds it (status sending, same attempt number); 410 disables the webhook.
WITH outcome AS (
    SELECT *
    FROM unnest(%(ids)s::uuid[], %(attempts)s::int[], %(statuses)s::text[], %(delays_s)s::float8[],
                %(queued)s::boolean[], %(status_codes)s::int[], %(errors)s::text[], %(durations_ms)s::int[],
                %(bodies)s::text[])
         AS o(id, attempt, status, delay_s, queued, status_code, error, duration_ms, response_body)
), recorded AS (
    UPDATE webhook_attempts a SET
        finished_at = now(), duration_ms = o.duration_ms, status_code = o.status_code, error = o.error,
        response_body = o.response_body
    FROM outcome o
    WHERE a.delivery_id = o.id AND a.attempt = o.attempt
), disabled AS (
    UPDATE webhooks SET enabled = false, disabled_reason = r.reason, updated_at = now()
    FROM unnest(%(disable_ids)s::uuid[], %(disable_reasons)s::text[]) AS r(id, reason)
    WHERE webhooks.id = r.id
)
UPDATE webhook_deliveries d SET
    status = o.status,
    locked_until = NULL,
    next_attempt_at = CASE WHEN o.status = 'retrying' THEN now() + make_interval(secs => o.delay_s) END,
    enqueued_at = CASE WHEN o.status = 'retrying' AND o.queued THEN now() END,
    succeeded_at = CASE WHEN o.status = 'succeeded' THEN now() END,
    failed_at = CASE WHEN o.status = 'failed' THEN now() END,
    last_status_code = o.status_code,
    last_error = o.error,
    updated_at = now()
FROM outcome o
WHERE d.id = o.id AND d.status = 'sending' AND d.attempts = o.attempt
RETURNING d.id, d.account_id, d.status;

-- name: release_webhook_deliveries
-- Claimed but not attempted (their receiver used its share of the batch's time): the claim is undone
-- (its attempt row removed, the counters back) while this worker still holds them; due again now.
WITH released AS (
    UPDATE webhook_deliveries d SET
        status = CASE WHEN d.cycle_attempts > 1 THEN 'retrying' ELSE 'pending' END,
        attempts = d.attempts - 1,
        cycle_attempts = d.cycle_attempts - 1,
        locked_until = NULL,
        next_attempt_at = now(),
        enqueued_at = now(),
        updated_at = now()
    FROM unnest(%(ids)s::uuid[], %(attempts)s::int[]) AS r(id, attempt)
    WHERE d.id = r.id AND d.status = 'sending' AND d.attempts = r.attempt
    RETURNING d.id, d.account_id, r.attempt
), unopened AS (
    DELETE FROM webhook_attempts a USING released r WHERE a.delivery_id = r.id AND a.attempt = r.attempt
)
SELECT id, account_id FROM released;

-- name: sweep_webhook_deliveries
-- Deliveries that are due but have no live queue message: never sent (enqueued_at null), or due
-- and unattempted for longer than the grace (message lost), or held by a worker whose lock ran
-- out that long ago. Marks them enqueued; the caller sends their messages after commit.
WITH locked AS (
    SELECT id FROM webhook_deliveries
    WHERE (status IN ('pending', 'retrying') AND next_attempt_at <= now()
           AND (enqueued_at IS NULL OR (enqueued_at <= now() - make_interval(secs => %(grace_s)s)
                                        AND next_attempt_at <= now() - make_interval(secs => %(grace_s)s))))
       OR (status = 'sending' AND locked_until <= now() - make_interval(secs => %(grace_s)s)
           AND (enqueued_at IS NULL OR enqueued_at <= now() - make_interval(secs => %(grace_s)s)))
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE webhook_deliveries d SET enqueued_at = now()
FROM locked
WHERE d.id = locked.id
RETURNING d.id, d.account_id;

-- name: any_sealed_webhook_secret
-- One sealed secret, for the cold start's check that WEBHOOK_KEY is the key that sealed them.
SELECT id, secret FROM webhooks WHERE starts_with(secret, 'enc:') LIMIT 1;

-- name: plaintext_webhook_secrets
-- Rows written before secrets were sealed (or restored from such a dump); sealed by the app.
SELECT id, secret, previous_secret FROM webhooks
WHERE NOT starts_with(secret, 'enc:') OR NOT starts_with(previous_secret, 'enc:')
ORDER BY id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: seal_webhook_secrets
UPDATE webhooks w SET secret = s.secret, previous_secret = s.previous_secret
FROM unnest(%(ids)s::uuid[], %(secrets)s::text[], %(previous_secrets)s::text[]) AS s(id, secret, previous_secret)
WHERE w.id = s.id;

-- name: expire_rotated_secrets
UPDATE webhooks SET previous_secret = NULL, previous_secret_expires_at = NULL
WHERE previous_secret_expires_at <= now();

-- name: list_webhook_deliveries
SELECT id, webhook_id, event_id, event_type, status, attempts, created_at, next_attempt_at, succeeded_at, failed_at,
       last_status_code, last_error
FROM webhook_deliveries
WHERE account_id = %(account_id)s AND webhook_id = %(webhook_id)s
  AND (%(status)s::text IS NULL OR status = %(status)s::text)
  AND (%(event_type)s::text IS NULL OR event_type = %(event_type)s::text)
  AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR created_at < %(until)s::timestamptz)
  AND (%(after_created_at)s::timestamptz IS NULL
       OR (created_at, id) < (%(after_created_at)s::timestamptz, %(after_id)s::uuid))
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s;

-- name: get_webhook_delivery
SELECT id, webhook_id, event_id, event_type, payload, status, attempts, cycle, created_at, next_attempt_at,
       succeeded_at, failed_at, last_status_code, last_error
FROM webhook_deliveries
WHERE id = %(id)s AND webhook_id = %(webhook_id)s AND account_id = %(account_id)s;

-- name: list_webhook_attempts
SELECT attempt, cycle, started_at, finished_at, duration_ms, status_code, error, response_body
FROM webhook_attempts
WHERE delivery_id = %(delivery_id)s AND account_id = %(account_id)s
ORDER BY attempt;

-- name: replay_webhook_delivery
-- A new cycle of attempts (same id, so the same webhook-id for receivers to deduplicate on).
UPDATE webhook_deliveries SET
    status = 'pending', cycle = cycle + 1, cycle_attempts = 0, next_attempt_at = now(), locked_until = NULL,
    enqueued_at = now(), succeeded_at = NULL, failed_at = NULL, updated_at = now()
WHERE id = %(id)s AND webhook_id = %(webhook_id)s AND account_id = %(account_id)s
  AND status IN ('succeeded', 'failed', 'retrying')
RETURNING id, account_id, webhook_id, event_id, event_type, status, attempts, created_at, next_attempt_at,
          succeeded_at, failed_at, last_status_code, last_error;

-- name: recover_webhook_deliveries
-- Every failed delivery of the window starts a new cycle; the oldest `dispatch_limit` are marked
-- enqueued (the request sends their messages), the rest are left to the sweep (enqueued_at null).
WITH candidates AS (
    SELECT id, row_number() OVER (ORDER BY created_at, id) AS position
    FROM webhook_deliveries
    WHERE account_id = %(account_id)s AND webhook_id = %(webhook_id)s AND status = 'failed'
      AND created_at >= %(since)s AND created_at < %(until)s
), replayed AS (
    UPDATE webhook_deliveries d SET
        status = 'pending', cycle = d.cycle + 1, cycle_attempts = 0, next_attempt_at = now(), locked_until = NULL,
        enqueued_at = CASE WHEN c.position <= %(dispatch_limit)s THEN now() END,
        succeeded_at = NULL, failed_at = NULL, updated_at = now()
    FROM candidates c
    WHERE d.id = c.id AND d.status = 'failed'
    RETURNING d.id, c.position
)
SELECT count(*) AS n, array_agg(id) FILTER (WHERE position <= %(dispatch_limit)s) AS first_ids FROM replayed;
