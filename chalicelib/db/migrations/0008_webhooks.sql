-- Outgoing webhooks: subscriptions, their deliveries (outbox rows inserted in the same transaction
-- as the write that caused them) and every attempt at sending one.

CREATE TABLE webhooks (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id                  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    url                         text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    description                 text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    entity_types                text[] NOT NULL DEFAULT '{}',  -- empty: every entity type
    operations                  text[] NOT NULL DEFAULT '{create,update,delete}',
    enabled                     boolean NOT NULL DEFAULT true,
    disabled_reason             text,
    -- Needed in clear to sign (like Stripe's and Svix's); never returned after creation/rotation.
    secret                      text NOT NULL,
    previous_secret             text,  -- still signs until previous_secret_expires_at (rotation)
    previous_secret_expires_at  timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_account_idx ON webhooks (account_id, created_at, id);
-- The outbox's one query per write: the account's enabled subscriptions.
CREATE INDEX webhooks_enabled_idx ON webhooks (account_id) WHERE enabled;

-- status: pending (first attempt due) -> sending (claimed by a worker until locked_until)
--   -> succeeded | retrying (next_attempt_at) -> ... -> failed (final until replayed).
-- account_id is repeated for scoping; rows go with their webhook (ON DELETE CASCADE).
CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id       uuid NOT NULL,
    webhook_id       uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         bigint,  -- domain_events.id; null for test events
    event_type       text NOT NULL,
    payload          text NOT NULL,  -- the exact body sent on every attempt
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sending', 'retrying', 'succeeded', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,  -- every attempt ever made
    cycle            integer NOT NULL DEFAULT 1,  -- 1 + replays
    cycle_attempts   integer NOT NULL DEFAULT 0,  -- attempts in this cycle (1 + at most 3 retries)
    next_attempt_at  timestamptz DEFAULT now(),
    locked_until     timestamptz,
    enqueued_at      timestamptz,  -- when its queue message was last sent; null: not (yet) sent
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    succeeded_at     timestamptz,
    failed_at        timestamptz,
    last_status_code integer,
    last_error       text
);
CREATE INDEX webhook_deliveries_list_idx ON webhook_deliveries (webhook_id, created_at DESC, id DESC);
-- The sweep: deliveries due (or whose worker's lock ran out) without a live queue message.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX webhook_deliveries_sending_idx ON webhook_deliveries (locked_until) WHERE status = 'sending';

CREATE TABLE webhook_attempts (
    delivery_id    uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt        integer NOT NULL,  -- 1, 2, ... over every cycle
    account_id     uuid NOT NULL,
    cycle          integer NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,  -- null while the POST is in flight
    duration_ms    integer,
    status_code    integer,
    error          text,
    response_body  text,  -- the first 1 KB of the answer
    PRIMARY KEY (delivery_id, attempt)
);
