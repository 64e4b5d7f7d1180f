"""Files attached to run sheets: presigned uploads to S3, checked on completion, presigned downloads.

The flow: POST /run-sheets/{id}/attachments declares the file (name, type, size) and answers a
presigned PUT whose signature covers Content-Type and Content-Length, so S3 refuses any other
type or size. Emulators do not check presigned signatures, so POST /attachments/{id}/complete
also checks the stored object (HeadObject) against the declaration before the attachment turns
`uploaded`; only uploaded attachments get a download URL.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Mapping
from typing import Any

from chalicelib.domain import changes, listing
from chalicelib.domain.caller import Caller
from chalicelib.domain.records import Field, Resource
from chalicelib.domain.validation import Body
from chalicelib.errors import Conflict, Invalid, NotFound
from chalicelib.store import attachment_objects as objects
from chalicelib.store import records
from chalicelib.store.postgres import Row, execute, fetch_one, transaction

MAX_ATTACHMENT_BYTES = 50 * 1024 * 1024
UPLOAD_URL_TTL_S = 900
DOWNLOAD_URL_TTL_S = 300
# Telemetry logs (MoTeC .ld, AiM, ...) travel as application/octet-stream.
CONTENT_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/heic",
    "application/pdf",
    "text/csv",
    "application/json",
    "text/plain",
    "application/zip",
    "application/octet-stream",
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

ATTACHMENTS = Resource(
    "attachment",
    "run_sheet_attachments",
    (
        Field("id", "id", "uuid"),
        Field("runSheetId", "run_sheet_id", "uuid"),
        Field("fileName", "file_name"),
        Field("contentType", "content_type"),
        Field("sizeBytes", "size_bytes", "int"),
        Field("status", "status", filter=True),
        Field("s3Key", "s3_key"),
        Field("uploadedAt", "uploaded_at", "time"),
        Field("createdAt", "created_at", "time"),
        Field("updatedAt", "updated_at", "time"),
    ),
)


def safe_file_name(file_name: str) -> str:
    """The name's last path part in letters, digits, dot, dash and underscore (for keys and headers)."""
    base = re.split(r"[\\/]", file_name)[-1]
    safe = _UNSAFE.sub("_", base).strip("._")[-120:]
    return safe or "file"


def _read(payload: Any) -> tuple[str, str, int]:
    body = Body(payload, allowed={"fileName", "contentType", "sizeBytes"})
    file_name: str = body.text("fileName", max_len=255)
    if any(ord(c) < 32 or ord(c) == 127 for c in file_name):
        body.fail("fileName must not contain control characters", "fileName")
    content_type = body.text("contentType", max_len=100)
    if content_type.lower() not in CONTENT_TYPES:
        body.fail(
            f"contentType {content_type[:40]!r} is not accepted; send one of {', '.join(CONTENT_TYPES)} "
            "(telemetry logs as application/octet-stream)",
            "contentType",
        )
    size_bytes: int = body.integer("sizeBytes", minimum=1, maximum=MAX_ATTACHMENT_BYTES)
    return file_name, content_type.lower(), size_bytes


def _run_sheet(conn: Any, caller: Caller, run_sheet_id: str) -> Row:
    sheet = fetch_one(
        conn, "run_sheet_for_attachments", {"run_sheet_id": run_sheet_id, "account_id": caller.account_id}
    )
    if sheet is None:
        raise NotFound(f"run sheet {run_sheet_id} not found")
    return sheet


def _with_download(row: Row) -> dict[str, Any]:
    wire = ATTACHMENTS.to_wire(row)
    if row["status"] == "uploaded":
        wire["downloadUrl"] = objects.presigned_get(row["s3_key"], safe_file_name(row["file_name"]), DOWNLOAD_URL_TTL_S)
        wire["downloadExpiresIn"] = DOWNLOAD_URL_TTL_S
    else:
        wire["downloadUrl"] = None
    return wire


def create(caller: Caller, run_sheet_id: str, payload: Any) -> dict[str, Any]:
    """POST /run-sheets/{id}/attachments: a pending attachment and the presigned PUT to upload it."""
    caller.require("engineer")
    run_sheet_id = listing.parse_uuid(run_sheet_id, "id")
    file_name, content_type, size_bytes = _read(payload)
    attachment_id = str(uuid.uuid4())
    key = f"{caller.account_id}/{run_sheet_id}/{attachment_id}/{safe_file_name(file_name)}"
    with changes.write(caller) as (conn, recorder):
        sheet = _run_sheet(conn, caller, run_sheet_id)
        row = fetch_one(
            conn,
            "insert_attachment",
            {
                "id": attachment_id,
                "account_id": caller.account_id,
                "run_sheet_id": run_sheet_id,
                "file_name": file_name,
                "content_type": content_type,
                "size_bytes": size_bytes,
                "s3_key": key,
                "created_by_user_id": caller.user_id,
                "created_by_api_key_id": caller.api_key_id,
            },
        )
        assert row is not None
        wire = ATTACHMENTS.to_wire(row)
        recorder.record("attachment", "create", wire, session_id=str(sheet["session_id"]))
    return {
        **wire,
        "uploadUrl": objects.presigned_put(key, content_type, size_bytes, UPLOAD_URL_TTL_S),
        # Content-Length is signed too; HTTP clients set it from the body.
        "uploadHeaders": {"Content-Type": content_type},
        "expiresIn": UPLOAD_URL_TTL_S,
    }


def complete(caller: Caller, attachment_id: str) -> dict[str, Any]:
    """POST /attachments/{id}/complete: check the uploaded object, then mark the attachment uploaded.

    An object of another size or type than declared is deleted and refused (400 naming the field);
    the upload URL stays usable until it expires. Completing twice answers the same attachment.
    """
    caller.require("engineer")
    attachment_id = listing.parse_uuid(attachment_id, "id")
    with changes.write(caller) as (conn, recorder):
        row = fetch_one(conn, "attachment_for_update", {"id": attachment_id, "account_id": caller.account_id})
        if row is None:
            raise NotFound(f"attachment {attachment_id} not found")
        if row["status"] == "uploaded":
            return _with_download(row)
        stored = objects.head(row["s3_key"])
        if stored is None:
            raise Conflict("nothing has been uploaded yet: PUT the file to uploadUrl first")
        problem = _mismatch(row, stored)
        if problem is not None:
            objects.delete(row["s3_key"])
            raise Invalid(problem[1], field=problem[0])
        updated = fetch_one(conn, "mark_attachment_uploaded", {"id": attachment_id, "account_id": caller.account_id})
        assert updated is not None
        recorder.record("attachment", "update", ATTACHMENTS.to_wire(updated), session_id=str(row["session_id"]))
    return _with_download(updated)


def _mismatch(row: Row, stored: objects.StoredObject) -> tuple[str, str] | None:
    if stored.size_bytes != row["size_bytes"]:
        return "sizeBytes", (
            f"the uploaded file has {stored.size_bytes} bytes, not the {row['size_bytes']} "
            "declared; it was discarded, upload the declared file again"
        )
    if stored.content_type.split(";")[0].strip().lower() != row["content_type"]:
        return "contentType", (
            f"the upload was sent as {stored.content_type[:60]!r}, not the declared "
            f"{row['content_type']}; it was discarded, upload it again with the declared type"
        )
    return None


def list_for_run_sheet(caller: Caller, run_sheet_id: str, params: Mapping[str, str]) -> dict[str, Any]:
    """GET /run-sheets/{id}/attachments: a page of attachments, uploaded ones with a download URL."""
    run_sheet_id = listing.parse_uuid(run_sheet_id, "id")
    request = listing.parse(ATTACHMENTS, params)
    request = dataclasses.replace(request, filters={**request.filters, "run_sheet_id": run_sheet_id})
    with transaction() as conn:
        _run_sheet(conn, caller, run_sheet_id)
        rows = records.list_rows(conn, ATTACHMENTS, caller.account_id, request)
    page = listing.page(ATTACHMENTS, rows, request.limit)
    page["items"] = [_with_download(row) for row in rows[: request.limit]]
    return page


def delete(caller: Caller, attachment_id: str) -> None:
    """DELETE /attachments/{id}: the row and the object go together (the object last, before commit,
    so an unreachable S3 leaves both in place and the client may retry)."""
    caller.require("engineer")
    attachment_id = listing.parse_uuid(attachment_id, "id")
    with changes.write(caller) as (conn, recorder):
        row = fetch_one(conn, "attachment_for_update", {"id": attachment_id, "account_id": caller.account_id})
        if row is None:
            raise NotFound(f"attachment {attachment_id} not found")
        execute(conn, "delete_attachment", {"id": attachment_id, "account_id": caller.account_id})
        recorder.record("attachment", "delete", ATTACHMENTS.to_wire(row), session_id=str(row["session_id"]))
        objects.delete(row["s3_key"])
