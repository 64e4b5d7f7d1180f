-- Official timing imports: one row per file handed to POST /sessions/{id}/timing-imports. The raw
-- file waits in the uploads bucket (s3_key) for the queue worker, which fills in the counts.
CREATE TABLE timing_imports (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id               uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- An import is a record of what happened to its session: it goes when the session goes.
    session_id               uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    status                   text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
    s3_key                   text NOT NULL,
    source_bytes             bigint NOT NULL DEFAULT 0,
    only_known_cars          boolean NOT NULL DEFAULT false,
    -- Who asked, so the worker records its domain events with the same actor.
    requested_role           text NOT NULL,
    requested_by_user_id     uuid REFERENCES users (id) ON DELETE SET NULL,
    requested_by_api_key_id  uuid REFERENCES api_keys (id) ON DELETE SET NULL,
    rows_read                integer NOT NULL DEFAULT 0,
    laps_created             integer NOT NULL DEFAULT 0,
    laps_updated             integer NOT NULL DEFAULT 0,
    laps_unchanged           integer NOT NULL DEFAULT 0,
    rows_skipped             integer NOT NULL DEFAULT 0,
    cars_created             integer NOT NULL DEFAULT 0,
    run_sheets_created       integer NOT NULL DEFAULT 0,
    cars_skipped             jsonb NOT NULL DEFAULT '[]',
    rows_rejected            jsonb NOT NULL DEFAULT '[]',
    rows_rejected_count      integer NOT NULL DEFAULT 0,
    error                    text,
    attempts                 integer NOT NULL DEFAULT 0,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    finished_at              timestamptz
);
CREATE INDEX timing_imports_account_idx ON timing_imports (account_id, created_at, id);
CREATE INDEX timing_imports_session_idx ON timing_imports (session_id, created_at, id);
