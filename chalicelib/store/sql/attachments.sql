-- name: run_sheet_for_attachments
SELECT id, session_id FROM run_sheets WHERE id = %(run_sheet_id)s AND account_id = %(account_id)s;

-- name: insert_attachment
INSERT INTO run_sheet_attachments (id, account_id, run_sheet_id, file_name, content_type, size_bytes, s3_key,
                                   created_by_user_id, created_by_api_key_id)
VALUES (%(id)s, %(account_id)s, %(run_sheet_id)s, %(file_name)s, %(content_type)s, %(size_bytes)s, %(s3_key)s,
        %(created_by_user_id)s, %(created_by_api_key_id)s)
RETURNING id, run_sheet_id, file_name, content_type, size_bytes, s3_key, status, uploaded_at, created_at, updated_at;

-- name: attachment_for_update
-- The attachment with its run sheet's session (for the room), locked for the change at hand.
SELECT a.id, a.run_sheet_id, a.file_name, a.content_type, a.size_bytes, a.s3_key, a.status, a.uploaded_at,
       a.created_at, a.updated_at, r.session_id
FROM run_sheet_attachments a
JOIN run_sheets r ON r.id = a.run_sheet_id
WHERE a.id = %(id)s AND a.account_id = %(account_id)s
FOR UPDATE OF a;

-- name: mark_attachment_uploaded
UPDATE run_sheet_attachments SET status = 'uploaded', uploaded_at = now(), updated_at = now()
WHERE id = %(id)s AND account_id = %(account_id)s
RETURNING id, run_sheet_id, file_name, content_type, size_bytes, s3_key, status, uploaded_at, created_at, updated_at;

-- name: delete_attachment
DELETE FROM run_sheet_attachments WHERE id = %(id)s AND account_id = %(account_id)s;
