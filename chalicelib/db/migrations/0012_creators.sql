-- Whatever a principal creates never acts with more authority than its creator holds now (issue 14).

-- Keys minted with a key before keys recorded their creator have none: they act as viewers until an
-- admin re-issues them (the API caps them at read time too; lowering the role here makes the list
-- say so).
UPDATE api_keys SET role = 'viewer' WHERE created_by IS NULL AND role <> 'viewer';

-- Deleting a user deletes the keys they created instead of leaving them creator-less.
ALTER TABLE api_keys
    DROP CONSTRAINT api_keys_created_by_fkey,
    ADD CONSTRAINT api_keys_created_by_fkey FOREIGN KEY (created_by) REFERENCES users (id) ON DELETE CASCADE;
CREATE INDEX api_keys_creator_idx ON api_keys (account_id, created_by);

-- Pending invites with no inviter (sent with an API key, or whose inviter was deleted) are
-- withdrawn: no one answers for them (accepting one is refused as well).
DELETE FROM member_invites WHERE invited_by IS NULL;
CREATE INDEX member_invites_inviter_idx ON member_invites (account_id, invited_by);

-- Webhooks and plugin grants belong to the account and stay when their maker leaves; they say who made them.
ALTER TABLE webhooks ADD COLUMN created_by uuid REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE plugins ADD COLUMN grants_set_by uuid REFERENCES users (id) ON DELETE SET NULL;
