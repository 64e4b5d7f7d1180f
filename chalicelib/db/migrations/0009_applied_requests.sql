-- Idempotency-Keys whose write has committed, recorded in the write's own transaction.
-- The answer to a keyed request is kept in DynamoDB after the commit; a crash between the two
-- would let a retry apply the write again. With this row in the same transaction as the write, a
-- retry finds the key applied and is told so (409 idempotency_key_applied) instead.

CREATE TABLE applied_requests (
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    route       text NOT NULL,
    key_sha256  text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, route, key_sha256)
);
CREATE INDEX applied_requests_age_idx ON applied_requests (applied_at);
