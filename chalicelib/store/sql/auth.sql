-- name: user_by_email
-- Sign-in: only a user whose email was proven (migration 0014).
SELECT u.id, u.email, u.name, u.password_hash, m.account_id, m.role, a.name AS account_name
FROM users u
JOIN memberships m ON m.user_id = u.id
JOIN accounts a ON a.id = m.account_id
WHERE lower(u.email) = lower(%(email)s) AND u.email_confirmed_at IS NOT NULL
ORDER BY m.created_at, m.account_id
LIMIT 1;

-- name: member
SELECT u.id, u.email, u.name, m.role, m.account_id, a.name AS account_name, a.slug AS account_slug
FROM memberships m
JOIN users u ON u.id = m.user_id
JOIN accounts a ON a.id = m.account_id
WHERE m.user_id = %(user_id)s AND m.account_id = %(account_id)s AND u.email_confirmed_at IS NOT NULL;

-- name: account
SELECT id, name, slug, created_at FROM accounts WHERE id = %(account_id)s;

-- name: api_key_by_hash
-- With its creator's role in the key's account now (null: the creator is not a member).
SELECT k.id, k.account_id, k.role, k.name, k.prefix, k.expires_at, k.created_by, m.role AS creator_role,
       (k.expires_at IS NOT NULL AND k.expires_at <= now()) AS expired
FROM api_keys k
LEFT JOIN memberships m ON m.account_id = k.account_id AND m.user_id = k.created_by
WHERE k.key_hash = %(key_hash)s;

-- name: touch_api_key
-- Recording every use would write on every request; a minute's precision is enough.
UPDATE api_keys SET last_used_at = now()
WHERE id = %(id)s AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute');

-- name: insert_api_key
INSERT INTO api_keys (account_id, created_by, name, prefix, key_hash, role, expires_at)
VALUES (%(account_id)s, %(created_by)s, %(name)s, %(prefix)s, %(key_hash)s, %(role)s, %(expires_at)s)
RETURNING id, name, prefix, role, created_by, created_at, last_used_at, expires_at;

-- name: delete_api_key
DELETE FROM api_keys WHERE id = %(id)s AND account_id = %(account_id)s;

-- name: user_by_email_in_account
SELECT u.id, u.email, u.name, u.password_hash, m.account_id, m.role, a.name AS account_name
FROM users u
JOIN memberships m ON m.user_id = u.id AND m.account_id = %(account_id)s
JOIN accounts a ON a.id = m.account_id
WHERE lower(u.email) = lower(%(email)s) AND u.email_confirmed_at IS NOT NULL;

-- name: accounts_of_user
SELECT a.id, a.name, m.role
FROM memberships m JOIN accounts a ON a.id = m.account_id
WHERE m.user_id = %(user_id)s
ORDER BY m.created_at, a.id;

-- name: api_key_by_id
-- A live connection's key, re-checked as api_key_by_hash checks it on each request.
SELECT k.id, k.account_id, k.role, k.created_by, m.role AS creator_role,
       (k.expires_at IS NOT NULL AND k.expires_at <= now()) AS expired
FROM api_keys k
LEFT JOIN memberships m ON m.account_id = k.account_id AND m.user_id = k.created_by
WHERE k.id = %(id)s AND k.account_id = %(account_id)s;

-- name: members_among
-- Which of these users are members of the account now, with their role (room fan-out re-checks).
SELECT user_id::text AS id, role FROM memberships
WHERE account_id = %(account_id)s AND user_id = ANY(%(user_ids)s::uuid[]);

-- name: keys_among
-- Which of these keys exist and are unexpired now, with their creator's role (null: not a member).
SELECT k.id::text AS id, k.role, k.created_by, m.role AS creator_role
FROM api_keys k
LEFT JOIN memberships m ON m.account_id = k.account_id AND m.user_id = k.created_by
WHERE k.account_id = %(account_id)s AND k.id = ANY(%(key_ids)s::uuid[])
  AND (k.expires_at IS NULL OR k.expires_at > now());

-- name: api_keys_created_by
SELECT id::text AS id FROM api_keys WHERE account_id = %(account_id)s AND created_by = %(user_id)s;
