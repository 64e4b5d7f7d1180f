-- Every committed write records its domain event here, in the same transaction (the outbox that
-- room broadcasts and webhook deliveries are made from). published_at is set once the event has
-- been pushed to its session room; a sweep publishes any that a crash left behind.
CREATE TABLE domain_events (
    id            bigserial PRIMARY KEY,
    account_id    uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    type          text NOT NULL,
    entity        text NOT NULL,
    op            text NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    entity_id     uuid,
    session_id    uuid,
    actor         jsonb NOT NULL DEFAULT '{}',
    data          jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX domain_events_account_idx ON domain_events (account_id, id);
CREATE INDEX domain_events_unpublished_idx ON domain_events (id) WHERE published_at IS NULL;

-- Setups: a named set of values per car (optionally tied to a run sheet).
CREATE TABLE setups (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id    uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    car_id        uuid NOT NULL REFERENCES cars (id),
    run_sheet_id  uuid REFERENCES run_sheets (id),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    values        jsonb NOT NULL DEFAULT '{}',
    notes         text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX setups_account_idx ON setups (account_id, created_at, id);
CREATE INDEX setups_car_idx ON setups (car_id);

-- Car issues (the /issues resource): a problem found on a car during a session.
CREATE TABLE car_issues (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id    uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    car_id        uuid NOT NULL REFERENCES cars (id),
    session_id    uuid REFERENCES sessions (id),
    title         text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description   text NOT NULL DEFAULT '',
    severity      text NOT NULL DEFAULT 'medium' CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_progress', 'resolved')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX car_issues_account_idx ON car_issues (account_id, created_at, id);
CREATE INDEX car_issues_car_idx ON car_issues (car_id);

-- The team board: cards in columns, optionally about one session.
CREATE TABLE board_cards (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id    uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    event_id      uuid REFERENCES events (id),
    session_id    uuid REFERENCES sessions (id),
    title         text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    body          text NOT NULL DEFAULT '',
    column_name   text NOT NULL DEFAULT 'todo',
    position      integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX board_cards_account_idx ON board_cards (account_id, created_at, id);

-- Planned stints for an event's race, compared with the stints the laps show.
CREATE TABLE planned_stints (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id      uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    event_id        uuid NOT NULL REFERENCES events (id),
    car_id          uuid NOT NULL REFERENCES cars (id),
    stint           integer NOT NULL CHECK (stint > 0),
    driver_id       uuid REFERENCES drivers (id),
    planned_laps    integer NOT NULL CHECK (planned_laps > 0),
    tyre_set        text,
    fuel_l          numeric(6, 2),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, car_id, stint)
);
CREATE INDEX planned_stints_account_idx ON planned_stints (account_id, created_at, id);
