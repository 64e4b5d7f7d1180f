-- Race weekends and what happens on track. Every row carries account_id so that scoping a query
-- to the caller's account never needs a join.
CREATE TABLE events (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    track       text,
    starts_at   timestamptz,
    ends_at     timestamptz,
    parameters  jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_account_idx ON events (account_id, created_at, id);

CREATE TABLE sessions (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    event_id    uuid NOT NULL REFERENCES events (id),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    type        text NOT NULL CHECK (type IN ('practice', 'qualifying', 'race', 'warmup', 'test')),
    starts_at   timestamptz,
    ends_at     timestamptz,
    parameters  jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_account_idx ON sessions (account_id, created_at, id);
CREATE INDEX sessions_event_idx ON sessions (event_id);

-- A car is an entry per event; its number is text ("7" and "07" are different cars).
CREATE TABLE cars (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id    uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    event_id      uuid NOT NULL REFERENCES events (id),
    number        text NOT NULL CHECK (length(number) BETWEEN 1 AND 10),
    class         text,
    team          text,
    livery_color  text,
    is_competitor boolean NOT NULL DEFAULT false,
    parameters    jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, number)
);
CREATE INDEX cars_account_idx ON cars (account_id, created_at, id);

CREATE TABLE drivers (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    car_id      uuid REFERENCES cars (id),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    number      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX drivers_account_idx ON drivers (account_id, created_at, id);
CREATE INDEX drivers_car_idx ON drivers (car_id);

-- One run sheet per session x car; the client's tabs are structured JSON documents.
CREATE TABLE run_sheets (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id      uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    session_id      uuid NOT NULL REFERENCES sessions (id),
    car_id          uuid NOT NULL REFERENCES cars (id),
    setup           jsonb NOT NULL DEFAULT '{}',
    setup_change    jsonb NOT NULL DEFAULT '{}',
    tyres           jsonb NOT NULL DEFAULT '{}',
    wear            jsonb NOT NULL DEFAULT '{}',
    ambient         jsonb NOT NULL DEFAULT '{}',
    engineer_notes  text NOT NULL DEFAULT '',
    overview        jsonb NOT NULL DEFAULT '{}',
    lap_columns     jsonb NOT NULL DEFAULT '[]',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (session_id, car_id)
);
CREATE INDEX run_sheets_account_idx ON run_sheets (account_id, created_at, id);
CREATE INDEX run_sheets_car_idx ON run_sheets (car_id);

CREATE TABLE laps (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id       uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    run_sheet_id     uuid NOT NULL REFERENCES run_sheets (id),
    session_id       uuid NOT NULL REFERENCES sessions (id),
    car_id           uuid NOT NULL REFERENCES cars (id),
    lap_number       integer NOT NULL CHECK (lap_number > 0),
    lap_time_ms      integer NOT NULL CHECK (lap_time_ms > 0),
    sector_times_ms  integer[] NOT NULL DEFAULT '{}',
    is_in_lap        boolean NOT NULL DEFAULT false,
    is_out_lap       boolean NOT NULL DEFAULT false,
    is_valid         boolean NOT NULL DEFAULT true,
    pit_time_ms      integer,
    flag             text,
    driver_id        uuid REFERENCES drivers (id),
    driver_number    text,
    stint            integer,
    fuel_l           numeric(6, 2),
    tyre_set         text,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    custom           jsonb NOT NULL DEFAULT '{}',
    source           text NOT NULL DEFAULT 'manual' CHECK (source IN ('manual', 'timing', 'api')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_sheet_id, lap_number)
);
CREATE INDEX laps_account_idx ON laps (account_id, created_at, id);
CREATE INDEX laps_session_idx ON laps (session_id, lap_number);
CREATE INDEX laps_car_idx ON laps (car_id);
