-- Official results of a session (Al Kamel `03_...Results` export), one row per classified car number.
-- A results import replaces the session's whole set: the official classification is one document.
ALTER TABLE timing_imports ADD COLUMN kind text NOT NULL DEFAULT 'laps' CHECK (kind IN ('laps', 'results'));
ALTER TABLE timing_imports ADD COLUMN results_created integer NOT NULL DEFAULT 0;
ALTER TABLE timing_imports ADD COLUMN results_updated integer NOT NULL DEFAULT 0;
ALTER TABLE timing_imports ADD COLUMN results_unchanged integer NOT NULL DEFAULT 0;

CREATE TABLE session_results (
    account_id        uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    session_id        uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    -- Car numbers stay text ("3" and "03" are different cars), matched to the event's cars by number.
    car_number        text NOT NULL CHECK (length(car_number) BETWEEN 1 AND 10),
    position          integer,
    status            text,
    laps              integer,
    total_time_ms     bigint,
    gap_first         text,
    gap_previous      text,
    best_lap_number   integer,
    best_lap_ms       integer,
    class             text,
    team              text,
    line              integer NOT NULL,
    import_id         uuid REFERENCES timing_imports (id) ON DELETE SET NULL,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, car_number)
);
CREATE INDEX session_results_account_idx ON session_results (account_id, session_id);
