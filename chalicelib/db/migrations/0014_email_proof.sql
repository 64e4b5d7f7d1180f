-- Nobody joins an account without proving they own the email (issue 16).

-- A users row exists only once its email was proven (a confirmed sign-up or an accepted invitation);
-- sign-in requires the stamp. Every user so far counts as confirmed (backfill); rows inserted
-- without it (seed, test helpers) are stamped by the default.
ALTER TABLE users ADD COLUMN email_confirmed_at timestamptz;
UPDATE users SET email_confirmed_at = created_at;
ALTER TABLE users ALTER COLUMN email_confirmed_at SET DEFAULT now();

-- A sign-up waits here until its emailed link is opened with its password: only then do the user,
-- the account and the membership exist. Signing up again replaces it (the old link stops working).
CREATE TABLE pending_signups (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    account_name   text NOT NULL CHECK (length(account_name) BETWEEN 1 AND 200),
    password_hash  text NOT NULL,
    token_hash     text NOT NULL UNIQUE,
    expires_at     timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX pending_signups_email_key ON pending_signups (lower(email));

-- Invite tokens used to come back to the inviting admin, who could accept them as someone else:
-- every invite still pending is withdrawn; admins send it again and it goes by email.
DELETE FROM member_invites;
