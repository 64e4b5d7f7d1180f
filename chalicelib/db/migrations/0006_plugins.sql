-- Plugins: one row per (account, plugin id) with the account's grants, and one immutable row per
-- published version. Bundles live in S3 under account / id / version / SHA-256.
CREATE TABLE plugins (
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id          text NOT NULL CHECK (id ~ '^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- Capabilities this account granted; a capability works only if the running version also declares it.
    grants      text[] NOT NULL DEFAULT '{}',
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);

CREATE TABLE plugin_versions (
    account_id     uuid NOT NULL,
    plugin_id      text NOT NULL,
    version        text NOT NULL CHECK (length(version) BETWEEN 5 AND 64),
    name           text NOT NULL,
    interfaces     text[] NOT NULL,
    capabilities   text[] NOT NULL DEFAULT '{}',
    timeout_ms     integer NOT NULL CHECK (timeout_ms BETWEEN 10 AND 5000),
    manifest       jsonb NOT NULL,
    bundle_sha256  text NOT NULL CHECK (bundle_sha256 ~ '^[0-9a-f]{64}$'),
    bundle_bytes   integer NOT NULL CHECK (bundle_bytes BETWEEN 1 AND 1048576),
    s3_key         text NOT NULL,
    created_by     uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, plugin_id, version),
    FOREIGN KEY (account_id, plugin_id) REFERENCES plugins (account_id, id) ON DELETE CASCADE
);
