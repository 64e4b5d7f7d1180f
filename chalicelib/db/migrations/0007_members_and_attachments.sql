-- Invitations to join an account. A pending invite is not a membership (it grants nothing and does
-- not reserve the email: the person may still sign up elsewhere); accepting it creates the
-- membership and deletes the row, so a token works once. Only the SHA-256 of the token is stored.
CREATE TABLE member_invites (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    email       text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'engineer', 'viewer')),
    token_hash  text NOT NULL UNIQUE,
    invited_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX member_invites_email_key ON member_invites (account_id, lower(email));

-- GET /members lists members and pending invites as one keyset-ordered list: `id` is the user id
-- of a member, the invite id of an invite.
CREATE VIEW account_members AS
SELECT m.user_id AS id, m.account_id, m.user_id, u.email, u.name, m.role, 'active' AS status,
       m.created_at AS joined_at, NULL::timestamptz AS expires_at, m.created_at
FROM memberships m
JOIN users u ON u.id = m.user_id
UNION ALL
SELECT i.id, i.account_id, NULL::uuid, i.email, NULL::text, i.role,
       CASE WHEN i.expires_at > now() THEN 'invited' ELSE 'expired' END,
       NULL::timestamptz, i.expires_at, i.created_at
FROM member_invites i;

-- Files attached to a run sheet. The object lives in the attachments bucket under s3_key; the row
-- is `pending` until POST /attachments/{id}/complete has checked the uploaded object's size and
-- type, then `uploaded`.
CREATE TABLE run_sheet_attachments (
    id                     uuid PRIMARY KEY,
    account_id             uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    run_sheet_id           uuid NOT NULL REFERENCES run_sheets (id) ON DELETE CASCADE,
    file_name              text NOT NULL CHECK (length(file_name) BETWEEN 1 AND 255),
    content_type           text NOT NULL CHECK (length(content_type) BETWEEN 1 AND 100),
    size_bytes             bigint NOT NULL CHECK (size_bytes > 0),
    s3_key                 text NOT NULL UNIQUE,
    status                 text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'uploaded')),
    created_by_user_id     uuid REFERENCES users (id) ON DELETE SET NULL,
    created_by_api_key_id  uuid REFERENCES api_keys (id) ON DELETE SET NULL,
    uploaded_at            timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX run_sheet_attachments_sheet_idx ON run_sheet_attachments (account_id, run_sheet_id, created_at, id);
CREATE INDEX run_sheet_attachments_run_sheet_idx ON run_sheet_attachments (run_sheet_id);
