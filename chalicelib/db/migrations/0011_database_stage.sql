-- The stage this database serves (local, dev, prod): one row, recorded by the migration runner
-- (chalicelib/db/migrate.py) on the first migration, or later only with an explicit STAGE.
-- Seeding reads it; a restore keeps the target's row. IF NOT EXISTS: a restore may have created it.
CREATE TABLE IF NOT EXISTS database_stage (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    stage       text NOT NULL CHECK (stage IN ('local', 'dev', 'prod')),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
