-- name: lock_account_members
-- Member changes of one account run one at a time, so "the last owner" is counted exactly.
SELECT id, name FROM accounts WHERE id = %(account_id)s FOR UPDATE;

-- name: member_by_email
SELECT m.user_id FROM memberships m JOIN users u ON u.id = m.user_id
WHERE m.account_id = %(account_id)s AND lower(u.email) = lower(%(email)s);

-- name: user_for_membership
-- A user by email (any account), with how many accounts they belong to.
SELECT u.id, u.email, u.name, u.password_hash,
       (SELECT count(*) FROM memberships m WHERE m.user_id = u.id) AS memberships
FROM users u
WHERE lower(u.email) = lower(%(email)s);

-- name: insert_signup_account
INSERT INTO accounts (id, name, slug) VALUES (%(id)s, %(name)s, %(slug)s)
RETURNING id, name;

-- name: insert_user
-- Only after the email was proven (a confirmed sign-up, an accepted invitation).
INSERT INTO users (id, email, name, password_hash, email_confirmed_at)
VALUES (%(id)s, %(email)s, %(name)s, %(password_hash)s, now())
RETURNING id;

-- name: reclaim_user
-- A user who belongs to no account any more signs up or accepts an invite afresh (the email proven again).
UPDATE users SET name = %(name)s, password_hash = %(password_hash)s, email_confirmed_at = now(), updated_at = now()
WHERE id = %(id)s
  AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = users.id);

-- name: insert_membership
INSERT INTO memberships (account_id, user_id, role) VALUES (%(account_id)s, %(user_id)s, %(role)s)
ON CONFLICT (account_id, user_id) DO NOTHING;

-- name: account_member
SELECT id, user_id, email, name, role, status, joined_at, expires_at, created_at
FROM account_members
WHERE account_id = %(account_id)s AND id = %(id)s;

-- name: count_owners
SELECT count(*) AS owners FROM memberships WHERE account_id = %(account_id)s AND role = 'owner';

-- name: update_membership_role
UPDATE memberships SET role = %(role)s WHERE account_id = %(account_id)s AND user_id = %(user_id)s;

-- name: delete_membership
DELETE FROM memberships WHERE account_id = %(account_id)s AND user_id = %(user_id)s;

-- name: invite_by_email
SELECT id, role FROM member_invites WHERE account_id = %(account_id)s AND lower(email) = lower(%(email)s);

-- name: upsert_invite
-- Inviting the same email again replaces the token (the old link stops working) and the role.
INSERT INTO member_invites (account_id, email, role, token_hash, invited_by, expires_at)
VALUES (%(account_id)s, %(email)s, %(role)s, %(token_hash)s, %(invited_by)s, now() + make_interval(secs => %(ttl_s)s))
ON CONFLICT (account_id, lower(email)) DO UPDATE
SET role = EXCLUDED.role, token_hash = EXCLUDED.token_hash, invited_by = EXCLUDED.invited_by,
    expires_at = EXCLUDED.expires_at, updated_at = now()
RETURNING id, (xmax = 0) AS inserted;

-- name: update_invite_role
UPDATE member_invites SET role = %(role)s, updated_at = now() WHERE account_id = %(account_id)s AND id = %(id)s;

-- name: delete_invite
DELETE FROM member_invites WHERE account_id = %(account_id)s AND id = %(id)s;

-- name: invite_by_token_hash
-- Locked, so two accepts of one token cannot both succeed; with the inviter's role now (null: none).
SELECT i.id, i.account_id, i.email, i.role, i.expires_at <= now() AS expired, a.name AS account_name,
       m.role AS inviter_role
FROM member_invites i
JOIN accounts a ON a.id = i.account_id
LEFT JOIN memberships m ON m.account_id = i.account_id AND m.user_id = i.invited_by
WHERE i.token_hash = %(token_hash)s
FOR UPDATE OF i;

-- name: user_password
SELECT id, password_hash FROM users WHERE id = %(id)s;

-- name: set_user_password
UPDATE users SET password_hash = %(password_hash)s, updated_at = now() WHERE id = %(id)s;

-- name: revoke_keys_created_by
-- A removed member's API keys go with them (a key never outlives its creator's membership).
DELETE FROM api_keys WHERE account_id = %(account_id)s AND created_by = %(user_id)s
RETURNING id, name, prefix, role, created_by, created_at, last_used_at, expires_at;

-- name: withdraw_invites_sent_by
-- Pending invites the inviter may no longer send (any, when they are no longer an admin; owner
-- invites, when no longer an owner), as GET /members listed them (the CTE's delete is not yet seen).
WITH gone AS (
    DELETE FROM member_invites
    WHERE account_id = %(account_id)s AND invited_by = %(user_id)s
      AND (NOT %(may_invite)s OR (role = 'owner' AND NOT %(may_invite_owners)s))
    RETURNING id
)
SELECT m.id, m.user_id, m.email, m.name, m.role, m.status, m.joined_at, m.expires_at, m.created_at
FROM account_members m JOIN gone ON gone.id = m.id
WHERE m.account_id = %(account_id)s
ORDER BY m.created_at, m.id;

-- name: inviter_name
SELECT name FROM users WHERE id = %(id)s;

-- name: upsert_pending_signup
-- Signing up again with the same email replaces the pending sign-up: new password, new link.
INSERT INTO pending_signups (email, name, account_name, password_hash, token_hash, expires_at)
VALUES (%(email)s, %(name)s, %(account_name)s, %(password_hash)s, %(token_hash)s,
        now() + make_interval(secs => %(ttl_s)s))
ON CONFLICT (lower(email)) DO UPDATE
SET email = EXCLUDED.email, name = EXCLUDED.name, account_name = EXCLUDED.account_name,
    password_hash = EXCLUDED.password_hash, token_hash = EXCLUDED.token_hash, expires_at = EXCLUDED.expires_at,
    created_at = now()
RETURNING id;

-- name: pending_signup_by_token_hash
-- Locked, so two confirmations of one link cannot both create an account.
SELECT id, email, name, account_name, password_hash, expires_at <= now() AS expired
FROM pending_signups
WHERE token_hash = %(token_hash)s
FOR UPDATE;

-- name: pending_signup_by_email
SELECT id, password_hash, expires_at <= now() AS expired FROM pending_signups WHERE lower(email) = lower(%(email)s);

-- name: delete_pending_signup
DELETE FROM pending_signups WHERE id = %(id)s;
